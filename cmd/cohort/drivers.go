//go:build linux && !client

package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jobs"
	"github.com/cohortdev/cohort/materials"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/provisioner/gce"
	"github.com/cohortdev/cohort/provisioner/local"
	"github.com/cohortdev/cohort/seal"
)

// driver makes the configured provisioner driver, with how long a start
// may take on it.
func (m *Main) driver(log *slog.Logger, publicURL, audience string, db *database, shards shardQueue, library *materials.Library) (cohort.Driver, provisioner.Timing, error) {
	c := m.Config
	switch c.Driver {
	case "local":
		d, err := m.localDriver(log)
		if err == nil && !d.Isolated() {
			// Notebooks that run as the server's own user could read its
			// key and the database, and so every class's token.
			library.RefuseTokens("notebooks on this server run as its own user and could read the key that seals tokens: run cohort as root, which gives each session a uid of its own (docs/security.md)")
		}
		return d, provisioner.Timing{}, err
	case "gce":
	default:
		return nil, provisioner.Timing{}, fmt.Errorf("--driver must be local or gce, not %q", c.Driver)
	}
	g := c.GCE
	if g.Project == "" || g.SessionAccount == "" || g.Network == "" && g.Subnetwork == "" {
		return nil, provisioner.Timing{}, errors.New("--driver gce needs --gce-project, --gce-session-account and --gce-subnetwork (or --gce-network): the foundation's outputs print them (see docs/gcp.md)")
	}
	state := g.PulumiState
	if db.kind == jobs.Postgres && (state == "" || g.SecretsProvider == "passphrase" && g.PassphraseFile == "") {
		// Any replica may update any shard: they must share the state and
		// what encrypts its secrets.
		return nil, provisioner.Timing{}, errors.New("--driver gce with --database postgres needs --pulumi-state, a state backend every replica reaches (gs://BUCKET), " +
			"and --pulumi-passphrase-file (one file every replica reads) or --pulumi-secrets-provider gcpkms://...: see docs/operations.md")
	}
	if state == "" {
		state = "file://" + filepath.Join(c.DataDir, "pulumi-state")
	}
	passphraseFile := cmp.Or(g.PassphraseFile, filepath.Join(c.DataDir, "pulumi-passphrase"))
	if err := passphraseMissing(context.Background(), db.store, g.SecretsProvider, passphraseFile); err != nil {
		return nil, provisioner.Timing{}, err
	}
	passphrase, err := secretFile(passphraseFile, "the Pulumi passphrase", func() string { return cohort.NewSecret("") })
	if err != nil {
		return nil, provisioner.Timing{}, err
	}
	if err := checkPulumiSecrets(context.Background(), db.store, g.SecretsProvider, passphrase, passphraseFile, db.kind == jobs.Postgres, log); err != nil {
		return nil, provisioner.Timing{}, err
	}
	stacks, err := gce.NewStacks(gce.StackOptions{WorkRoot: filepath.Join(c.DataDir, "pulumi-work"), StateURL: state,
		SecretsProvider: g.SecretsProvider, Passphrase: passphrase, PulumiRoot: g.PulumiRoot, Metrics: m.metrics, Logger: log})
	if err != nil {
		return nil, provisioner.Timing{}, err
	}
	vms, err := gce.NewCompute(context.Background(), g.ComputeEndpoint)
	if err != nil {
		return nil, provisioner.Timing{}, fmt.Errorf("%w (cohort reads the VMs' status and boot progress with the control plane's credentials; see docs/gcp.md)", err)
	}
	workGB := -1
	if g.WorkGB != "off" {
		if workGB, err = strconv.Atoi(g.WorkGB); err != nil || workGB <= 0 {
			return nil, provisioner.Timing{}, fmt.Errorf("--gce-work-gb: want a size in GB (10-1000) or off, not %q", g.WorkGB)
		}
	}
	d, err := gce.New(gce.Options{WorkGB: workGB, Materials: library, Stacks: stacks, Project: g.Project, ImageProject: g.ImageProject, Network: g.Network,
		Subnetwork: g.Subnetwork, NetworkTag: g.NetworkTag, SessionAccount: g.SessionAccount,
		SchedulerAccount: c.SchedulerAccount, SchedulerRegion: g.SchedulerRegion, PublicURL: publicURL, SchedulerAudience: audience, Compute: vms,
		Shards: db.store, Enqueue: shards, Logger: log,
		// The steps of a start reach its participant as the session's
		// events, from whichever replica runs the shard's update.
		Progress: func(ctx context.Context, sessionID, msg string) {
			e := &cohort.Event{SessionID: sessionID, Time: time.Now().UTC(), State: cohort.StateProvisioning, Message: msg}
			if err := db.store.AppendEvent(ctx, e); err != nil {
				log.Warn("record a start's progress", "session_id", sessionID, "error", err)
			}
		}})
	// A VM boots and starts Jupyter in minutes, not seconds.
	return d, provisioner.Timing{StartTimeout: cohort.GCEStartTimeout, Poll: 2 * time.Second}, err
}

