package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/provisioner/local"
	"github.com/cohortdev/cohort/provisioner/local/localtest"
)

// TestIsolatedSessionLayout: the notebook listens on a 0600 socket in a
// directory only its uid enters; kernels talk over IPC sockets beside
// their connection files, not in the participant's files; the session
// runs with no groups, umask 077, no_new_privs and a clean environment in
// which Python still knows who it is.
func TestIsolatedSessionLayout(t *testing.T) {
	t.Parallel()
	d, _ := isolatedDriver(t, 8)
	sp, in := startReady(t, d, "ses_layout")
	home := filepath.Dir(d.WorkDir(sp.SessionID))
	uid := ownerOf(t, home)
	sock := socketOf(t, in)
	for path, want := range map[string]os.FileMode{home: os.ModeDir | 0o700, filepath.Dir(sock): os.ModeDir | 0o700, sock: os.ModeSocket | 0o600} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want || ownerOf(t, path) != uid {
			t.Errorf("%s: mode %v owner %d, want %v owner %d", path, fi.Mode(), ownerOf(t, path), want, uid)
		}
	}

	k := startKernel(t, in.Address, sp.Token)
	out := k.run(t, `import os, getpass, json
mask = os.umask(0); os.umask(mask)
nnp = [l.split()[1] for l in open("/proc/self/status") if l.startswith("NoNewPrivs:")][0]
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "umask": mask,
    "user": getpass.getuser(), "nnp": nnp, "env": dict(os.environ), "cwd": os.getcwd()}))`)
	var got struct {
		UID, GID, Umask int
		Groups          []int
		User, NNP, CWD  string
		Env             map[string]string
	}
	if err := json.Unmarshal([]byte(out.stdout), &got); err != nil {
		t.Fatalf("kernel facts: %+v: %v", out, err)
	}
	if got.UID != int(uid) || got.GID != int(uid) || len(got.Groups) != 0 || got.Umask != 0o077 || got.NNP != "1" {
		t.Errorf("kernel runs as uid %d gid %d groups %v umask %o no_new_privs %s; want %d, %d, none, 077, 1",
			got.UID, got.GID, got.Groups, got.Umask, got.NNP, uid, uid)
	}
	if got.User != "participant" || got.Env["HOME"] != home || got.Env["TMPDIR"] != filepath.Join(home, "tmp") || got.CWD != d.WorkDir(sp.SessionID) {
		t.Errorf("kernel: user %q, HOME %q, TMPDIR %q, cwd %q", got.User, got.Env["HOME"], got.Env["TMPDIR"], got.CWD)
	}
	for name := range got.Env {
		if strings.HasPrefix(name, "COHORT_") {
			t.Errorf("cohort's variable %s reached the kernel", name)
		}
	}

	conn, err := os.ReadFile(filepath.Join(filepath.Dir(sock), "kernel-"+k.ID+".json"))
	if err != nil {
		t.Fatalf("the kernel's connection file is not in the run dir: %v", err)
	}
	var info struct{ Transport, IP string }
	json.Unmarshal(conn, &info)
	if info.Transport != "ipc" || !strings.HasPrefix(info.IP, filepath.Dir(sock)+"/") {
		t.Errorf("kernel transport %q at %q, want ipc in %s", info.Transport, info.IP, filepath.Dir(sock))
	}
	if ipc, _ := filepath.Glob(info.IP + "-*"); len(ipc) != 5 {
		t.Errorf("kernel IPC sockets: %v, want 5", ipc)
	}
	if stray, _ := filepath.Glob(filepath.Join(d.WorkDir(sp.SessionID), "kernel-*")); len(stray) > 0 {
		t.Errorf("kernel files in the participant's work dir: %v", stray)
	}
}

