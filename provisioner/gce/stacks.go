package gce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// state
	_ "gocloud.dev/blob/gcsblob"  // gs:// state
	"gocloud.dev/gcerrors"

	"github.com/cohortdev/cohort/infra"
	"github.com/cohortdev/cohort/metrics"
)

// project is the Pulumi project of cohort's stacks.
const project = "cohort-sessions"

// parallel is how many resource operations an engine run makes at once:
// every VM and scheduler job of a shard (2 x 25). The CLI's default is 4
// per core of the control plane (pulumi/pulumi#14989), which on two cores
// created a shard's 25 VMs in four waves: 4.4 create latencies for a
// class of 100 instead of 1.4 (docs/benchmarks.md).
const parallel = 64

// StackOptions configure Stacks.
type StackOptions struct {
	// WorkRoot holds one workspace directory per stack: two operations in
	// one workspace race on its files (pulumi/pulumi#8186, #7782).
	WorkRoot string
	// StateURL is the backend: file:///dir locally, gs://bucket in production.
	StateURL string
	// SecretsProvider encrypts the stacks' secrets (notebook tokens):
	// "passphrase" (the default, with Passphrase) or a Cloud KMS key,
	// "gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K".
	SecretsProvider, Passphrase string
	// PulumiRoot is where bin/pulumi is; empty for the installed CLI.
	PulumiRoot string
	// Env is added to the engine's environment (tests attach the fake
	// provider with PULUMI_DEBUG_PROVIDERS).
	Env map[string]string
	// LockWait is how long an operation waits for a lock whose process
	// still runs; 10 minutes if zero.
	LockWait time.Duration
	// Metrics counts and times engine runs (nil: not counted).
	Metrics *metrics.Metrics
	// Logger hears of repairs (none if nil).
	Logger *slog.Logger
}

// Stacks runs shard stacks: each holds the resources of many sessions
// (infra.ShardProgram), so that one engine run creates many VMs at once.
type Stacks struct {
	opts StackOptions
	cli  command
	// opening holds a lock per stack name while it is opened: two
	// creates of one stack at once race on the backend's files (one
	// fails "already exists", or on the other's lock file vanishing).
	opening sync.Map
}

