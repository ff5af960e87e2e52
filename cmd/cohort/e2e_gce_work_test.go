package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/materials/materialstest"
)

// TestE2EGCEMaterialsAndWork runs issue 16's scenario on the GCE path:
// the class's materials reach a participant's work disk through their
// VM's agent; their edits follow the disk to their next session's VM, in
// the disk's zone, with the instructor's later push merged beside them;
// download, collect and a mid-session pull go through the running VM,
// and with none running, through the copy the last stop kept; with no
// GPU in the disk's zone, the start fails saying the work is safe, and
// the disk is kept.
func TestE2EGCEMaterialsAndWork(t *testing.T) {
	t.Parallel()
	fake := startFakeGCE(t)
	fake.Stockout("us-central1-a", true)
	ctx := context.Background()
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, gceEnv(t, fake)...)
	teacherToken := token(t, dataDir, "teacher@example.com", cohort.RoleInstructor)
	teacher := client.New(srv.url, teacherToken)
	adaToken := token(t, dataDir, "ada@example.com", cohort.RoleParticipant)
	ada := client.New(srv.url, adaToken)
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "spaCy NER"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := teacher.AddMembers(ctx, class.ID, []string{"ada@example.com"}, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	repo := materialstest.NewRepo(t, map[string]string{
		"train.ipynb": `{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}`,
		"config.cfg":  "[training]\nmax_epochs = 10\n",
	})
	cli(t, srv, teacherToken, "class", "materials", class.ID, "--repo", repo.Dir, "--ref", "main")
	ls := "import os; print(sorted(n for n in os.listdir('.') if not n.startswith('.')))"

	first := startReady(t, ada, class.ID)
	if got := runKernel(t, srv.notebook(first.ID), adaToken, ls); got != "['config.cfg', 'train.ipynb']\n" {
		t.Fatalf("the first session's work disk holds %s", got)
	}
	runKernel(t, srv.notebook(first.ID), adaToken, "open('config.cfg', 'w').write('[training]\\nmax_epochs = 3\\n'); open('model.txt', 'w').write('trained')")
	var zip bytes.Buffer
	if _, err := ada.DownloadWork(ctx, class.ID, &zip); err != nil {
		t.Fatal(err)
	}
	if files := materialstest.Unzip(t, zip.Bytes()); len(files) != 3 || files["model.txt"] != "trained" || files["config.cfg"] != "[training]\nmax_epochs = 3\n" {
		t.Fatalf("ada's download from her running VM holds %v", files)
	}
	if _, err := ada.StopSession(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, ada, first.ID, cohort.StateStopped)
	// With no session, the download is the copy the stop kept.
	zip.Reset()
	if _, err := ada.DownloadWork(ctx, class.ID, &zip); err != nil {
		t.Fatal(err)
	}
	if files := materialstest.Unzip(t, zip.Bytes()); len(files) != 3 || files["model.txt"] != "trained" {
		t.Fatalf("ada's download with no session holds %v", files)
	}
	disks := fake.Disks()
	if len(disks) != 1 {
		t.Fatalf("disks after the first session: %v", disks)
	}
	// The kept disk counts in the class's spend.
	if cc, err := teacher.ClassCost(ctx, class.ID); err != nil || cc.KeptWork != 1 || cc.KeptWorkGB != 10 || cc.KeptWorkMonth <= 0 {
		t.Fatalf("the class's cost with a kept disk: %+v, %v", cc, err)
	}

	// The first zone has GPUs again; ada's work is in the second.
	fake.Stockout("us-central1-a", false)
	repo.Commit(map[string]string{"config.cfg": "[training]\nmax_epochs = 20\n", "project.yml": "title: NER"})
	second := startReady(t, ada, class.ID)
	if vms := fake.Instances(); len(vms) != 1 || vms[0].Inputs["zone"] != "us-central1-b" {
		t.Fatalf("the second session's VM: %v, want one in us-central1-b, where the work disk is", vms)
	}
	got := runKernel(t, srv.notebook(second.ID), adaToken, ls)
	for _, want := range []string{"'model.txt'", "'project.yml'", "'config.cfg'", "'config.class-", "'train.ipynb'"} {
		if !strings.Contains(got, want) {
			t.Fatalf("the second session's work disk holds %s: no %s", got, want)
		}
	}
	if got := runKernel(t, srv.notebook(second.ID), adaToken, "print(open('config.cfg').read())"); got != "[training]\nmax_epochs = 3\n\n" {
		t.Fatalf("ada's edit reads %q after the push", got)
	}
	collected := collect(t, srv, teacherToken, class.ID, "config.cfg")
	if len(collected) != 1 || collected["ada@example.com/config.cfg"] != "[training]\nmax_epochs = 3\n" {
		t.Fatalf("collected %v", collected)
	}
	pullNew(t, srv, repo, adaToken, second.ID)
	if _, err := ada.StopSession(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, ada, second.ID, cohort.StateStopped)

	// No GPU where the work is: a clear failure, and the disk kept.
	fake.Stockout("us-central1-b", true)
	third, _, err := ada.StartSession(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	failed := waitState(t, ada, third.ID, cohort.StateFailed)
	if !strings.Contains(failed.Reason, "us-central1-b has no GPU") || !strings.Contains(failed.Reason, "your work is safe") {
		t.Fatalf("reason %q", failed.Reason)
	}
	if got := fake.Disks(); len(got) != 1 || len(got[firstKey(disks)]) != 0 {
		t.Fatalf("disks after the failed start: %v, want ada's, kept and detached", got)
	}
	if !strings.Contains(firstKey(disks), "us-central1-b/disks/cohort-work-") {
		t.Fatalf("ada's disk %s", firstKey(disks))
	}
	if collected := collect(t, srv, teacherToken, class.ID, "*.ipynb"); len(collected) != 2 || collected["ada@example.com/step2.ipynb"] == "" {
		t.Fatalf("collected with no session running: %v", collected)
	}
}

func firstKey[V any](m map[string]V) string {
	for k := range m {
		return k
	}
	return ""
}

// collect runs cohort class collect and reads the zip.
func collect(t *testing.T, srv *server, token, classID string, paths ...string) map[string]string {
	t.Helper()
	var zip bytes.Buffer
	if _, err := client.New(srv.url, token).Collect(context.Background(), classID, paths, &zip); err != nil {
		t.Fatal(err)
	}
	return materialstest.Unzip(t, zip.Bytes())
}
