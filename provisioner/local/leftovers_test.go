package local_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// plantCode is what a session leaves for the next holder of its uid:
// files in every directory all users may write, System V shared memory,
// message queue and semaphores, a POSIX message queue, keys in its user,
// user session and persistent keyrings, and hard links of a file of its
// home into a world-writable directory of the machine (argv[2]). It
// writes what it did to argv[1] when done. argv[3] is the keyctl syscall
// number, argv[4] add_key's.
const plantCode = `
import ctypes, errno, json, os, sys
report, shared, keyctl_nr, add_key_nr = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tag = "cohort-test-planted-%d" % os.getuid()
libc = ctypes.CDLL(None, use_errno=True)
done = {}
for d in ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"]:
    if os.path.isdir(d):
        with open(os.path.join(d, tag), "w") as f:
            f.write("secret")
key = 0x52560000 + os.getuid() % 0xffff
done["shm"] = libc.shmget(key, 4096, 0o1000 | 0o600)
done["msg"] = libc.msgget(key, 0o1000 | 0o600)
done["sem"] = libc.semget(key, 1, 0o1000 | 0o600)
rt = ctypes.CDLL("librt.so.1", use_errno=True)
done["mq"] = rt.mq_open(("/" + tag).encode(), os.O_CREAT | os.O_RDWR, 0o600, None)
def add_key(ring):
    return libc.syscall(ctypes.c_long(add_key_nr), b"user", tag.encode(), b"secret", ctypes.c_long(6), ctypes.c_long(ring))
done["key_u"], done["key_us"] = add_key(-4), add_key(-5)
pers = libc.syscall(ctypes.c_long(keyctl_nr), ctypes.c_long(22), ctypes.c_long(-1), ctypes.c_long(-4))
done["key_persistent"] = add_key(pers) if pers >= 0 else "unsupported"
home_file = os.path.join(os.environ["HOME"], "work", "linked")
with open(home_file, "w") as f:
    f.write("secret")
for d in [shared, "/tmp"]:
    try:
        os.link(home_file, os.path.join(d, tag + "-link"))
        done["link " + d] = "linked"
    except OSError as e:
        done["link " + d] = errno.errorcode[e.errno]
with open(report, "w") as f:
    json.dump(done, f)
`

