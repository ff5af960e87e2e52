package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/materials/materialstest"
)

// TestE2EMaterialsAndWork is the workshop's day on the local driver
// (isolated as root): the class's materials are in a participant's first
// session; they edit one; the instructor pushes a change to it and a new
// file; the next session has the new file, keeps the participant's edit
// with the instructor's version beside it, and the work of the first.
// The participant downloads their work and the instructor collects a
// file, with the CLI, as zips of exactly the expected files.
func TestE2EMaterialsAndWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	srv := startServer(t, dataDir)
	teacherToken := token(t, dataDir, "teacher@example.com", cohort.RoleInstructor)
	teacher := client.New(srv.url, teacherToken)
	adaToken := token(t, dataDir, "ada@example.com", cohort.RoleParticipant)
	ada := client.New(srv.url, adaToken)
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "spaCy NER"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := teacher.AddMembers(ctx, class.ID, []string{"ada@example.com", "bob@example.com"}, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	repo := materialstest.NewRepo(t, map[string]string{
		"train.ipynb": `{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}`,
		"config.cfg":  "[training]\nmax_epochs = 10\n",
	})
	out := cli(t, srv, teacherToken, "class", "materials", class.ID, "--repo", repo.Dir, "--ref", "main")
	if !strings.Contains(out, "2 files") {
		t.Fatalf("cohort class materials --repo: %s", out)
	}
	if out, err := cliErr(srv, teacherToken, "class", "materials", class.ID, "--repo", repo.Dir, "--ref", "nope"); err == nil || !strings.Contains(out, `has no branch, tag or commit "nope"`) {
		t.Fatalf("a ref that does not exist: %v %s", err, out)
	}

	// The example workshop, a folder the CLI packs; a folder with a
	// symlink is refused before anything is sent.
	other, err := teacher.CreateClass(ctx, map[string]any{"name": "example"})
	if err != nil {
		t.Fatal(err)
	}
	if out := cli(t, srv, teacherToken, "class", "materials", other.ID, "--archive", "../../examples/spacy-workshop"); !strings.Contains(out, "archive spacy-workshop.tar.gz") || !strings.Contains(out, "4 files") {
		t.Fatalf("cohort class materials --archive FOLDER: %s", out)
	}
	linked := t.TempDir()
	os.WriteFile(filepath.Join(linked, "a.txt"), []byte("a"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(linked, "passwd"))
	if out, err := cliErr(srv, teacherToken, "class", "materials", other.ID, "--archive", linked); err == nil || !strings.Contains(out, "passwd is not a file") {
		t.Fatalf("a folder with a symlink: %v %s", err, out)
	}

	first := startReady(t, ada, class.ID)
	if got := runKernel(t, srv.notebook(first.ID), adaToken, "import os; print(sorted(n for n in os.listdir('.') if not n.startswith('.')))"); got != "['config.cfg', 'train.ipynb']\n" {
		t.Fatalf("the first session's folder holds %s", got)
	}
	runKernel(t, srv.notebook(first.ID), adaToken, "open('config.cfg', 'w').write('[training]\\nmax_epochs = 3\\n'); open('model.txt', 'w').write('trained')")
	if _, err := ada.StopSession(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, ada, first.ID, cohort.StateStopped)

	pushed := repo.Commit(map[string]string{"config.cfg": "[training]\nmax_epochs = 20\n", "project.yml": "title: NER"})
	second := startReady(t, ada, class.ID)
	if v, err := teacher.Materials(ctx, class.ID); err != nil || v.Materials.Version != "git-"+pushed {
		t.Fatalf("after a session got the pushed commit, the class shows %+v (%v); want git-%s", v.Materials, err, pushed)
	}
	got := runKernel(t, srv.notebook(second.ID), adaToken, "import os; print(sorted(n for n in os.listdir('.') if not n.startswith('.')))")
	for _, want := range []string{"'model.txt'", "'project.yml'", "'config.cfg'", "'config.class-"} {
		if !strings.Contains(got, want) {
			t.Fatalf("the second session's folder holds %s: no %s", got, want)
		}
	}

	var zip bytes.Buffer
	if _, err := ada.DownloadWork(ctx, class.ID, &zip); err != nil {
		t.Fatal(err)
	}
	files := materialstest.Unzip(t, zip.Bytes())
	if files["config.cfg"] != "[training]\nmax_epochs = 3\n" || files["model.txt"] != "trained" || len(files) != 5 {
		t.Fatalf("ada's download holds %v", keys(files))
	}
	for name, content := range files {
		if strings.HasPrefix(name, "config.class-") && content != "[training]\nmax_epochs = 20\n" {
			t.Fatalf("the class's config.cfg beside ada's = %q", content)
		}
	}
	dest := filepath.Join(t.TempDir(), "collected.zip")
	cli(t, srv, teacherToken, "class", "collect", class.ID, "config.cfg", "-o", dest)
	b, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	collected := materialstest.Unzip(t, b)
	if len(collected) != 1 || collected["ada@example.com/config.cfg"] != "[training]\nmax_epochs = 3\n" {
		t.Fatalf("collected %v", collected)
	}
	// Mid-session, the instructor pushes again and ada pulls it in.
	pullNew(t, srv, repo, adaToken, second.ID)
	if _, err := teacher.StopAll(ctx, class.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, teacher, second.ID, cohort.StateStopped)
	// With no session running, the work is still there to download.
	out = cli(t, srv, adaToken, "session", "download", class.ID, "-o", filepath.Join(t.TempDir(), "work.zip"))
	if !strings.HasPrefix(out, "wrote ") {
		t.Fatalf("cohort session download: %s", out)
	}
}

// pullNew pushes a new notebook to the class's repository and has the
// participant pull it into their running session.
func pullNew(t *testing.T, srv *server, repo *materialstest.Repo, token, sessionID string) {
	t.Helper()
	repo.Commit(map[string]string{"step2.ipynb": `{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}`})
	if out := cli(t, srv, token, "session", "pull", sessionID); !strings.Contains(out, "1 new file") {
		t.Fatalf("cohort session pull: %s", out)
	}
	if got := runKernel(t, srv.notebook(sessionID), token, "print(open('step2.ipynb').read()[:10])"); got != "{\"cells\": \n" {
		t.Fatalf("the pulled notebook reads %q", got)
	}
}

func startReady(t *testing.T, c *client.Client, classID string) *client.Session {
	t.Helper()
	s, _, err := c.StartSession(context.Background(), classID)
	if err != nil {
		t.Fatal(err)
	}
	return waitState(t, c, s.ID, cohort.StateReady)
}

// cli runs the cohort CLI against a server, as a user of the token.
func cli(t *testing.T, srv *server, token string, args ...string) string {
	t.Helper()
	out, err := cliErr(srv, token, args...)
	if err != nil {
		t.Fatalf("cohort %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func cliErr(srv *server, token string, args ...string) (string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "COHORT_URL="+srv.url, "COHORT_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