// NewStacks checks the options and finds the Pulumi CLI.
func NewStacks(opts StackOptions) (*Stacks, error) {
	if opts.SecretsProvider == "" {
		opts.SecretsProvider = "passphrase"
	}
	switch {
	case opts.WorkRoot == "" || opts.StateURL == "":
		return nil, errors.New("gce stacks: WorkRoot and StateURL are required")
	case opts.SecretsProvider == "passphrase" && opts.Passphrase == "":
		return nil, errors.New("gce stacks: the passphrase secrets provider needs a passphrase")
	case opts.SecretsProvider != "passphrase" && !strings.HasPrefix(opts.SecretsProvider, "gcpkms://projects/"):
		return nil, fmt.Errorf("gce stacks: secrets provider %q is neither passphrase nor gcpkms://projects/.../cryptoKeys/KEY", opts.SecretsProvider)
	}
	if err := os.MkdirAll(opts.WorkRoot, 0o700); err != nil {
		return nil, err
	}
	if dir, ok := strings.CutPrefix(opts.StateURL, "file://"); ok {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	if opts.LockWait == 0 {
		opts.LockWait = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cli, err := newCommand(opts.PulumiRoot)
	if err != nil {
		return nil, fmt.Errorf("find the pulumi CLI (make pulumi builds one into bin/): %w", err)
	}
	return &Stacks{opts: opts, cli: cli}, nil
}

func (s *Stacks) env() map[string]string {
	env := map[string]string{
		"PULUMI_BACKEND_URL":                          s.opts.StateURL,
		"PULUMI_CONFIG_PASSPHRASE":                    s.opts.Passphrase,
		"PULUMI_SKIP_UPDATE_CHECK":                    "true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
	}
	for k, v := range s.opts.Env {
		env[k] = v
	}
	return env
}

// kill ends the engines working on a stack at once (its lease is lost).
func (s *Stacks) kill(stack string) { s.cli.kill(s.WorkDir(stack)) }

// WorkDir is the workspace directory of a stack.
func (s *Stacks) WorkDir(stack string) string { return filepath.Join(s.opts.WorkRoot, stack) }

// stack opens a stack, creating it if it does not exist yet. Callers in
// this process open a stack one at a time; if another process created it
// meanwhile, the losing create selects it.
func (s *Stacks) stack(ctx context.Context, name string, specs []infra.SessionSpec) (auto.Stack, error) {
	mu, _ := s.opening.LoadOrStore(name, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if err := s.mendFileState(name); err != nil {
		return auto.Stack{}, fmt.Errorf("mend the state of a killed write: %w", err)
	}
	dir := s.WorkDir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return auto.Stack{}, err
	}
	opts := []auto.LocalWorkspaceOption{auto.WorkDir(dir), auto.Pulumi(s.cli), auto.EnvVars(s.env()), auto.SecretsProvider(s.opts.SecretsProvider),
		auto.Project(workspace.Project{Name: project, Runtime: workspace.NewProjectRuntimeInfo("go", nil)})}
	st, err := auto.UpsertStackInlineSource(ctx, name, project, infra.ShardProgram(specs), opts...)
	if auto.IsCreateStack409Error(err) {
		return auto.SelectStackInlineSource(ctx, name, project, infra.ShardProgram(specs), opts...)
	}
	return st, err
}

// Outputs are what exists of a session: its VM, and whether its work
// disk is attached to it.
type Outputs struct {
	Instance, Zone, InternalIP string
	Work                       bool `json:",omitempty"`
}

// Report is the outcome of an update for each of its sessions.
type Report struct {
	// Exists holds the sessions whose VM exists after the update.
	Exists map[string]Outputs
	// Failed holds the provider's errors by session.
	Failed map[string]error
}

// Update makes a stack hold exactly the resources of specs. It goes on
// when one session's resource fails, so one participant's stockout does
// not hold up the others, and reports each session's outcome. progress
// (may be nil) hears what the engine does for each session. An error
// means the update as a whole failed; the report still says what exists.
func (s *Stacks) Update(ctx context.Context, name string, specs []infra.SessionSpec, progress func(sessionID, msg string)) (Report, error) {
	rep := Report{Failed: map[string]error{}}
	st, err := s.stack(ctx, name, specs)
	if err != nil {
		return rep, fmt.Errorf("stack %s: %w", name, err)
	}
	zones := map[string]string{}
	for _, sp := range specs {
		zones[sp.SessionID] = sp.Zone
	}
	var mu sync.Mutex // the stream's reader writes rep.Failed
	up := func() error {
		stream := make(chan events.EngineEvent)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range stream {
				if d := ev.DiagnosticEvent; d != nil && d.Severity == "error" && d.URN != "" {
					id := sessionOf(d.URN)
					mu.Lock()
					rep.Failed[id] = errors.Join(rep.Failed[id], errors.New(strings.TrimSpace(d.Message)))
					mu.Unlock()
				}
				if id, msg := describe(ev, zones); msg != "" && progress != nil {
					progress(id, msg)
				}
			}
		}()
		err := s.timed("up", func() error {
			_, err := st.Up(ctx, optup.SuppressProgress(), optup.ContinueOnError(), optup.EventStreams(stream), optup.Parallel(parallel))
			return err
		})
		// The SDK closes the stream once it has read the engine's log to
		// the end; an update that failed before starting has none.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return err
	}
	// An engine interrupted hard (a lease lost) may release its lock yet
	// leave creates pending: repair them, or their VMs are made twice.
	err = s.locked(ctx, st, func() error {
		if err := s.repair(ctx, st); err != nil {
			return fmt.Errorf("repair %s: %w", name, err)
		}
		return up()
	})
	if err != nil {
		err = fmt.Errorf("update %s: %w", name, err)
	}
	exists, serr := s.state(ctx, st)
	mu.Lock()
	defer mu.Unlock()
	rep.Exists, rep.Failed = exists, maps.Clone(rep.Failed)
	return rep, errors.Join(err, serr)
}

// sessionOf reads the session ID from a resource's URN: resources are
// named after their session (infra.Session).
func sessionOf(urn string) string {
	name := urn[strings.LastIndex(urn, "::")+2:]
	for _, suffix := range []string{infra.ExpireSuffix, infra.AttachSuffix, infra.WorkSuffix} {
		if id, ok := strings.CutSuffix(name, suffix); ok {
			return id
		}
	}
	return name
}

// describe turns the engine's events into the steps a participant sees.
func describe(ev events.EngineEvent, zones map[string]string) (sessionID, msg string) {
	pre := ev.ResourcePreEvent
	if pre == nil || pre.Planning || pre.Metadata.Op != apitype.OpCreate {
		return "", ""
	}
	id := sessionOf(pre.Metadata.URN)
	switch pre.Metadata.Type {
	case "gcp:compute/instance:Instance":
		return id, "creating the VM in " + zones[id]
	case "gcp:cloudscheduler/job:Job":
		return id, "scheduling the session's stop at its maximum lifetime"
	case "gcp:compute/disk:Disk":
		return id, "creating your work disk in " + zones[id]
	case "gcp:compute/attachedDisk:AttachedDisk":
		return id, "attaching your work disk"
	}
	return "", ""
}

// State reads which sessions' VMs a stack holds; none if it has no
// workspace (it was never created, or was removed).
func (s *Stacks) State(ctx context.Context, name string) (map[string]Outputs, error) {
	if _, err := os.Stat(s.WorkDir(name)); errors.Is(err, os.ErrNotExist) {
		return map[string]Outputs{}, nil
	}
	st, err := s.stack(ctx, name, nil)
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", name, err)
	}
	return s.state(ctx, st)
}

