package local_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jupyter"
	"github.com/cohortdev/cohort/provisioner/local"
	"github.com/cohortdev/cohort/provisioner/local/localtest"
)

// isolatedDriver returns a driver with a uid per session (n uids), or
// skips the test when not root.
func isolatedDriver(t *testing.T, n int) (*local.Driver, local.Options) {
	t.Helper()
	opts := local.Options{UIDs: localtest.UIDs(t, n), Root: localtest.Root(t), StopGrace: 3 * time.Second}
	return newDriver(t, opts), opts
}

// startReady starts a session and waits until its notebook answers.
func startReady(t *testing.T, d *local.Driver, id string) (cohort.NotebookSpec, cohort.Instance) {
	t.Helper()
	sp := spec(id)
	if err := d.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	return sp, waitFor(t, d, sp, cohort.InstanceReady)
}

// socketOf returns the path of the notebook's socket.
func socketOf(t *testing.T, in cohort.Instance) string {
	t.Helper()
	path, _, err := jupyter.ParseSocketAddress(in.Address)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// ownerOf returns the uid owning path.
func ownerOf(t *testing.T, path string) uint32 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

// procsOfUID returns the live processes whose real uid is uid, read
// straight from /proc.
func procsOfUID(t *testing.T, uid uint32) []string {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var found []string
	for _, dir := range dirs {
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil || bytes.Contains(status, []byte("State:\tZ")) {
			continue
		}
		for line := range strings.SplitSeq(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 5 && f[0] == "Uid:" && f[1] == strconv.FormatUint(uint64(uid), 10) {
				cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
				found = append(found, filepath.Base(dir)+" "+string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
			}
		}
	}
	return found
}

// writeOwned writes a file as root and gives it to uid, as if the session
// had written it.
func writeOwned(t *testing.T, path, content string, uid uint32) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, int(uid), int(uid)); err != nil {
		t.Fatal(err)
	}
}

// probeCode defines probe(kind, target) in a kernel: it prints OK when
// the access works, EACCES when the kernel refuses it for want of
// permission, and anything else otherwise, so that a test tells a wall
// from a mistake in its own code.
const probeCode = `
import os, socket
def probe(kind, target):
    try:
        if kind == "read":
            with open(target, "rb") as f:
                f.read(1)
        elif kind == "connect":
            s = socket.socket(socket.AF_UNIX)
            s.connect(target)
            s.close()
        print("OK")
    except PermissionError:
        print("EACCES")
    except Exception as e:
        print("OTHER", type(e).__name__, e)
`

