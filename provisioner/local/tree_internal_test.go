package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lowFileLimit lowers this process's RLIMIT_NOFILE to n until the test
// ends or the returned function runs. Only for tests that are not
// parallel: every goroutine of the process shares the limit.
func lowFileLimit(t *testing.T, n uint64) (restore func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = n
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restore = func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) }
	t.Cleanup(restore)
	return restore
}

// ownedBelow counts the entries below the directory open at fd owned by
// uid, recursively: one descriptor per level, which the test's normal
// limit allows.
func ownedBelow(t *testing.T, fd int, uid uint32) int {
	t.Helper()
	f := os.NewFile(uintptr(fd), "dir")
	names, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		if st.Uid == uid {
			n++
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			if err != nil {
				t.Fatal(err)
			}
			n += ownedBelow(t, sub, uid)
		}
	}
	f.Close()
	return n
}

// deepTree makes dir/d/d/.../d, depth levels, with a file at each level,
// all owned by uid, and returns the number of entries below dir.
func deepTree(t *testing.T, dir string, depth int, uid int) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range depth {
		for _, err := range []error{
			unix.Mkdirat(fd, "d", 0o700),
			unix.Fchownat(fd, "d", uid, uid, unix.AT_SYMLINK_NOFOLLOW),
			unix.Mknodat(fd, "f", unix.S_IFREG|0o600, 0),
			unix.Fchownat(fd, "f", uid, uid, unix.AT_SYMLINK_NOFOLLOW),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	unix.Close(fd)
	return 2 * depth
}

// TestWalksAreBoundedAndLinear: adoptTree and removeTree get through a
// tree deeper than the descriptors this process may open, touch every
// entry and nothing a symlink points at, and stop when their context
// ends. (The walk they replaced resolved each entry's whole path again
// through an os.Root, quadratic in the depth, and os.RemoveAll holds a
// descriptor per level.) Not parallel: it lowers the process's limit.
func TestWalksAreBoundedAndLinear(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files to other uids needs root: run the tests as root, as CI does")
	}
	const depth, old, uid = 3000, 1_900_000_001, 1_900_000_002
	r := UIDRange{First: old, Last: uid}
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	entries := deepTree(t, dir, depth, old)
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	entries++
	restore := lowFileLimit(t, 256)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := adoptTree(ctx, dir, uid, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("adoptTree with its context ended: %v", err)
	}
	start := time.Now()
	if err := adoptTree(context.Background(), dir, uid, r); err != nil {
		t.Fatal(err)
	}
	t.Logf("adoptTree: %d entries %d deep in %v", entries, depth, time.Since(start))
	restore()
	top, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	owned := ownedBelow(t, top, uid)
	lowFileLimit(t, 256)
	if owned != entries {
		t.Errorf("%d of %d entries given to uid %d", owned, entries, uid)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(outside, &st); err != nil || st.Uid != 0 {
		t.Errorf("the file a symlink points at: owner %d (%v), want root's", st.Uid, err)
	}

	start = time.Now()
	if err := removeTree(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("removeTree: %d entries %d deep in %v", entries, depth, time.Since(start))
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is left: %v", dir, err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("removeTree reached the file a symlink points at: %v", err)
	}
}

// TestRemoveTreeTakesSymlinksNotTargets: a run dir swapped for a symlink
// goes, not what it points at.
func TestRemoveTreeTakesSymlinksNotTargets(t *testing.T) {
	t.Parallel()
	target := t.TempDir()
	keep := filepath.Join(target, "keep")
	if err := os.WriteFile(keep, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "run")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := removeTree(context.Background(), link); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the symlink is left: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("its target's file: %v", err)
	}
	if err := removeTree(context.Background(), filepath.Join(target, "none")); err != nil {
		t.Errorf("removing what is not there: %v", err)
	}
}