func (s *Stacks) state(ctx context.Context, st auto.Stack) (map[string]Outputs, error) {
	dep, err := st.Export(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the state of %s: %w", st.Name(), err)
	}
	var d struct {
		Resources []struct {
			URN     string `json:"urn"`
			Type    string `json:"type"`
			Outputs struct {
				Name              string `json:"name"`
				Zone              string `json:"zone"`
				NetworkInterfaces []struct {
					NetworkIP string `json:"networkIp"`
				} `json:"networkInterfaces"`
			} `json:"outputs"`
		} `json:"resources"`
	}
	if len(dep.Deployment) > 0 {
		if err := json.Unmarshal(dep.Deployment, &d); err != nil {
			return nil, fmt.Errorf("read the state of %s: %w", st.Name(), err)
		}
	}
	out := map[string]Outputs{}
	attached := map[string]bool{}
	for _, r := range d.Resources {
		switch r.Type {
		case "gcp:compute/attachedDisk:AttachedDisk":
			attached[sessionOf(r.URN)] = true
		case "gcp:compute/instance:Instance":
			o := Outputs{Instance: r.Outputs.Name, Zone: r.Outputs.Zone}
			if len(r.Outputs.NetworkInterfaces) > 0 {
				o.InternalIP = r.Outputs.NetworkInterfaces[0].NetworkIP
			}
			out[sessionOf(r.URN)] = o
		}
	}
	for id, o := range out {
		o.Work = attached[id]
		out[id] = o
	}
	return out, nil
}

