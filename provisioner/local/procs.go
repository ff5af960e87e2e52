package local

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// In the same-user mode every process of a session (the notebook server,
// its kernels and terminals, whatever they start) inherits these
// variables. Scanning /proc for them finds a session's processes even
// after cohort restarted or a parent died and its children were
// re-parented. A process can drop them (env -i): only the uid of the
// isolated mode holds on to a session's processes whatever they do.
const (
	envRoot    = "COHORT_LOCAL_ROOT"
	envSession = "COHORT_SESSION_ID"
)

// procDirs lists /proc/PID for every process.
func procDirs() ([]string, error) { return filepath.Glob("/proc/[0-9]*") }

// scanProcs returns the PIDs of live processes that belong to sessions of
// the driver rooted at root, by session ID, found by their environment.
func scanProcs(root string) (map[string][]int, error) {
	dirs, err := procDirs()
	if err != nil {
		return nil, err
	}
	want := []byte(envRoot + "=" + root)
	out := map[string][]int{}
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join(dir, "environ"))
		if err != nil {
			continue // gone meanwhile, or not ours to read
		}
		var id string
		matched := false
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			switch {
			case bytes.Equal(kv, want):
				matched = true
			case bytes.HasPrefix(kv, []byte(envSession+"=")):
				id = string(kv[len(envSession)+1:])
			}
		}
		if matched && id != "" && !isZombie(dir) {
			out[id] = append(out[id], pid)
		}
	}
	return out, nil
}

// ownedBy reports whether pid is a live process of the given session of
// the driver rooted at root. It reads one process, not all of them, so
// that frequent readiness checks stay cheap.
func ownedBy(pid int, root, sessionID string) bool {
	dir := "/proc/" + strconv.Itoa(pid)
	env, err := os.ReadFile(filepath.Join(dir, "environ"))
	if err != nil || isZombie(dir) {
		return false
	}
	var rootOK, idOK bool
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		rootOK = rootOK || string(kv) == envRoot+"="+root
		idOK = idOK || string(kv) == envSession+"="+sessionID
	}
	return rootOK && idOK
}

// procUIDs returns the real, effective, saved and filesystem uids of the
// process at dir (/proc/PID); ok is false when it has gone or is a zombie.
func procUIDs(dir string) (uids [4]uint32, ok bool) {
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return uids, false
	}
	for line := range bytes.SplitSeq(status, []byte{'\n'}) {
		key, val, _ := bytes.Cut(line, []byte{':'})
		switch string(key) {
		case "State":
			if f := bytes.Fields(val); len(f) == 0 || f[0][0] == 'Z' || f[0][0] == 'X' {
				return uids, false
			}
		case "Uid":
			f := bytes.Fields(val)
			if len(f) != 4 {
				return uids, false
			}
			for i := range f {
				n, err := strconv.ParseUint(string(f[i]), 10, 32)
				if err != nil {
					return uids, false
				}
				uids[i] = uint32(n)
			}
			return uids, true
		}
	}
	return uids, false
}

// uidProcs returns the live processes with a uid in r (real, effective,
// saved or filesystem: a process that runs a program set-user-ID to a
// session's uid is that session's too), by uid.
func uidProcs(r UIDRange) (map[uint32][]int, error) {
	dirs, err := procDirs()
	if err != nil {
		return nil, err
	}
	out := map[uint32][]int{}
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		uids, ok := procUIDs(dir)
		if !ok {
			continue
		}
		for i, uid := range uids {
			if r.Contains(uid) && !slices.Contains(uids[:i], uid) {
				out[uid] = append(out[uid], pid)
			}
		}
	}
	return out, nil
}

// hasUID reports whether pid is a live process with uid among its uids.
func hasUID(pid int, uid uint32) bool {
	uids, ok := procUIDs("/proc/" + strconv.Itoa(pid))
	return ok && (uids[0] == uid || uids[1] == uid || uids[2] == uid || uids[3] == uid)
}

// isZombie reports whether the process has exited but not been reaped.
func isZombie(dir string) bool {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and
	// may itself contain spaces or parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

func signalAll(pids []int, sig syscall.Signal) {
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			continue
		}
	}
}
