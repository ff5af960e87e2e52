package local

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// killTimeout bounds the wait for SIGKILLed processes to be gone. Only a
// process stuck in the kernel (a hung network filesystem) takes long.
const killTimeout = 30 * time.Second

// end ends every process of session id and says how many there were. The
// session's uid, files and record stay: Stop and Start decide about them.
func (d *Driver) end(ctx context.Context, id string, in *instance) (int, error) {
	if d.isolated() {
		uid, ok, err := d.sessionUID(id, in)
		if err != nil || !ok {
			return 0, err
		}
		server, cgroup := 0, ""
		if in != nil {
			server, cgroup = in.PID, in.Cgroup
		}
		if cgroup == "" && d.cgroups.available() {
			cgroup = d.cgroups.path(id) // a start that crashed before its record
		}
		return d.endUID(ctx, uid, server, cgroup)
	}
	// A kernel may start while the server is being stopped: look again
	// until nothing of the session is left.
	var ended int
	for range 3 {
		pids, err := d.sessionProcs(id, in)
		if err != nil {
			return ended, err
		}
		if len(pids) == 0 {
			break
		}
		if err := d.kill(ctx, pids); err != nil {
			return ended, err
		}
		ended += len(pids)
	}
	return ended, nil
}

// kill sends SIGTERM (the notebook server then shuts its kernels down),
// waits up to the grace period, then SIGKILLs whatever of the session is
// left, including kernels that were re-parented.
func (d *Driver) kill(ctx context.Context, pids []int) error {
	gone := func() bool {
		for _, pid := range pids {
			if !isGone("/proc/" + strconv.Itoa(pid)) {
				return false
			}
		}
		return true
	}
	signalAll(pids, syscall.SIGTERM)
	if waitUntil(ctx, d.stopGrace, gone) {
		return nil
	}
	signalAll(pids, syscall.SIGKILL)
	if waitUntil(ctx, killTimeout, gone) {
		return nil
	}
	return fmt.Errorf("processes %v did not exit after SIGKILL", pids)
}

// endUID ends every process of uid, whatever its environment, session or
// parent: SIGTERM to the notebook server first, which shuts its kernels
// down, for up to the grace period; then the session's cgroup is killed,
// if it has one, and SIGKILL goes to everything of the uid, until no task
// of the uid runs and the cgroup is empty; then the cgroup is removed.
// It returns an error while anything of the uid may still run, and the
// uid must then stay the session's: Stop fails and is tried again.
//
// The kills are sent even when /proc shows nothing of the uid: what
// /proc shows is a snapshot, and a process that hides from it (a leader
// that exited alone, its threads running on) must die all the same.
func (d *Driver) endUID(ctx context.Context, uid uint32, server int, cgroup string) (int, error) {
	pids, err := pidsOf(uid)
	if err != nil {
		return 0, err
	}
	if server != 0 && hasUID(server, uid) {
		if err := syscall.Kill(server, syscall.SIGTERM); err == nil {
			waitUntil(ctx, d.stopGrace, func() bool { return !hasUID(server, uid) })
		}
	}
	if err := killUID(ctx, uid, cgroup); err != nil {
		return len(pids), err
	}
	if cgroup != "" {
		// An emptied cgroup is removable at once; a short retry covers a
		// kernel that releases it a moment later.
		waitUntil(ctx, time.Second, func() bool { return removeCgroup(cgroup) == nil })
		if err := removeCgroup(cgroup); err != nil {
			return len(pids), fmt.Errorf("uid %d: %w", uid, err)
		}
	}
	return len(pids), nil
}

// killUID kills everything of uid until nothing of it is left: the
// cgroup through cgroup.kill, the rest by SIGKILL sent by kill(-1) from a
// process of uid, which reaches every process of uid and nothing else
// (hidden ones too: it walks the kernel's process list, not /proc), and
// which Linux delivers under the tasklist lock, so no fork outruns it.
// Both are sent at least once, and again as long as a task of uid runs or
// the cgroup holds one, in case one got in (a start racing the stop).
func killUID(ctx context.Context, uid uint32, cgroup string) error {
	deadline := time.Now().Add(killTimeout)
	for {
		if cgroup != "" {
			// Not fatal: kill(-1) follows, and the cgroup must be empty
			// before the uid is released anyway.
			killCgroup(cgroup)
		}
		if err := killAllAs(uid); err != nil {
			return err
		}
		if waitUntil(ctx, time.Second, func() bool { return uidGone(uid, cgroup) }) {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			pids, _ := pidsOf(uid)
			return fmt.Errorf("processes %v of uid %d (cgroup %q populated: %v) survived SIGKILL", pids, uid, cgroup, cgroupPopulated(cgroup))
		}
	}
}

// uidGone reports whether no task of uid runs and the cgroup, if any, is
// empty.
func uidGone(uid uint32, cgroup string) bool {
	pids, err := pidsOf(uid)
	return err == nil && len(pids) == 0 && !cgroupPopulated(cgroup)
}

// killAllAs runs `kill -KILL -1` as uid.
func killAllAs(uid uint32) error {
	cmd := exec.Command("/bin/sh", "-c", "kill -KILL -1")
	cmd.Dir, cmd.Env = "/", []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: credential(uid)}
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil // nothing was left to signal
	}
	if err != nil {
		return fmt.Errorf("kill the processes of uid %d: %w", uid, err)
	}
	return nil
}

// pidsOf returns the live processes with uid among their uids.
func pidsOf(uid uint32) ([]int, error) {
	procs, err := uidProcs(UIDRange{First: uid, Last: uid})
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	return procs[uid], nil
}

// waitUntil polls cond until it holds, limit passes or ctx ends, and
// reports whether it held.
func waitUntil(ctx context.Context, limit time.Duration, cond func() bool) bool {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-timer.C:
			return cond()
		case <-tick.C:
		}
	}
}
