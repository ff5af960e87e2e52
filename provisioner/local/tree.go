package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Walks of a session's tree, done as root through directory descriptors:
// each entry is reached by its name relative to its parent's descriptor
// (fstatat, fchownat, unlinkat, openat with O_NOFOLLOW), so no symlink is
// ever followed and no path is resolved twice. A walk is linear in the
// number of entries, holds at most maxOpenDirs descriptors however deep
// the tree, and stops when its context ends.
//
// No entry can change between the look and the act (an fstatat, then the
// fchownat or unlinkat of the same name): these walks run only while no
// process of the session's uid runs (Start ends them all first; Stop
// after ending them), and no other uid may write in the tree.

// maxOpenDirs bounds the directory descriptors a walk holds: deeper, it
// closes the outer ones and reopens each through "..", checked, when it
// comes back up.
const maxOpenDirs = 32

// dirFrame is a directory of the walk's current path.
type dirFrame struct {
	fd    int // -1 while closed to keep within maxOpenDirs
	st    unix.Stat_t
	name  string   // in its parent
	names []string // entries still to visit
}

// walker walks the tree below a directory that its caller holds open.
type walker struct {
	ctx context.Context
	dev uint64 // the tree's filesystem: mount points below are not entered
	// visit is called for each entry, parent first; it may remove an
	// entry that is not a directory. It reports whether to enter a
	// directory.
	visit func(dirfd int, name string, st *unix.Stat_t) (enter bool, err error)
	// leave, if set, is called for each directory entered, once its
	// entries are done.
	leave func(dirfd int, name string, st *unix.Stat_t) error

	stack   []*dirFrame
	lowOpen int // the outermost frame but the first with an open fd
	buf     []byte
}

// walk visits everything below the directory open at fd, which it does
// not close.
func (w *walker) walk(fd int) error {
	top := &dirFrame{fd: fd}
	if err := unix.Fstat(fd, &top.st); err != nil {
		return err
	}
	w.dev, w.buf = top.st.Dev, make([]byte, 32<<10)
	names, err := w.readNames(fd)
	if err != nil {
		return err
	}
	top.names, w.stack, w.lowOpen = names, []*dirFrame{top}, 1
	defer w.closeAll()
	for len(w.stack) > 0 {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if err := w.step(); err != nil {
			return err
		}
	}
	return nil
}

// step visits the next entry of the innermost directory, or leaves it
// when it has none left.
func (w *walker) step() error {
	f := w.stack[len(w.stack)-1]
	if len(f.names) == 0 {
		return w.pop()
	}
	name := f.names[len(f.names)-1]
	f.names = f.names[:len(f.names)-1]
	var st unix.Stat_t
	if err := unix.Fstatat(f.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", name, err)
	}
	enter, err := w.visit(f.fd, name, &st)
	if err != nil || !enter || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Dev != w.dev {
		return err
	}
	return w.push(f.fd, name, &st)
}

// push enters directory name of the directory open at parent.
func (w *walker) push(parent int, name string, st *unix.Stat_t) error {
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	f := &dirFrame{fd: fd, name: name}
	if err := unix.Fstat(fd, &f.st); err != nil || f.st.Dev != st.Dev || f.st.Ino != st.Ino {
		unix.Close(fd)
		return fmt.Errorf("directory %s changed during the walk", name)
	}
	if f.names, err = w.readNames(fd); err != nil {
		unix.Close(fd)
		return fmt.Errorf("read %s: %w", name, err)
	}
	w.stack = append(w.stack, f)
	// Frames lowOpen..top are open: past the bound, the outermost of
	// them is closed, to be reopened on the way back up.
	if len(w.stack)-w.lowOpen > maxOpenDirs {
		unix.Close(w.stack[w.lowOpen].fd)
		w.stack[w.lowOpen].fd = -1
		w.lowOpen++
	}
	return nil
}

