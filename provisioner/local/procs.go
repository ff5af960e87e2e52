package local

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Every process of a session (the notebook server, its kernels and
// terminals, whatever they start) inherits these variables. Scanning
// /proc for them finds a session's processes even after cohort restarted
// or a parent died and its children were re-parented.
const (
	envRoot    = "COHORT_LOCAL_ROOT"
	envSession = "COHORT_SESSION_ID"
)

// scanProcs returns the PIDs of live processes that belong to sessions of
// the driver rooted at root, by session ID.
func scanProcs(root string) (map[string][]int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
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