// TestSessionLeavesNothingShared: what a session leaves in the machine's
// shared places (files in /tmp and its kind, System V IPC objects, POSIX
// message queues, keyrings) does not reach the machine or outlive its
// stop, where the uid's next holder would find it; and no hard link can
// take a file of its home into a directory others share.
func TestSessionLeavesNothingShared(t *testing.T) {
	t.Parallel()
	opts := local.Options{UIDs: localtest.UIDs(t, 1), Root: localtest.Root(t), StopGrace: time.Second}
	uid := opts.UIDs.First
	tag := "cohort-test-planted-" + strconv.FormatUint(uint64(uid), 10)
	bins := localtest.Root(t)
	plant := filepath.Join(bins, "plant.py")
	if err := os.WriteFile(plant, []byte(plantCode), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory every user may write, on the sessions' filesystem and
	// outside the directories a session gets its own of (like
	// /var/lib/php/sessions or /var/crash on some machines).
	shared := filepath.Join(bins, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil || os.Chmod(shared, 0o1777) != nil {
		t.Fatal(err)
	}
	report := filepath.Join(bins, "report.json")
	if err := os.WriteFile(report, nil, 0o666); err != nil || os.Chmod(report, 0o666) != nil {
		t.Fatal(err)
	}
	opts.Bin = filepath.Join(bins, "server")
	script := fmt.Sprintf("#!/bin/sh\n/usr/bin/python3 %s %s %s %d %d\nexec sleep 600\n", plant, report, shared, unix.SYS_KEYCTL, unix.SYS_ADD_KEY)
	if err := os.WriteFile(opts.Bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, opts)
	cleanUpPlanted(t, uid, tag, shared)
	if err := d.Start(context.Background(), spec("ses_plant")); err != nil {
		t.Fatal(err)
	}
	var done string
	eventually(t, "the session to plant its things", func() bool {
		b, _ := os.ReadFile(report)
		done = string(b)
		return len(b) > 0
	})
	t.Logf("the session planted: %s", done)
	for _, want := range []string{`"link /tmp": "EXDEV"`, fmt.Sprintf(`"link %s": "EXDEV"`, shared)} {
		if !strings.Contains(done, want) {
			t.Errorf("hard links out of the session's home: %s, want %s", done, want)
		}
	}
	for _, dir := range []string{"/tmp", "/var/tmp", "/dev/shm", "/run/lock"} {
		if _, err := os.Lstat(filepath.Join(dir, tag)); err == nil {
			t.Errorf("the session's file is in the machine's %s", dir)
		}
	}
	if err := d.Stop(context.Background(), "ses_plant"); err != nil {
		t.Fatal(err)
	}
	if left := sysvObjectsOf(t, uid); len(left) > 0 {
		t.Errorf("System V IPC objects of uid %d outlived the stop: %v", uid, left)
	}
	if out := posixQueue(t, "/"+tag); out != "ENOENT" {
		t.Errorf("the session's POSIX message queue after the stop: %s, want ENOENT", out)
	}
	// Invalidated keys are unreachable at once, and gone from the count
	// when the kernel's garbage collector has run.
	eventually(t, fmt.Sprintf("the kernel to hold no key of uid %d", uid), func() bool { return !keysOf(t, uid) })
}

// sysvObjectsOf returns the System V IPC objects of the machine's IPC
// namespace owned by uid, as "KIND ID".
func sysvObjectsOf(t *testing.T, uid uint32) []string {
	t.Helper()
	var found []string
	for _, kind := range []string{"shm", "msg", "sem"} {
		b, err := os.ReadFile("/proc/sysvipc/" + kind)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		col := slices.Index(strings.Fields(lines[0]), "uid")
		for _, line := range lines[1:] {
			if f := strings.Fields(line); col > 0 && col < len(f) && f[col] == strconv.FormatUint(uint64(uid), 10) {
				found = append(found, kind+" "+f[1])
			}
		}
	}
	return found
}

// posixQueue opens the POSIX message queue name in the machine's IPC
// namespace and says how it went: OK, or the error's name.
func posixQueue(t *testing.T, name string) string {
	t.Helper()
	code := `import ctypes, errno, sys
rt = ctypes.CDLL("librt.so.1", use_errno=True)
q = rt.mq_open(sys.argv[1].encode(), 0)
print("OK" if q >= 0 else errno.errorcode[ctypes.get_errno()], end="")
if len(sys.argv) > 2 and q >= 0: rt.mq_unlink(sys.argv[1].encode())`
	out, err := exec.Command("/usr/bin/python3", "-c", code, name).Output()
	if err != nil {
		t.Fatalf("open message queue %s: %v", name, err)
	}
	return string(out)
}

// keysOf reports whether the kernel holds keys of uid.
func keysOf(t *testing.T, uid uint32) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/key-users")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == strconv.FormatUint(uint64(uid), 10)+":" {
			return true
		}
	}
	return false
}