// TestReusedUIDCannotReadPreviousFiles: with one uid for all, B gets the
// uid A had, and none of what A left: A's directory became root's and
// 0700, whatever modes A gave it and its files, and what A left in /tmp
// was in a /tmp of A's own.
func TestReusedUIDCannotReadPreviousFiles(t *testing.T) {
	t.Parallel()
	d, _ := isolatedDriver(t, 1)
	ctx := context.Background()
	spA, inA := startReady(t, d, "ses_first")
	home := filepath.Dir(d.WorkDir("ses_first"))
	uid := ownerOf(t, home)
	secret := filepath.Join(d.WorkDir("ses_first"), "secret.txt")
	left := "/tmp/cohort-test-left"
	a := startKernel(t, inA.Address, spA.Token)
	// Open to all, to show that modes do not matter.
	code := fmt.Sprintf(`import os
for p in [%q, %q]:
    open(p, "w").write("a's secret"); os.chmod(p, 0o644)
for p in [%q, %q]:
    os.chmod(p, 0o755)`, secret, left, home, d.WorkDir("ses_first"))
	if out := a.run(t, code); out.ename != "" {
		t.Fatalf("A writes its files: %+v", out)
	}
	if _, err := os.Lstat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("A's file in its /tmp is in the machine's /tmp: %v", err)
	}
	if err := d.Stop(ctx, spA.SessionID); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(home); err != nil || ownerOf(t, home) != 0 || fi.Mode().Perm() != 0o700 {
		t.Errorf("A's directory after the stop: %v owner %d (%v), want root's and 0700", fi.Mode(), ownerOf(t, home), err)
	}

	spB, inB := startReady(t, d, "ses_second")
	if got := ownerOf(t, filepath.Dir(d.WorkDir("ses_second"))); got != uid {
		t.Fatalf("B runs as uid %d, want A's %d again", got, uid)
	}
	own := filepath.Join(d.WorkDir("ses_second"), "own.txt")
	writeOwned(t, own, "b's", uid)
	b := startKernel(t, inB.Address, spB.Token)
	b.run(t, probeCode)
	if out := b.run(t, fmt.Sprintf("probe('read', %q)", own)); out.stdout != "OK\n" {
		t.Fatalf("B cannot read its own file: %+v", out)
	}
	if out := b.run(t, fmt.Sprintf("probe('read', %q)", secret)); out.stdout != "EACCES\n" {
		t.Errorf("B reading A's file: %+v, want a permission error", out)
	}
	if out := b.run(t, fmt.Sprintf("probe('read', %q)", left)); !strings.Contains(out.stdout, "FileNotFoundError") {
		t.Errorf("B reading what A left in /tmp: %+v, want no such file", out)
	}
}

// TestRestartedCohortTakesOver: a new Driver over the same root (cohort
// restarted) finds the running session, its uid and its notebook, and
// stops all of it.
func TestRestartedCohortTakesOver(t *testing.T) {
	t.Parallel()
	old, opts := isolatedDriver(t, 4)
	ctx := context.Background()
	sp, in := startReady(t, old, "ses_kept")
	uid := ownerOf(t, filepath.Dir(old.WorkDir(sp.SessionID)))
	startKernel(t, in.Address, sp.Token).run(t, "1")

	d := newDriver(t, opts)
	if ids, err := d.List(ctx); err != nil || len(ids) != 1 || ids[0] != sp.SessionID {
		t.Fatalf("List of the new driver = %v, %v", ids, err)
	}
	if err := d.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if again := waitFor(t, d, sp, cohort.InstanceReady); again.Address != in.Address {
		t.Fatalf("the new driver moved the notebook from %s to %s", in.Address, again.Address)
	}
	if err := d.Stop(ctx, sp.SessionID); err != nil {
		t.Fatal(err)
	}
	if left := procsOfUID(t, uid); len(left) > 0 {
		t.Fatalf("processes of the session's uid %d after the new driver stopped it: %v", uid, left)
	}
	if got, _ := old.Inspect(ctx, sp); got.State != cohort.InstanceAbsent {
		t.Fatalf("the old driver sees %s, want absent", got.State)
	}
}

// TestStartsNeverShareAUID: eight sessions started at once by two drivers
// over one root, with six uids: six start, each under a uid of its own;
// two are refused as unavailable, and start once others have stopped.
func TestStartsNeverShareAUID(t *testing.T) {
	t.Parallel()
	opts := local.Options{UIDs: localtest.UIDs(t, 6), Root: localtest.Root(t)}
	// No Jupyter: a uid is taken before the server starts, and a process
	// that just waits shows that Stop ends it.
	opts.Bin = filepath.Join(localtest.Root(t), "waiting-notebook")
	if err := os.WriteFile(opts.Bin, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	drivers := []*local.Driver{newDriver(t, opts), newDriver(t, opts)}
	ctx := context.Background()
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = drivers[i%2].Start(ctx, spec(fmt.Sprintf("ses_%d", i))) })
	}
	wg.Wait()
	uids := map[uint32]string{}
	var refused []string
	for i, err := range errs {
		id := fmt.Sprintf("ses_%d", i)
		switch {
		case err == nil:
			uid := ownerOf(t, filepath.Dir(drivers[0].WorkDir(id)))
			if other, dup := uids[uid]; dup || !opts.UIDs.Contains(uid) {
				t.Fatalf("%s runs as uid %d (also %q's), range %s", id, uid, other, opts.UIDs)
			}
			uids[uid] = id
		case cohort.ErrorCode(err) == cohort.EUNAVAILABLE:
			refused = append(refused, id)
		default:
			t.Fatalf("start %s: %v", id, err)
		}
	}
	if len(uids) != 6 || len(refused) != 2 {
		t.Fatalf("%d sessions started, %v refused; want 6 and 2", len(uids), refused)
	}
	for uid, id := range uids {
		if err := drivers[1].Stop(ctx, id); err != nil {
			t.Fatal(err)
		}
		if left := procsOfUID(t, uid); len(left) > 0 {
			t.Fatalf("%s stopped, its uid %d still runs %v", id, uid, left)
		}
	}
	for _, id := range refused {
		if err := drivers[0].Start(ctx, spec(id)); err != nil {
			t.Fatalf("start %s once uids are free: %v", id, err)
		}
	}
}

