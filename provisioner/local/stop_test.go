package local_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/provisioner/local"
	"github.com/cohortdev/cohort/provisioner/local/localtest"
)

// fakeServer writes an executable "notebook server" that runs script
// with sh, where a session's uid can run it, and returns its path.
// Tests of what a session does to its uid need no Jupyter.
func fakeServer(t *testing.T, script string) string {
	t.Helper()
	bin := filepath.Join(localtest.Root(t), "server")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// hiddenServer is a server whose main thread ends with the raw exit
// syscall while another thread runs on: /proc/PID/status then shows a
// zombie, and only /proc/PID/task shows what still runs.
var hiddenServer = fmt.Sprintf(`exec /usr/bin/python3 -c '
import ctypes, threading, time
threading.Thread(target=time.sleep, args=(600,)).start()
ctypes.CDLL(None).syscall(%d, 0)
'
`, unix.SYS_EXIT)

// liveTasks returns the tasks of uid that run, "PID/TID", read from every
// task of every process in /proc: what no kill has reached.
func liveTasks(uid uint32) []string {
	var live []string
	tasks, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*")
	for _, task := range tasks {
		status, err := os.ReadFile(filepath.Join(task, "status"))
		if err != nil {
			continue
		}
		var running, mine bool
		for line := range strings.SplitSeq(string(status), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 1 && f[0] == "State:":
				running = f[1] != "Z" && f[1] != "X"
			case len(f) == 5 && f[0] == "Uid:":
				mine = f[1] == strconv.FormatUint(uint64(uid), 10)
			}
		}
		if running && mine {
			pid := filepath.Base(filepath.Dir(filepath.Dir(task)))
			live = append(live, pid+"/"+filepath.Base(task))
		}
	}
	return live
}

// killTasksAtCleanup kills, by pid, whatever of uid a failing test leaves.
func killTasksAtCleanup(t *testing.T, uid uint32) {
	t.Cleanup(func() {
		for _, task := range liveTasks(uid) {
			pid, _, _ := strings.Cut(task, "/")
			n, _ := strconv.Atoi(pid)
			syscall.Kill(n, syscall.SIGKILL)
		}
	})
}

// eventually polls cond until it holds, failing the test after a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// TestHiddenProcessDiesWithStop: a process whose main thread exited
// alone looks like a zombie in /proc/PID/status while its other threads
// run. Stop must end it all the same, with its cgroup and without, before
// the uid goes to another session: otherwise it would act as the uid's
// next holder (the review read the next session's token this way).
func TestHiddenProcessDiesWithStop(t *testing.T) {
	t.Parallel()
	for _, withCgroup := range []bool{true, false} {
		t.Run(fmt.Sprintf("cgroup=%v", withCgroup), func(t *testing.T) {
			t.Parallel()
			opts := local.Options{UIDs: localtest.UIDs(t, 1), Root: localtest.Root(t), StopGrace: time.Second}
			opts.Bin = fakeServer(t, hiddenServer)
			d := newDriver(t, opts)
			switch {
			case !withCgroup:
				local.WithoutCgroups(d)
			case !local.HasCgroups(d):
				t.Skip("no cgroup v2 with cgroup.kill on this machine")
			}
			uid := opts.UIDs.First
			killTasksAtCleanup(t, uid)
			if err := d.Start(context.Background(), spec("ses_hide")); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the server's main thread to exit alone", func() bool {
				return len(procsOfUID(t, uid)) == 0 && len(liveTasks(uid)) > 0
			})
			if err := d.Stop(context.Background(), "ses_hide"); err != nil {
				t.Fatal(err)
			}
			if left := liveTasks(uid); len(left) > 0 {
				t.Fatalf("tasks of uid %d (pid/tid) outlived the stop: %v", uid, left)
			}
			if cg := local.CgroupOf(d, "ses_hide"); cg != "" {
				if _, err := os.Stat(cg); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the session's cgroup is left: %v", err)
				}
			}
		})
	}
}

// TestStopKeepsTheUIDUntilItsCgroupGoes: a cgroup that cannot be removed
// (here: a child cgroup pins it) fails the stop and keeps the uid from
// other sessions, until a later stop removes it.
func TestStopKeepsTheUIDUntilItsCgroupGoes(t *testing.T) {
	t.Parallel()
	opts := local.Options{UIDs: localtest.UIDs(t, 1), Root: localtest.Root(t), StopGrace: time.Second}
	opts.Bin = fakeServer(t, "exec sleep 600\n")
	d := newDriver(t, opts)
	if !local.HasCgroups(d) {
		t.Skip("no cgroup v2 with cgroup.kill on this machine")
	}
	ctx := context.Background()
	if err := d.Start(ctx, spec("ses_pinned")); err != nil {
		t.Fatal(err)
	}
	pin := filepath.Join(local.CgroupOf(d, "ses_pinned"), "pin")
	if err := os.Mkdir(pin, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(pin) })
	if err := d.Stop(ctx, "ses_pinned"); err == nil {
		t.Fatal("Stop succeeded with the session's cgroup left")
	}
	if err := d.Start(ctx, spec("ses_next")); cohort.ErrorCode(err) != cohort.EUNAVAILABLE {
		t.Fatalf("another session started while the uid's cgroup is left: %v", err)
	}
	if err := os.Remove(pin); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, "ses_pinned"); err != nil {
		t.Fatalf("Stop, once the cgroup can go: %v", err)
	}
	if err := d.Start(ctx, spec("ses_next")); err != nil {
		t.Fatalf("start once the uid is free: %v", err)
	}
}

// deepCode makes a tree depth levels deep in each directory it is given,
// then says so in the file argv[1].
const deepCode = `
import os, sys
depth = int(sys.argv[2])
for top in sys.argv[3:]:
    os.chdir(top)
    for _ in range(depth):
        os.mkdir("d", 0o711); os.chdir("d")
open(sys.argv[1], "w").close()
`

// TestDeepTreesDoNotStallStop: trees deeper than the descriptors cohort
// may hold, left in a session's run dir, home and /tmp, neither fail nor
// stall its stop and its next start. Not parallel: it lowers the
// process's limit on open files.
func TestDeepTreesDoNotStallStop(t *testing.T) {
	opts := local.Options{UIDs: localtest.UIDs(t, 1), Root: localtest.Root(t), StopGrace: time.Second}
	const depth = 3000
	bins := localtest.Root(t)
	code := filepath.Join(bins, "deep.py")
	if err := os.WriteFile(code, []byte(deepCode), 0o644); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(opts.Root, "ses_deep")
	done := filepath.Join(home, "work", "done")
	opts.Bin = filepath.Join(bins, "server")
	script := fmt.Sprintf("#!/bin/sh\n/usr/bin/python3 %s %s %d %s %s /tmp\nexec sleep 600\n",
		code, done, depth, filepath.Join(home, "run"), filepath.Join(home, "work"))
	if err := os.WriteFile(opts.Bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, opts)
	ctx := context.Background()
	if err := d.Start(ctx, spec("ses_deep")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session's deep trees", func() bool { _, err := os.Stat(done); return err == nil })

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	start := time.Now()
	if err := d.Stop(ctx, "ses_deep"); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop with trees %d deep: %v", depth, time.Since(start))
	if _, err := os.Lstat(filepath.Join(home, "run")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the run dir is left: %v", err)
	}
	start = time.Now()
	if err := d.Start(ctx, spec("ses_deep")); err != nil {
		t.Fatal(err)
	}
	t.Logf("the next Start, which gives the home back to the uid: %v", time.Since(start))
	if err := d.Stop(ctx, "ses_deep"); err != nil {
		t.Fatal(err)
	}
}
