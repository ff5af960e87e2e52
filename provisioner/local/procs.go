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
		env := environ(dir)
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
		if matched && id != "" && !isGone(dir) {
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
	env := environ(dir)
	if env == nil || isGone(dir) {
		return false
	}
	var rootOK, idOK bool
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		rootOK = rootOK || string(kv) == envRoot+"="+root
		idOK = idOK || string(kv) == envSession+"="+sessionID
	}
	return rootOK && idOK
}

// environ returns the environment of the process at dir, nil if it has
// gone or is not ours to read. A leader that exited alone (see procUIDs)
// has no memory left to read: a task that runs on still has it.
func environ(dir string) []byte {
	if env, err := os.ReadFile(filepath.Join(dir, "environ")); err == nil && len(env) > 0 {
		return env
	}
	tasks, _ := os.ReadDir(filepath.Join(dir, "task"))
	for _, task := range tasks {
		if env, err := os.ReadFile(filepath.Join(dir, "task", task.Name(), "environ")); err == nil && len(env) > 0 {
			return env
		}
	}
	return nil
}

// procUIDs returns the real, effective, saved and filesystem uids of the
// process at dir (/proc/PID), as long as one of its tasks still runs; ok
// is false when all of them have exited.
//
// Liveness is decided per task, not by the thread-group leader: a
// process whose main thread ended with the raw exit syscall shows as a
// zombie in /proc/PID/status while its other threads run on. Such a
// leader's status still gives the process's uids (a session's tasks
// cannot change theirs: no capability, no_new_privs), so the tasks are
// read only to find one that runs.
func procUIDs(dir string) (uids [4]uint32, ok bool) {
	uids, live, ok := readStatus(filepath.Join(dir, "status"))
	if !ok || live {
		return uids, ok
	}
	return uids, liveTask(dir)
}

// liveTask reports whether a task of the process at dir runs.
func liveTask(dir string) bool {
	tasks, err := os.ReadDir(filepath.Join(dir, "task"))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		if _, live, ok := readStatus(filepath.Join(dir, "task", task.Name(), "status")); ok && live {
			return true
		}
	}
	return false
}

// readStatus reads a /proc status file: the task's uids, and whether it
// runs (any state but zombie and dead).
func readStatus(path string) (uids [4]uint32, live, ok bool) {
	status, err := os.ReadFile(path)
	if err != nil {
		return uids, false, false
	}
	for line := range bytes.SplitSeq(status, []byte{'\n'}) {
		key, val, _ := bytes.Cut(line, []byte{':'})
		switch string(key) {
		case "State":
			f := bytes.Fields(val)
			live = len(f) > 0 && f[0][0] != 'Z' && f[0][0] != 'X'
		case "Uid":
			f := bytes.Fields(val)
			if len(f) != 4 {
				return uids, false, false
			}
			for i := range f {
				n, err := strconv.ParseUint(string(f[i]), 10, 32)
				if err != nil {
					return uids, false, false
				}
				uids[i] = uint32(n)
			}
			// State comes before Uid in every kernel's status.
			return uids, live, true
		}
	}
	return uids, false, false
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

// isGone reports whether no task of the process at dir runs (see
// procUIDs): it has exited, or only its zombie remains to be reaped.
func isGone(dir string) bool {
	_, ok := procUIDs(dir)
	return !ok
}

func signalAll(pids []int, sig syscall.Signal) {
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			continue
		}
	}
}