// localDriver runs notebooks on this machine: as root, each session as a
// uid of its own, in a sessions directory outside the data directory
// (which only cohort may enter); otherwise all as this user, which cohort
// says at start.
func (m *Main) localDriver(log *slog.Logger) (*local.Driver, error) {
	c := m.Config
	root := os.Geteuid() == 0
	var uids local.UIDRange
	if root && c.SessionUIDs != "off" {
		uids = local.DefaultUIDs()
		if c.SessionUIDs != "" {
			var err error
			if uids, err = local.ParseUIDRange(c.SessionUIDs); err != nil {
				return nil, fmt.Errorf("--session-uids: %w", err)
			}
		}
	} else if c.SessionUIDs != "" && c.SessionUIDs != "off" {
		return nil, errors.New("--session-uids needs cohort to run as root: it starts each session as a uid of its own")
	}
	dir := c.SessionsDir
	switch {
	case dir != "":
	case !uids.IsZero():
		dir = "/var/lib/cohort/sessions"
	default:
		dir = filepath.Join(c.DataDir, "sessions")
	}
	d, err := local.New(local.Options{Root: dir, Bin: c.JupyterBin, UIDs: uids, Logger: log})
	if err != nil {
		return nil, err
	}
	if !d.Isolated() {
		log.Warn("participants are not isolated from each other: every notebook runs as this user and can read the others' files; " +
			"run cohort as root to give each session a uid of its own (see docs/security.md)")
	}
	return d, nil
}

// secretFile returns the secret kept in path (what it is, for errors),
// making one with generate on first use; of replicas that start together,
// one makes it and the others read it. (The Pulumi passphrase and the
// key sealing tokens: losing one makes what it encrypts unreadable, so
// it lives in a file, not in a flag.)
func secretFile(path, what string, generate func() string) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil && len(strings.TrimSpace(string(b))) == 0:
		return "", fmt.Errorf("%s file %s is empty: restore it from a backup (without it what it encrypts cannot be read)", what, path)
	case err == nil:
		return strings.TrimSpace(string(b)), nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return "", fmt.Errorf("store %s: %w", what, err)
	}
	defer os.Remove(tmp.Name())
	secret := generate()
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("store %s: %w", what, err)
	}
	// On disk before it is linked into place: a crash must not leave an
	// empty key that tokens were sealed with.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("store %s: %w", what, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("store %s: %w", what, err)
	}
	// A hard link never replaces a file another replica made meanwhile.
	switch err := os.Link(tmp.Name(), path); {
	case errors.Is(err, os.ErrExist):
		return secretFile(path, what, generate)
	case err != nil:
		return "", fmt.Errorf("store %s in %s (its file system must allow hard links; or make the file beforehand): %w", what, path, err)
	}
	return secret, nil
}

// secretKeyPath is the file that keeps the key sealing tokens.
func (m *Main) secretKeyPath() string {
	return cmp.Or(m.Config.SecretKeyFile, filepath.Join(m.Config.DataDir, "secret-key"))
}

// materials keeps classes' materials in DATA_DIR/materials. Repositories
// on this machine are admitted by default only with the built-in
// sign-in: on a shared server any instructor could read its repositories.
// Private repositories' tokens are sealed with the key in
// --secret-key-file, or DATA_DIR/secret-key with SQLite (one server);
// replicas on Postgres must share a file, so without one they take no
// tokens (and say so).
func (m *Main) materials(oneMachine bool, database string, log *slog.Logger) (*materials.Library, error) {
	allow := oneMachine
	switch strings.ToLower(m.Config.LocalMaterials) {
	case "":
	case "yes", "true", "1":
		allow = true
	case "no", "false", "0":
		allow = false
	default:
		return nil, fmt.Errorf("--local-materials: want yes or no, not %q", m.Config.LocalMaterials)
	}
	var key *seal.Key
	if m.Config.SecretKeyFile != "" || database == jobs.SQLite {
		text, err := secretFile(m.secretKeyPath(), "the secret key", seal.NewKeyText)
		if err != nil {
			return nil, err
		}
		if key, err = seal.ParseKey(text); err != nil {
			return nil, fmt.Errorf("the secret key in %s: %w", m.secretKeyPath(), err)
		}
	}
	if ca := m.Config.MaterialsCAFile; ca != "" {
		if _, err := os.Stat(ca); err != nil {
			return nil, fmt.Errorf("--materials-ca-file: %w", err)
		}
	}
	return materials.New(materials.Options{Dir: filepath.Join(m.Config.DataDir, "materials"), AllowLocal: allow, Key: key,
		CAFile: m.Config.MaterialsCAFile, Logger: log})
}
