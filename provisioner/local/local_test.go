package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/provisioner/local"
)

func newDriver(t *testing.T) *local.Driver {
	t.Helper()
	if _, err := os.Stat(local.DefaultBin); err != nil {
		t.Fatalf("%s is missing: run `make deps` (Debian package jupyter-notebook)", local.DefaultBin)
	}
	d, err := local.New(local.Options{Root: t.TempDir(), StopGrace: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAll(t, d) })
	return d
}

// stopAll ends whatever a failed test left running.
func stopAll(t *testing.T, d *local.Driver) {
	ids, err := d.List(context.Background())
	if err != nil {
		t.Error(err)
	}
	for _, id := range ids {
		if err := d.Stop(context.Background(), id); err != nil {
			t.Error(err)
		}
	}
}

func spec(id string) cohort.NotebookSpec {
	return cohort.NotebookSpec{SessionID: id, Token: cohort.NewSecret(""), BasePath: "/s/" + id + "/"}
}

func waitFor(t *testing.T, d *local.Driver, sp cohort.NotebookSpec, want cohort.InstanceState) cohort.Instance {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		in, err := d.Inspect(context.Background(), sp)
		if err != nil {
			t.Fatal(err)
		}
		if in.State == want {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance state %s (%s), want %s", in.State, in.Reason, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestStartInspectStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDriver(t)
	sp := spec("ses_a")
	if in, _ := d.Inspect(ctx, sp); in.State != cohort.InstanceAbsent {
		t.Fatalf("before start: %s, want absent", in.State)
	}
	if err := d.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	ready := waitFor(t, d, sp, cohort.InstanceReady)
	if !strings.HasPrefix(ready.Address, "http://127.0.0.1:") {
		t.Fatalf("address %q is not on loopback", ready.Address)
	}
	// Start again is a no-op: same server, same address.
	if err := d.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if again := waitFor(t, d, sp, cohort.InstanceReady); again.Address != ready.Address {
		t.Fatalf("second Start moved the notebook from %s to %s", ready.Address, again.Address)
	}
	// A wrong token is not ready: readiness proves the token works.
	wrong := sp
	wrong.Token = "nope"
	if in, _ := d.Inspect(ctx, wrong); in.State == cohort.InstanceReady {
		t.Fatal("notebook answered /api/status to a wrong token")
	}
	if ids, _ := d.List(ctx); len(ids) != 1 || ids[0] != sp.SessionID {
		t.Fatalf("List = %v", ids)
	}
	if err := os.WriteFile(filepath.Join(d.WorkDir(sp.SessionID), "model.txt"), []byte("weights"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, sp.SessionID); err != nil {
		t.Fatal(err)
	}
	if in, _ := d.Inspect(ctx, sp); in.State != cohort.InstanceAbsent {
		t.Fatalf("after stop: %s, want absent", in.State)
	}
	if ids, _ := d.List(ctx); len(ids) != 0 {
		t.Fatalf("List after stop = %v, want none", ids)
	}
	if _, err := os.Stat(filepath.Join(d.WorkDir(sp.SessionID), "model.txt")); err != nil {
		t.Fatalf("participant's file is gone after stop: %v", err)
	}
	if err := d.Stop(ctx, sp.SessionID); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestExitIsReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "broken-notebook")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'ERROR: no kernel for you' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := local.New(local.Options{Root: t.TempDir(), Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAll(t, d) })
	sp := spec("ses_b")
	if err := d.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	in := waitFor(t, d, sp, cohort.InstanceExited)
	if !strings.Contains(in.Reason, "exited: ERROR: no kernel for you") {
		t.Fatalf("reason %q does not say the server exited", in.Reason)
	}
}

func TestNewRefusesMissingBinary(t *testing.T) {
	t.Parallel()
	_, err := local.New(local.Options{Root: t.TempDir(), Bin: "/nonexistent/jupyter"})
	if err == nil || !strings.Contains(err.Error(), "jupyter-notebook package") {
		t.Fatalf("New with a missing binary = %v", err)
	}
}