// TestIsolatedSessionsAreStrangers: code in session A's kernel can reach
// neither session B's files nor its notebook, nor cohort's database or
// environment, nor act as B through a program B leaves behind; and
// nothing it starts outlives A's stop, whatever it does to hide.
func TestIsolatedSessionsAreStrangers(t *testing.T) {
	t.Parallel()
	d, opts := isolatedDriver(t, 8)
	// Kill by uid alone: the path of machines without cgroup v2, and the
	// harder one (TestStopKillsTheCgroup covers the other).
	local.WithoutCgroups(d)
	ctx := context.Background()
	spA, inA := startReady(t, d, "ses_a")
	spB, inB := startReady(t, d, "ses_b")
	uidA, uidB := ownerOf(t, filepath.Dir(d.WorkDir("ses_a"))), ownerOf(t, filepath.Dir(d.WorkDir("ses_b")))
	if uidA == 0 || uidA == uidB {
		t.Fatalf("sessions run as uids %d and %d", uidA, uidB)
	}
	mine, theirs := filepath.Join(d.WorkDir("ses_a"), "notes.txt"), filepath.Join(d.WorkDir("ses_b"), "notes.txt")
	writeOwned(t, mine, "a's notes", uidA)
	writeOwned(t, theirs, "b's notes", uidB)
	// A stand-in for cohort.db: root's file in root's private directory.
	// Beside the sessions root: a session's /tmp is its own.
	dbDir, err := os.MkdirTemp(filepath.Dir(opts.Root), "cohort-data-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dbDir) })
	db := filepath.Join(dbDir, "cohort.db")
	if err := os.WriteFile(db, []byte("SQLite format 3"), 0o600); err != nil {
		t.Fatal(err)
	}

	a := startKernel(t, inA.Address, spA.Token)
	if out := a.run(t, probeCode); out.ename != "" {
		t.Fatalf("define probe: %+v", out)
	}
	for _, c := range []struct{ what, kind, own, other string }{
		{"a file in another session's work dir", "read", mine, theirs},
		{"another session's notebook socket", "connect", socketOf(t, inA), socketOf(t, inB)},
		{"cohort's database", "read", mine, db},
		{"cohort's environment", "read", "/proc/self/environ", fmt.Sprintf("/proc/%d/environ", os.Getpid())},
	} {
		if out := a.run(t, fmt.Sprintf("probe(%q, %q)", c.kind, c.own)); out.stdout != "OK\n" {
			t.Errorf("%s: the probe fails on the session's own %s: %+v", c.what, c.own, out)
		}
		if out := a.run(t, fmt.Sprintf("probe(%q, %q)", c.kind, c.other)); out.stdout != "EACCES\n" {
			t.Errorf("%s: %s from A's kernel gave %+v, want a permission error", c.what, c.other, out)
		}
	}
	checkNoSetuid(t, a, d.WorkDir("ses_a"), inB, spB.Token, uidA, uidB)
	checkNothingOutlivesStop(t, d, a, spA.SessionID, uidA)
	if in, _ := d.Inspect(ctx, spB); in.State != cohort.InstanceReady {
		t.Fatalf("B after A's stop: %s, want ready", in.State)
	}
}

// checkNoSetuid: a program that A makes set-user-ID to itself, in a place
// B can reach (A's own directory, which A opens to others: there is no
// shared directory left to put it in), runs as B when B runs it.
// Otherwise B could act as A, and as whoever gets A's uid after A.
func checkNoSetuid(t *testing.T, a *kernel, workA string, inB cohort.Instance, tokenB string, uidA, uidB uint32) {
	t.Helper()
	prog := filepath.Join(workA, "id")
	code := fmt.Sprintf("import shutil; os.chmod(%q, 0o711); os.chmod(%q, 0o711); shutil.copy('/usr/bin/id', %q); os.chmod(%q, 0o4755)",
		filepath.Dir(workA), workA, prog, prog)
	if out := a.run(t, code); out.ename != "" {
		t.Fatalf("A makes a set-user-ID program: %+v", out)
	}
	if fi, err := os.Stat(prog); err != nil || fi.Mode()&os.ModeSetuid == 0 || ownerOf(t, prog) != uidA {
		t.Fatalf("A's program is not set-user-ID to A: %v", err)
	}
	b := startKernel(t, inB.Address, tokenB)
	out := b.run(t, fmt.Sprintf("import subprocess; print(subprocess.run([%q, '-u'], capture_output=True, text=True, check=True).stdout, end='')", prog))
	if want := strconv.FormatUint(uint64(uidB), 10) + "\n"; out.stdout != want {
		t.Fatalf("B ran A's set-user-ID program as uid %q, want %q (%+v)", out.stdout, want, out)
	}
}

// checkNothingOutlivesStop: processes A detaches (new session, double
// fork, empty environment) and a loop that keeps forking all end with
// A's stop.
func checkNothingOutlivesStop(t *testing.T, d *local.Driver, a *kernel, id string, uid uint32) {
	t.Helper()
	escape := `import subprocess
subprocess.run(["setsid", "-f", "sh", "-c", "nohup env -i sleep 600 >/dev/null 2>&1 &"], check=True)
subprocess.run(["setsid", "-f", "sh", "-c", "while :; do env -i sleep 600 & sleep 0.05; done >/dev/null 2>&1"], check=True)`
	if out := a.run(t, escape); out.ename != "" {
		t.Fatalf("start the escapees: %+v", out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !detachedSleep(t, uid) {
		if time.Now().After(deadline) {
			t.Fatalf("no detached sleep of uid %d runs: %v", uid, procsOfUID(t, uid))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := d.Stop(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if left := procsOfUID(t, uid); len(left) > 0 {
		t.Fatalf("processes of A's uid %d outlived its stop: %v", uid, left)
	}
}

// detachedSleep reports whether a `sleep 600` of uid runs with an empty
// environment: nothing that the same-user mode could recognize it by.
func detachedSleep(t *testing.T, uid uint32) bool {
	for _, p := range procsOfUID(t, uid) {
		pid, cmd, _ := strings.Cut(p, " ")
		if cmd != "sleep 600 " {
			continue
		}
		if env, err := os.ReadFile("/proc/" + pid + "/environ"); err == nil && len(env) == 0 {
			return true
		}
	}
	return false
}
