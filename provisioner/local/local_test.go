package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/provisioner/local"
	"github.com/cohortdev/cohort/provisioner/local/localtest"
)

// bothModes runs f as a subtest with each session as cohort's own user
// and with a uid per session (skipped when not root).
func bothModes(t *testing.T, f func(t *testing.T, opts local.Options)) {
	for _, isolated := range []bool{false, true} {
		name := "same-user"
		if isolated {
			name = "isolated"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts := local.Options{Root: localtest.Root(t), StopGrace: 3 * time.Second}
			if isolated {
				opts.UIDs = localtest.UIDs(t, 8)
			}
			f(t, opts)
		})
	}
}

func newDriver(t *testing.T, opts local.Options) *local.Driver {
	t.Helper()
	if _, err := os.Stat(local.DefaultBin); err != nil {
		t.Fatalf("%s is missing: run `make deps` (Debian package jupyter-notebook)", local.DefaultBin)
	}
	d, err := local.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAll(t, d) })
	return d
}

// stopAll ends whatever a failed test left running, and releases what
// sessions hold even when nothing of them runs (a cgroup, a uid).
func stopAll(t *testing.T, d *local.Driver) {
	ids, err := d.List(context.Background())
	if err != nil {
		t.Error(err)
	}
	for _, id := range append(ids, local.KnownSessions(d)...) {
		if err := d.Stop(context.Background(), id); err != nil {
			t.Error(err)
		}
	}
}

func spec(id string) cohort.NotebookSpec {
	return cohort.NotebookSpec{SessionID: id, Token: cohort.NewSecret(""), BasePath: "/"}
}

func waitFor(t *testing.T, d *local.Driver, sp cohort.NotebookSpec, want cohort.InstanceState) cohort.Instance {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
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
	bothModes(t, func(t *testing.T, opts local.Options) {
		ctx := context.Background()
		d := newDriver(t, opts)
		sp := spec("ses_a")
		if in, _ := d.Inspect(ctx, sp); in.State != cohort.InstanceAbsent {
			t.Fatalf("before start: %s, want absent", in.State)
		}
		if err := d.Start(ctx, sp); err != nil {
			t.Fatal(err)
		}
		ready := waitFor(t, d, sp, cohort.InstanceReady)
		if !strings.HasPrefix(ready.Address, "unix:") {
			t.Fatalf("address %q is not a unix socket", ready.Address)
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
		if _, err := os.Stat(socketOf(t, ready)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the socket is left after stop: %v", err)
		}
		if err := d.Stop(ctx, sp.SessionID); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		if err := d.Stop(ctx, "ses_never"); err != nil {
			t.Fatalf("Stop of a session never started: %v", err)
		}
	})
}

func TestExitIsReported(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, opts local.Options) {
		ctx := context.Background()
		// Not in t.TempDir(): a session's uid must be able to run it.
		opts.Bin = filepath.Join(localtest.Root(t), "broken-notebook")
		if err := os.WriteFile(opts.Bin, []byte("#!/bin/sh\necho 'ERROR: no kernel for you' >&2\nexit 3\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		d := newDriver(t, opts)
		sp := spec("ses_b")
		if err := d.Start(ctx, sp); err != nil {
			t.Fatal(err)
		}
		in := waitFor(t, d, sp, cohort.InstanceExited)
		if !strings.Contains(in.Reason, "exited: ERROR: no kernel for you") {
			t.Fatalf("reason %q does not say the server exited", in.Reason)
		}
		// As the reconciler does with a notebook that exited: the uid and
		// cgroup of an isolated session are released.
		if err := d.Stop(ctx, sp.SessionID); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewRefusesMissingBinary(t *testing.T) {
	t.Parallel()
	_, err := local.New(local.Options{Root: t.TempDir(), Bin: "/nonexistent/jupyter"})
	if err == nil || !strings.Contains(err.Error(), "jupyter-notebook package") {
		t.Fatalf("New with a missing binary = %v", err)
	}
}

// TestLongRootKeepsSocketsShort: a unix socket path holds 107 bytes, and
// a kernel's IPC sockets sit in the run dir under 50-byte names. Under a
// root too deep for them the notebook still starts, and its kernels run.
func TestLongRootKeepsSocketsShort(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, opts local.Options) {
		ctx := context.Background()
		opts.Root = filepath.Join(opts.Root, strings.Repeat("deep", 20))
		d := newDriver(t, opts)
		sp := spec("ses_long")
		if err := d.Start(ctx, sp); err != nil {
			t.Fatal(err)
		}
		in := waitFor(t, d, sp, cohort.InstanceReady)
		sock := socketOf(t, in)
		if len(sock) > 107 || strings.HasPrefix(sock, opts.Root) {
			t.Fatalf("socket %s is not in a short place", sock)
		}
		k := startKernel(t, in.Address, sp.Token)
		if out := k.run(t, "print(6 * 7)"); out.stdout != "42\n" {
			t.Fatalf("kernel under a long root: %+v", out)
		}
		if err := d.Stop(ctx, sp.SessionID); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Dir(sock)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the run dir %s is left after stop: %v", filepath.Dir(sock), err)
		}
	})
}

// TestLogIsCapped: the notebook server's log, to which the participant
// writes as much as they like, is emptied once it passes a few MiB: at a
// start, and when Inspect finds the server running.
func TestLogIsCapped(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, opts local.Options) {
		ctx := context.Background()
		opts.Bin = filepath.Join(localtest.Root(t), "chatty-notebook")
		chatty := "#!/bin/sh\nhead -c 9437184 /dev/zero\necho\necho 'all said'\nexec sleep 600\n"
		if err := os.WriteFile(opts.Bin, []byte(chatty), 0o755); err != nil {
			t.Fatal(err)
		}
		d := newDriver(t, opts)
		log := local.LogPath(d, "ses_log")
		// A log of 64 MiB (a hole: no disk) from earlier runs.
		if err := os.WriteFile(log, nil, 0o600); err != nil || os.Truncate(log, 64<<20) != nil {
			t.Fatal(err)
		}
		if err := d.Start(ctx, spec("ses_log")); err != nil {
			t.Fatal(err)
		}
		size := func() int64 {
			fi, err := os.Stat(log)
			if err != nil {
				t.Fatal(err)
			}
			return fi.Size()
		}
		// The server writes 9 MiB, then waits.
		eventually(t, "the server to write 9 MiB", func() bool {
			b, _ := os.ReadFile(log)
			return strings.HasSuffix(string(b), "all said\n")
		})
		if got := size(); got >= 64<<20 {
			t.Fatalf("the log is %d bytes after the start", got)
		}
		if _, err := d.Inspect(ctx, spec("ses_log")); err != nil {
			t.Fatal(err)
		}
		if got := size(); got > 0 {
			t.Fatalf("the log is %d bytes after Inspect found it past the cap", got)
		}
		if err := d.Stop(ctx, "ses_log"); err != nil {
			t.Fatal(err)
		}
	})
}