// TestRestartGivesFilesToTheNewUID: a session that starts again under
// another uid finds its files its own, set-user-ID bits gone; a file of
// root's that is linked elsewhere too stays root's.
func TestRestartGivesFilesToTheNewUID(t *testing.T) {
	t.Parallel()
	opts := local.Options{UIDs: localtest.UIDs(t, 2), Root: localtest.Root(t), StopGrace: time.Second}
	opts.Bin = fakeServer(t, `cd "$HOME/work"
if [ ! -e mine ]; then
	echo mine > mine; cp /bin/true prog; chmod 4755 prog; mkdir -p a/b/c; echo deep > a/b/c/f; ln -s /etc/shadow shadow
fi
exec sleep 600
`)
	d := newDriver(t, opts)
	ctx := context.Background()
	start := func(id string) {
		t.Helper()
		if err := d.Start(ctx, spec(id)); err != nil {
			t.Fatal(err)
		}
	}
	stop := func(id string) {
		t.Helper()
		if err := d.Stop(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	work := d.WorkDir("ses_x")
	start("ses_x")
	eventually(t, "the session's files", func() bool { _, err := os.Lstat(filepath.Join(work, "shadow")); return err == nil })
	first := ownerOf(t, filepath.Dir(work))
	// Hand the uid on, so that ses_x gets the other one next.
	start("ses_y")
	stop("ses_x")
	start("ses_z")
	stop("ses_y")
	// A file of root's, linked into the stopped session's files too.
	rootsFile := filepath.Join(localtest.Root(t), "roots") // on the sessions' filesystem
	if err := os.WriteFile(rootsFile, []byte("root's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(rootsFile, filepath.Join(work, "linked")); err != nil {
		t.Fatal(err)
	}
	start("ses_x")
	second := ownerOf(t, filepath.Dir(work))
	if second == first || !opts.UIDs.Contains(second) {
		t.Fatalf("ses_x runs as uid %d again (first %d)", second, first)
	}
	for _, name := range []string{".", "mine", "prog", "a", "a/b/c/f", "shadow"} {
		if got := ownerOf(t, filepath.Join(work, name)); got != second {
			t.Errorf("%s is uid %d's, want the new uid %d's", name, got, second)
		}
	}
	if fi, err := os.Lstat(filepath.Join(work, "prog")); err != nil || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("prog: %v %v, want its set-user-ID bit gone", fi.Mode(), err)
	}
	if got := ownerOf(t, rootsFile); got != 0 {
		t.Errorf("root's linked file is uid %d's now", got)
	}
	if got := ownerOf(t, "/etc/shadow"); got != 0 {
		t.Errorf("/etc/shadow is uid %d's now", got)
	}
}

// TestInterruptedStartStartsAgain: cohort killed between launching a
// notebook and recording it (kill -9 within ~50 ms of "start all") leaves
// its processes and no server on record. The restarted cohort sees the
// start as interrupted and starts again, ending what was launched; before,
// it waited on "cleaning up an earlier start" until the start timeout
// failed the seat.
func TestInterruptedStartStartsAgain(t *testing.T) {
	bothModes(t, func(t *testing.T, opts local.Options) {
		ctx := context.Background()
		d := newDriver(t, opts)
		sp, first := startReady(t, d, "ses_cut")
		if err := local.ForgetPID(d, sp.SessionID); err != nil {
			t.Fatal(err)
		}
		restarted := newDriver(t, opts)
		in, err := restarted.Inspect(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		seat := &cohort.Session{ID: sp.SessionID, State: cohort.StateProvisioning, StateChangedAt: time.Now()}
		step := provisioner.Plan(seat, in, time.Now(), provisioner.Timing{StartTimeout: 3 * time.Minute, Poll: time.Second})
		if step.Action != provisioner.ActStart {
			t.Fatalf("after a start cut short the driver sees %s (%q) and the plan is %+v; want a new start", in.State, in.Progress, step)
		}
		if err := restarted.Start(ctx, sp); err != nil {
			t.Fatal(err)
		}
		again := waitFor(t, restarted, sp, cohort.InstanceReady)
		t.Logf("ready again at %s (first at %s)", again.Address, first.Address)
	})
}