// Remove deletes whatever a stack still holds, then the stack and its
// workspace. A stack that does not exist is already removed.
func (s *Stacks) Remove(ctx context.Context, name string) error {
	st, err := s.stack(ctx, name, nil)
	if err != nil {
		return fmt.Errorf("stack %s: %w", name, err)
	}
	err = s.locked(ctx, st, func() error {
		return s.timed("destroy", func() error {
			_, err := st.Destroy(ctx, optdestroy.SuppressProgress(), optdestroy.Parallel(parallel))
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("destroy %s: %w", name, err)
	}
	if err := st.Workspace().RemoveStack(ctx, name); err != nil {
		return fmt.Errorf("remove stack %s: %w", name, err)
	}
	return os.RemoveAll(s.WorkDir(name))
}

// locked runs op on a stack and deals with a lock another operation left.
// A lock whose pulumi process is gone was left by a crash (cohort killed
// mid-update, which kills its engine too): it is removed, the state is
// repaired, and op runs again. A lock whose process still runs is waited
// for, up to LockWait.
func (s *Stacks) locked(ctx context.Context, st auto.Stack, op func() error) error {
	deadline := time.Now().Add(s.opts.LockWait)
	for {
		err := op()
		if err == nil || !auto.IsConcurrentUpdateError(err) && !strings.Contains(err.Error(), "currently locked") {
			return err
		}
		removed, held, lerr := s.unlock(ctx, st.Name())
		switch {
		case lerr != nil:
			return fmt.Errorf("%w (and the stack's lock could not be read: %v)", err, lerr)
		case removed:
			s.opts.Logger.Warn("removed a stale lock of a crashed update; repairing the stack's state", "stack", st.Name())
			if err := s.repair(ctx, st); err != nil {
				return fmt.Errorf("repair %s after a crashed update: %w", st.Name(), err)
			}
		case held && time.Now().Before(deadline):
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Second):
			}
		default:
			return err
		}
	}
}

// unlock removes the locks of a stack whose process is gone, on any state
// backend (through gocloud.dev, as Pulumi's own file:// and gs:// backends
// do; pulumi/pulumi#9253), and says whether it removed one and whether a
// live one remains.
func (s *Stacks) unlock(ctx context.Context, stack string) (removed, held bool, err error) {
	bucket, err := blob.OpenBucket(ctx, s.opts.StateURL)
	if err != nil {
		return false, false, err
	}
	defer bucket.Close()
	// Pulumi's backends have put locks under both layouts.
	for _, prefix := range []string{".pulumi/locks/organization/" + project + "/" + stack + "/", ".pulumi/locks/" + project + "/" + stack + "/"} {
		it := bucket.List(&blob.ListOptions{Prefix: prefix})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return removed, held, err
			}
			if !strings.HasSuffix(obj.Key, ".json") {
				continue
			}
			b, err := bucket.ReadAll(ctx, obj.Key)
			if err != nil {
				return removed, held, err
			}
			if lockHeld(b) {
				held = true
				continue
			}
			if err := bucket.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				return removed, held, fmt.Errorf("remove the stale lock %s: %w", obj.Key, err)
			}
			removed = true
		}
	}
	return removed, held, nil
}

// timed runs one engine operation and counts it in the metrics.
func (s *Stacks) timed(operation string, run func() error) error {
	start := time.Now()
	err := run()
	s.opts.Metrics.EngineRun(operation, time.Since(start), err)
	return err
}

// lockHeld reports whether the process that took a lock still runs. A
// lock taken on another host is not held. Stacks are only updated under
// their shard's lease (Driver.UpdateShard), so whoever took the lock had
// the lease before us, and a replica that cannot renew its lease
// interrupts its engine well before the lease runs out: the lock is what
// a crash left. On this host, a live process is waited for: an engine
// interrupted a moment ago is still writing its state.
func lockHeld(b []byte) bool {
	var lock struct {
		Pid      int    `json:"pid"`
		Hostname string `json:"hostname"`
	}
	if json.Unmarshal(b, &lock) != nil || lock.Pid <= 0 {
		return false
	}
	if host, _ := os.Hostname(); host != lock.Hostname {
		return false
	}
	// A pid is reused, by anything once cohort's container restarts: only
	// a pulumi process holds a lock.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", lock.Pid))
	return err == nil && strings.Contains(string(cmdline), "pulumi")
}
