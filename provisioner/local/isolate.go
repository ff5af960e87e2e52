package local

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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
func checkIsolation(r UIDRange, bin string) error {
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
	if err := toolsPresent(); err != nil {
		return err
	}
	// A session sees its own empty copy of these directories, not the
	// server that someone put there.
	if dir, ok := coveredBy(bin); ok {
		return fmt.Errorf("the notebook server %s is in %s, which each session gets an empty copy of: install it elsewhere", bin, dir)
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

// canRunAs says whether a process can be started as uid: in a user
// namespace that does not map it, the start itself fails. The probe's
// exit does not matter (another driver over the same range may kill it
// as a stray process of the range).
func canRunAs(uid uint32) error {
	cmd := exec.Command("/bin/true")
	cmd.Dir, cmd.Env = "/", []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: credential(uid)}
	if err := cmd.Start(); err != nil {
		return err
	}
	cmd.Wait()
	return nil
}