// pop leaves the innermost directory, reopening its parent through ".."
// if the parent was closed, and checking that it is the same directory.
func (w *walker) pop() error {
	n := len(w.stack)
	f := w.stack[n-1]
	if n == 1 {
		w.stack = w.stack[:0]
		return nil // the caller's: neither closed nor left
	}
	parent := w.stack[n-2]
	if parent.fd < 0 {
		fd, err := unix.Openat(f.fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("reopen the parent of %s: %w", f.name, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Dev != parent.st.Dev || st.Ino != parent.st.Ino {
			unix.Close(fd)
			return fmt.Errorf("the parent of %s changed during the walk", f.name)
		}
		parent.fd = fd
		w.lowOpen = n - 2
	}
	unix.Close(f.fd)
	w.stack = w.stack[:n-1]
	if w.leave != nil {
		return w.leave(parent.fd, f.name, &f.st)
	}
	return nil
}

// readNames returns the names in the directory open at fd but "." and "..".
func (w *walker) readNames(fd int) ([]string, error) {
	var names []string
	for {
		n, err := unix.ReadDirent(fd, w.buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(w.buf[:n], -1, names)
	}
}

// closeAll closes what an interrupted walk left open, the caller's fd
// excepted.
func (w *walker) closeAll() {
	for i, f := range w.stack {
		if i > 0 && f.fd >= 0 {
			unix.Close(f.fd)
		}
	}
}

// openDir opens the directory at path, refusing a symlink in its place.
func openDir(path string) (int, error) {
	return unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// removeTree removes path and, if it is a directory, everything in it.
// Unlike os.RemoveAll it holds a bounded number of descriptors, whatever
// the depth of what a participant left there.
func removeTree(ctx context.Context, path string) error {
	fd, err := openDir(path)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP):
		// A file or a symlink: itself goes, never what it points at.
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("remove %s: %w", path, err)
	}
	defer unix.Close(fd)
	w := &walker{
		ctx: ctx,
		visit: func(dirfd int, name string, st *unix.Stat_t) (bool, error) {
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				return true, nil
			}
			return false, ignoreGone(unix.Unlinkat(dirfd, name, 0))
		},
		leave: func(dirfd int, name string, _ *unix.Stat_t) error {
			return ignoreGone(unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR))
		},
	}
	if err := w.walk(fd); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

func ignoreGone(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// adoptTree gives a session's directory and what is in it to its uid
// before a start: what cohort made there (root's), and what an earlier
// run of the session left under another uid of the range. A regular file
// of root's with other hard links stays root's: it may be someone else's
// file linked in (protected_hardlinks is a sysctl, not a promise; and
// before sessions had a mount of their own, Stop gave every file to root,
// hard links out of the directory included). Anything else (an owner
// outside the range) is not cohort's to give. chown(2) clears the
// set-user-ID and set-group-ID bits of what it gives.
func adoptTree(ctx context.Context, dir string, uid uint32, r UIDRange) error {
	fd, err := openDir(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	give := func(st *unix.Stat_t) bool {
		switch {
		case st.Uid == uid && st.Gid == uid:
			return false
		case st.Uid == 0:
			return st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink == 1
		default:
			return r.Contains(st.Uid)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if give(&st) {
		if err := unix.Fchown(fd, int(uid), int(uid)); err != nil {
			return fmt.Errorf("give %s to uid %d: %w", dir, uid, err)
		}
	}
	w := &walker{
		ctx: ctx,
		visit: func(dirfd int, name string, st *unix.Stat_t) (bool, error) {
			if !give(st) {
				return true, nil
			}
			if err := unix.Fchownat(dirfd, name, int(uid), int(uid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return false, fmt.Errorf("give %s to uid %d: %w", name, uid, err)
			}
			return true, nil
		},
	}
	if err := w.walk(fd); err != nil {
		return fmt.Errorf("give %s to uid %d: %w", dir, uid, err)
	}
	return nil
}

// secureHome makes a stopped session's directory root's and 0700: none of
// what is in it can then be reached by the uid's next holder, nor by
// anyone but root, without a walk of it (see Stop).
func secureHome(dir string) error {
	fd, err := openDir(dir)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, 0, 0); err != nil {
		return fmt.Errorf("give %s to root: %w", filepath.Base(dir), err)
	}
	if err := unix.Fchmod(fd, 0o700); err != nil {
		return fmt.Errorf("close %s: %w", filepath.Base(dir), err)
	}
	return nil
}
