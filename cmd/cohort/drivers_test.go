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

// Every server of an installation seals with one key: one with another
// refuses to start while tokens are sealed with the installation's,
// unless told that key is lost.
func TestServersShareTheSecretKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cohort.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log := slog.New(slog.DiscardHandler)
	first, _ := seal.ParseKey(seal.NewKeyText())
	other, _ := seal.ParseKey(seal.NewKeyText())
	if err := checkSecretKey(ctx, store, first.ID(), "a", false, log); err != nil {
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

	err = checkSecretKey(ctx, store, other.ID(), "b", false, log)
	if err == nil || !strings.Contains(err.Error(), "1 classes' repository tokens are sealed with key "+first.ID()) || !strings.Contains(err.Error(), "--forget-tokens") {
		t.Fatalf("a server with another key = %v", err)
	}
	if err := checkSecretKey(ctx, store, first.ID(), "a", false, log); err != nil {
		t.Fatalf("the first key again: %v", err)
	}
	if err := checkSecretKey(ctx, store, other.ID(), "b", true, log); err != nil {
		t.Fatalf("told the first key is lost: %v", err)
	}
	got, _ := store.GetClass(ctx, class.ID)
	if got.Materials.Private || got.Materials.Credential != "" || got.Materials.Version != "git-1" {
		t.Fatalf("after the tokens were forgotten, materials = %+v", got.Materials)
	}
	// With no token sealed with it, a key replaced is simply recorded.
	if err := checkSecretKey(ctx, store, first.ID(), "a", false, log); err != nil {
		t.Fatalf("a key replaced with no token sealed: %v", err)
	}
}
