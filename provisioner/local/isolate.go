package local

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// setpriv (util-linux) starts each isolated notebook with no_new_privs:
// set-user-ID and set-group-ID bits and file capabilities mean nothing to
// a participant's programs then. Without it a participant could leave a
// copy of a program set-user-ID to their uid in a shared directory, and
// whoever runs it later would act as whoever holds that uid next.
const setpriv = "/usr/bin/setpriv"

// checkIsolation refuses, before anything is created, what would make
// session uids unsafe or unusable.
func checkIsolation(r UIDRange) error {
	if euid := os.Geteuid(); euid != 0 {
		return fmt.Errorf("a uid per session needs cohort to run as root (it runs as uid %d)", euid)
	}
	if err := r.validate(); err != nil {
		return err
	}
	// Refused rather than warned about: an account with one of these ids
	// would share its files and processes with a participant (and Stop
	// would kill its processes); a group with one of these ids (a
	// session's gid is its uid) would give participants that group's
	// files. Either is a configuration to fix before anyone logs in.
	for _, db := range []string{"/etc/passwd", "/etc/group"} {
		names, err := namesInRange(db, r)
		if err != nil {
			return err
		}
		if len(names) > 0 {
			return fmt.Errorf("session uids %s include ids of %s: %s; choose a range nobody uses", r, db, strings.Join(names, ", "))
		}
	}
	if _, err := os.Stat(setpriv); err != nil {
		return fmt.Errorf("%s is missing (Debian package util-linux): %w", setpriv, err)
	}
	return nil
}

// namesInRange returns the entries of a passwd-format file (/etc/passwd,
// /etc/group) whose id lies in r.
func namesInRange(path string, r UIDRange) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 {
			continue
		}
		if id, err := strconv.ParseUint(fields[2], 10, 32); err == nil && r.Contains(uint32(id)) {
			names = append(names, fields[0]+" ("+fields[2]+")")
		}
	}
	return names, sc.Err()
}

// traversable checks that a session's uid can reach dir: every ancestor
// must let other users through (o+x). An ancestor that others may write
// without the sticky bit is refused too: anyone could swap dir for a
// symlink of their choosing under cohort's feet.
func traversable(dir string) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		mode := fi.Mode()
		if mode&0o001 == 0 {
			return fmt.Errorf("session uids cannot reach %s: %s is not traversable by other users (mode %04o); chmod o+x it or choose another directory", dir, d, mode.Perm())
		}
		if mode&0o002 != 0 && mode&os.ModeSticky == 0 {
			return fmt.Errorf("%s (on the way to %s) is writable by every user without the sticky bit (mode %04o): anyone could replace what cohort keeps there", d, dir, mode.Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

// credential is a session's identity: its uid, the gid of the same number,
// and no supplementary groups at all.
func credential(uid uint32) *syscall.Credential {
	return &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}
}

// runAs runs a shell command as uid, with an empty environment.
func runAs(uid uint32, script string) error {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir, cmd.Env = "/", []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: credential(uid)}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s as uid %d: %w (%s)", script, uid, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// adoptTree gives a session's directory to its uid before a start. What a
// stopped run left is root-owned (see disownTree): it goes back to the
// participant, except a regular file with other hard links, which may be
// someone else's file linked in (protected_hardlinks is a sysctl, not a
// promise) and stays root's.
func adoptTree(dir string, uid uint32) error {
	return walkTree(dir, func(r *os.Root, path string, fi fs.FileInfo, st *syscall.Stat_t) error {
		if st.Uid != 0 {
			return nil // the uid's already, or not cohort's to give
		}
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			return nil
		}
		return r.Lchown(path, int(uid), int(uid))
	})
}

// disownTree makes what a stopped session left unreachable to whoever
// gets its uid next: everything of the uid becomes root's (Lchown: a
// symlink is changed, never followed), and set-user-ID and set-group-ID
// bits go, explicitly, so that a root-owned copy of a participant's
// program can never run as root. The files stay, as participants expect.
func disownTree(dir string, uid uint32) error {
	return walkTree(dir, func(r *os.Root, path string, fi fs.FileInfo, st *syscall.Stat_t) error {
		if st.Uid != uid && st.Gid != uid {
			return nil
		}
		if err := r.Lchown(path, 0, 0); err != nil {
			return err
		}
		if mode := fi.Mode(); mode&os.ModeSymlink == 0 && mode&(os.ModeSetuid|os.ModeSetgid) != 0 {
			return r.Chmod(path, mode&^(os.ModeSetuid|os.ModeSetgid))
		}
		return nil
	})
}

// walkTree calls fn for dir and everything under it, symlinks included
// and never followed, through an os.Root so that nothing outside dir can
// be reached whatever the tree holds.
func walkTree(dir string, fn func(r *os.Root, path string, fi fs.FileInfo, st *syscall.Stat_t) error) error {
	r, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	return fs.WalkDir(r.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", filepath.Join(dir, path), err)
		}
		fi, err := r.Lstat(path)
		if err != nil {
			return err
		}
		if err := fn(r, path, fi, fi.Sys().(*syscall.Stat_t)); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, path), err)
		}
		return nil
	})
}

// sharedDirs are the machine's directories that every user may write to,
// where a participant can leave files outside their session's directory.
func sharedDirs() []string {
	dirs := []string{"/tmp", "/var/tmp", "/dev/shm", "/run/lock"}
	if t := os.TempDir(); !slices.Contains(dirs, t) {
		dirs = append(dirs, t)
	}
	return dirs
}

// sweepShared removes what uid left in the shared directories, so that
// the next holder of the uid finds none of it. A uid can only have
// created entries where it could reach, so directories closed to others
// (o-x) are not entered: that keeps the walk of a busy /tmp short. The
// sessions root (in /tmp in tests) is never entered: what is there is
// disownTree's, and kept.
func sweepShared(uid uint32, sessionsRoot string) error {
	var errs []error
	for _, base := range sharedDirs() {
		r, err := os.OpenRoot(base)
		if err != nil {
			continue // this machine has no such directory
		}
		err = fs.WalkDir(r.FS(), ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || path == "." {
				return nil // gone meanwhile, or the base itself
			}
			if filepath.Join(base, path) == sessionsRoot {
				return fs.SkipDir
			}
			fi, err := r.Lstat(path)
			if err != nil {
				return nil
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid == uid || st.Gid == uid {
				if err := r.RemoveAll(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("remove %s: %w", filepath.Join(base, path), err)
				}
				return skipDir(d)
			}
			if d.IsDir() && fi.Mode()&0o001 == 0 {
				return fs.SkipDir
			}
			return nil
		})
		r.Close()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// skipDir tells fs.WalkDir not to enter d, which is gone. For a file it
// must be nil: fs.SkipDir would skip the rest of the file's directory.
func skipDir(d fs.DirEntry) error {
	if d.IsDir() {
		return fs.SkipDir
	}
	return nil
}