// cleanUpPlanted removes, at cleanup, whatever plantCode left where a
// failing test lets it reach: the machine's shared directories, its IPC
// namespace, the uid's keyrings.
func cleanUpPlanted(t *testing.T, uid uint32, tag, shared string) {
	t.Cleanup(func() {
		for _, dir := range []string{"/tmp", "/var/tmp", "/dev/shm", "/run/lock", shared} {
			os.Remove(filepath.Join(dir, tag))
			os.Remove(filepath.Join(dir, tag+"-link"))
		}
		for _, obj := range sysvObjectsOf(t, uid) {
			kind, id, _ := strings.Cut(obj, " ")
			exec.Command("ipcrm", "-"+map[string]string{"shm": "m", "msg": "q", "sem": "s"}[kind], id).Run()
		}
		posixUnlink := `import ctypes, sys; ctypes.CDLL("librt.so.1").mq_unlink(sys.argv[1].encode())`
		exec.Command("/usr/bin/python3", "-c", posixUnlink, "/"+tag).Run()
		invalidate := fmt.Sprintf(`import ctypes
k = lambda *a: ctypes.CDLL(None).syscall(ctypes.c_long(%d), *[ctypes.c_long(x) for x in a])
rings = [k(22, -1, -2), k(0, -4, 1), k(0, -5, 1)]
for r in rings: k(21, r)`, unix.SYS_KEYCTL)
		cmd := exec.Command("/usr/bin/python3", "-I", "-c", invalidate)
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
		if keysOf(t, uid) {
			cmd.Run()
		}
	})
}

// lockCode puts a key in the user keyring of the uid it runs as, readable
// by the uid, then takes away the keyring's write and search permissions
// (possessor: view, read; user: view, read, setattr, which lets the test
// undo it): then it can be neither cleared nor invalidated, and the uid's
// next holder could read the key. argv[1] is add_key's syscall number,
// argv[2] keyctl's.
const lockCode = `
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
add_key, keyctl = int(sys.argv[1]), int(sys.argv[2])
k = lambda nr, *a: libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) if isinstance(x, int) else x for x in a])
key = k(add_key, b"user", b"kept", b"secret", 6, -4)
k(keyctl, 5, key, 0x3f3f0000)
assert k(keyctl, 5, -4, 0x03230000) == 0
`

// TestLockedKeyringRetiresTheUID: a session that makes its keyrings
// impossible to clear does not pass them on: Stop ends it, and its uid
// never serves another session.
func TestLockedKeyringRetiresTheUID(t *testing.T) {
	t.Parallel()
	opts := local.Options{UIDs: localtest.UIDs(t, 1), Root: localtest.Root(t), StopGrace: time.Second}
	uid := opts.UIDs.First
	opts.Bin = fakeServer(t, fmt.Sprintf("/usr/bin/python3 -c '%s' %d %d\nexec sleep 600\n", lockCode, unix.SYS_ADD_KEY, unix.SYS_KEYCTL))
	d := newDriver(t, opts)
	t.Cleanup(func() { unlockKeyrings(t, uid) })
	ctx := context.Background()
	if err := d.Start(ctx, spec("ses_lock")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session to lock its keyring", func() bool { return keysOf(t, uid) && len(procsOfUID(t, uid)) == 1 })
	if err := d.Stop(ctx, "ses_lock"); err != nil {
		t.Fatal(err)
	}
	if !local.Retired(d, uid) {
		t.Fatalf("uid %d, whose keyring could not be cleared, is not retired", uid)
	}
	if err := d.Start(ctx, spec("ses_next")); cohort.ErrorCode(err) != cohort.EUNAVAILABLE {
		t.Fatalf("a session started with the range's only uid retired: %v", err)
	}
}

// unlockKeyrings gives back the permissions lockCode took, and does away
// with the keyrings of uid.
func unlockKeyrings(t *testing.T, uid uint32) {
	// The locked keyring cannot be named as @u (it may not be searched):
	// its serial is in /proc/keys, which shows what the uid may view.
	code := fmt.Sprintf(`import ctypes, os
k = lambda *a: ctypes.CDLL(None).syscall(ctypes.c_long(%d), *[ctypes.c_long(x) for x in a])
for line in open("/proc/keys"):
    f = line.split()
    if f[7] == "keyring" and f[8] == "_uid.%%d:" %% os.getuid():
        k(5, int(f[0], 16), 0x3f3f0000)
for r in [k(22, -1, -2), k(0, -4, 1), k(0, -5, 1)]: k(21, r)`, unix.SYS_KEYCTL)
	cmd := exec.Command("/usr/bin/python3", "-I", "-c", code)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("unlock the keyrings of uid %d: %v (%s)", uid, err, out)
	}
}
