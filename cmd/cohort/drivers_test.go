//go:build linux && !client

package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jobs"
	"github.com/cohortdev/cohort/seal"
	"github.com/cohortdev/cohort/store/sqlite"
)

// A server whose notebooks run as its own user takes no repository's
// token: they could read the key that seals it.
func TestTokensNeedIsolatedNotebooks(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	m := &Main{Config: Config{DataDir: dataDir, Driver: "local", SessionUIDs: "off", SessionsDir: filepath.Join(dataDir, "sessions")}}
	log := slog.New(slog.DiscardHandler)
	library, err := m.materials(true, jobs.SQLite, log)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "secret-key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the secret key made: %v %v", fi, err)
	}
	token := cohort.RepoToken{Token: "github_pat_x"}
	if _, err := library.Seal("https://git.example.org/w.git", token); err != nil {
		t.Fatalf("with a key: %v", err)
	}
	if _, _, err := m.driver(log, "http://127.0.0.1:1", "", &database{kind: jobs.SQLite}, nil, library); err != nil {
		t.Fatal(err)
	}
	_, err = library.Seal("https://git.example.org/w.git", token)
	if cohort.ErrorCode(err) != cohort.EUNAVAILABLE || !strings.Contains(cohort.ErrorMessage(err), "run cohort as root") {
		t.Errorf("Seal with notebooks as the server's user = %v", err)
	}

	// With Postgres (replicas), a key only from a file given.
	shared := &Main{Config: Config{DataDir: t.TempDir()}}
	library, err = shared.materials(false, jobs.Postgres, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := library.Seal("https://git.example.org/w.git", token); !strings.Contains(cohort.ErrorMessage(err), "--secret-key-file") {
		t.Errorf("Seal on Postgres without --secret-key-file = %v", err)
	}
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "cohort.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// Every server of an installation seals with one key: one with another
// refuses to start (a single server, only while tokens are sealed with
// the installation's), unless told that key is lost.
func TestServersShareTheSecretKey(t *testing.T) {
	t.Parallel()
	ctx, store, log := context.Background(), openStore(t), slog.New(slog.DiscardHandler)
	first, _ := seal.ParseKey(seal.NewKeyText())
	other, _ := seal.ParseKey(seal.NewKeyText())
	if err := checkSecretKey(ctx, store, first.ID(), "a", false, false, log); err != nil {
		t.Fatal(err)
	}
	owner, _ := store.EnsureUser(ctx, "ada@example.com", cohort.RoleInstructor)
	class := cohort.DefaultClass()
	class.Name, class.OwnerID = "private", owner.ID
	class.Materials = &cohort.Materials{Repo: "https://git.example.org/w.git", Private: true, Version: "git-1",
		Credential: first.Seal([]byte(`{"user":"x","token":"y"}`), "w")}
	if err := store.CreateClass(ctx, &class); err != nil {
		t.Fatal(err)
	}

	err := checkSecretKey(ctx, store, other.ID(), "b", false, false, log)
	if err == nil || !strings.Contains(err.Error(), "(1 classes' repository tokens are sealed with key "+first.ID()+")") || !strings.Contains(err.Error(), "--forget-tokens") {
		t.Fatalf("a server with another key = %v", err)
	}
	if err := checkSecretKey(ctx, store, first.ID(), "a", false, false, log); err != nil {
		t.Fatalf("the first key again: %v", err)
	}
	if err := checkSecretKey(ctx, store, other.ID(), "b", false, true, log); err != nil {
		t.Fatalf("told the first key is lost: %v", err)
	}
	got, _ := store.GetClass(ctx, class.ID)
	if got.Materials.Private || got.Materials.Credential != "" || got.Materials.Version != "git-1" {
		t.Fatalf("after the tokens were forgotten, materials = %+v", got.Materials)
	}
	// With no token sealed with it, a single server's new key is simply
	// recorded (its key file was deleted); replicas must agree still.
	third, _ := seal.ParseKey(seal.NewKeyText())
	if err := checkSecretKey(ctx, store, third.ID(), "c", true, false, log); err == nil || !strings.Contains(err.Error(), "--forget-tokens") {
		t.Fatalf("a replica with another key and no token sealed = %v", err)
	}
	if err := checkSecretKey(ctx, store, first.ID(), "a", false, false, log); err != nil {
		t.Fatalf("a key replaced with no token sealed: %v", err)
	}

	// An upgrade: tokens sealed, no key recorded yet. A replica with the
	// wrong key, first to start, records nothing; the right one starts.
	upgraded := openStore(t)
	owner, _ = upgraded.EnsureUser(ctx, "ada@example.com", cohort.RoleInstructor)
	class.ID, class.OwnerID = "", owner.ID
	class.Materials.Credential = first.Seal([]byte(`{"user":"x","token":"y"}`), "w")
	if err := upgraded.CreateClass(ctx, &class); err != nil {
		t.Fatal(err)
	}
	if err := checkSecretKey(ctx, upgraded, other.ID(), "b", true, false, log); err == nil {
		t.Fatal("a replica with the wrong key started")
	}
	if err := checkSecretKey(ctx, upgraded, first.ID(), "a", true, false, log); err != nil {
		t.Fatalf("the right key after a wrong one was refused: %v", err)
	}
}

// Replicas encrypt the stacks' secrets alike: one with another
// passphrase refuses to start (a single server, once stacks exist).
func TestServersSharePulumiSecrets(t *testing.T) {
	t.Parallel()
	ctx, store, log := context.Background(), openStore(t), slog.New(slog.DiscardHandler)
	if err := checkPulumiSecrets(ctx, store, "passphrase", "first", "a", false, log); err != nil {
		t.Fatal(err)
	}
	// No stack yet: a replica must agree still; a single server takes
	// another passphrase (an installation begun again).
	if err := checkPulumiSecrets(ctx, store, "passphrase", "second", "b", true, log); err == nil {
		t.Fatal("a replica with another passphrase started")
	}
	if err := checkPulumiSecrets(ctx, store, "passphrase", "second", "b", false, log); err != nil {
		t.Fatalf("another passphrase with no stack: %v", err)
	}
	owner, _ := store.EnsureUser(ctx, "ada@example.com", cohort.RoleInstructor)
	class := cohort.DefaultClass()
	class.Name, class.OwnerID = "gpu", owner.ID
	if err := store.CreateClass(ctx, &class); err != nil {
		t.Fatal(err)
	}
	if err := store.EditShards(ctx, class.ID, func(set *cohort.ShardSet) error {
		set.Shards[class.ID+"-s1"] = &cohort.Shard{Name: class.ID + "-s1", ClassID: class.ID, Generation: 1}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err := checkPulumiSecrets(ctx, store, "passphrase", "first", "/etc/cohort/passphrase", false, log)
	if err == nil || !strings.Contains(err.Error(), "the passphrase in /etc/cohort/passphrase") || !strings.Contains(err.Error(), "1 shard stacks") {
		t.Fatalf("a replica with another passphrase = %v", err)
	}
	if err := checkPulumiSecrets(ctx, store, "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", "second", "b", false, log); err == nil {
		t.Fatal("a replica with another secrets provider started")
	}
	if err := checkPulumiSecrets(ctx, store, "passphrase", "second", "b", true, log); err != nil {
		t.Fatalf("the installation's passphrase: %v", err)
	}
	// With stacks made, a passphrase file not found is not made anew.
	missing := filepath.Join(t.TempDir(), "passphrase")
	if err := passphraseMissing(ctx, store, "passphrase", missing); err == nil || !strings.Contains(err.Error(), missing+" does not exist") {
		t.Errorf("a missing passphrase file with stacks made = %v", err)
	}
	os.WriteFile(missing, []byte("second\n"), 0o600)
	if err := passphraseMissing(ctx, store, "passphrase", missing); err != nil {
		t.Errorf("a passphrase file that exists = %v", err)
	}
}
