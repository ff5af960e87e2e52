package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/materials/materialstest"
)

// TestE2EPrivateMaterials: an instructor gives a class a private
// repository with its token (the CLI reads it from a file), the server
// seals it with the key it made in its data folder, and a participant's
// session has the repository's files. The token expires mid-course: the
// next session gets the version last fetched and the class says why,
// until the instructor sets a new token. The token is nowhere in the
// server's debug log, its database or its data folder.
func TestE2EPrivateMaterials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const secret = "glpat-e2e-0123456789abcdef"
	repo := materialstest.NewRepo(t, map[string]string{"train.ipynb": `{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}`, "config.cfg": "[private]\n"})
	private := materialstest.ServePrivate(t, repo, "oauth2", secret)
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	srv := startServer(t, dataDir, "COHORT_MATERIALS_CA_FILE="+private.CAFile)
	teacherToken := token(t, dataDir, "teacher@example.com", cohort.RoleInstructor)
	adaToken := token(t, dataDir, "ada@example.com", cohort.RoleParticipant)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := cliErr(srv, teacherToken, "class", "create", "--name", "private", "--materials-repo", private.URL)
	if err == nil || !strings.Contains(out, "asks for credentials") {
		t.Fatalf("a private repository without a token: %v %s", err, out)
	}
	out = cli(t, srv, teacherToken, "class", "create", "--name", "private", "--materials-repo", private.URL,
		"--materials-token-file", tokenFile, "--materials-token-user", "oauth2", "--json")
	var class cohort.Class
	if err := json.Unmarshal([]byte(out), &class); err != nil || class.Materials == nil || !class.Materials.Private {
		t.Fatalf("cohort class create with a token: %v %s", err, out)
	}
	if out := cli(t, srv, teacherToken, "class", "materials", class.ID); !strings.Contains(out, "private") {
		t.Fatalf("cohort class materials: %s", out)
	}
	if out, err := cliErr(srv, teacherToken, "class", "materials", class.ID, "--repo", private.URL, "--public"); err == nil || !strings.Contains(out, "asks for credentials") {
		t.Fatalf("--public on a private repository: %v %s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "secret-key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the server's secret key: %v %v", fi, err)
	}

	teacher := client.New(srv.url, teacherToken)
	if _, err := teacher.AddMembers(ctx, class.ID, []string{"ada@example.com"}, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	s := startReady(t, client.New(srv.url, adaToken), class.ID)
	if got := runKernel(t, srv.notebook(s.ID), adaToken, "import os; print(sorted(n for n in os.listdir('.') if not n.startswith('.')))"); got != "['config.cfg', 'train.ipynb']\n" {
		t.Fatalf("the session's folder holds %s", got)
	}

	// The token expires mid-course: the next session starts with the
	// version last fetched, and the class tells its instructors why until
	// they set a new token.
	ada := client.New(srv.url, adaToken)
	if _, err := ada.StopSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, ada, s.ID, cohort.StateStopped)
	private.Rotate("glpat-renewed-0123456789")
	repo.Commit(map[string]string{"day2.ipynb": "{}"})
	again := startReady(t, ada, class.ID)
	if got := runKernel(t, srv.notebook(again.ID), adaToken, "import os; print(sorted(n for n in os.listdir('.') if not n.startswith('.')))"); got != "['config.cfg', 'train.ipynb']\n" {
		t.Fatalf("with the token refused, the session's folder holds %s", got)
	}
	if out := cli(t, srv, teacherToken, "class", "materials", class.ID); !strings.Contains(out, "the last session's lookup failed") || !strings.Contains(out, "refused the token") {
		t.Fatalf("cohort class materials after the token expired: %s", out)
	}
	os.WriteFile(tokenFile, []byte("glpat-renewed-0123456789\n"), 0o600)
	if out := cli(t, srv, teacherToken, "class", "materials", class.ID, "--repo", private.URL, "--token-file", tokenFile, "--token-user", "oauth2"); !strings.Contains(out, "3 files") || strings.Contains(out, "lookup failed") {
		t.Fatalf("a new token: %s", out)
	}

	basic := base64.StdEncoding.EncodeToString([]byte("oauth2:" + secret))
	if strings.Contains(srv.log.String(), secret) || strings.Contains(srv.log.String(), basic) {
		t.Error("the server's log holds the token")
	}
	filepath.Walk(dataDir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || fi.Mode()&os.ModeType != 0 {
			return nil
		}
		if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(basic)) {
			t.Errorf("%s holds the token", path)
		}
		return nil
	})
}
