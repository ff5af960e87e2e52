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
			if !isZombie("/proc/" + strconv.Itoa(pid)) {
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
// if it has one, and SIGKILL goes to everything of the uid until /proc
// shows none of it.
func (d *Driver) endUID(ctx context.Context, uid uint32, server int, cgroup string) (int, error) {
	pids, err := pidsOf(uid)
	if err != nil {
		return 0, err
	}
	if len(pids) > 0 {
		if server != 0 && hasUID(server, uid) {
			if err := syscall.Kill(server, syscall.SIGTERM); err == nil {
				waitUntil(ctx, d.stopGrace, func() bool { return !hasUID(server, uid) })
			}
		}
		if cgroup != "" {
			if err := killCgroup(cgroup); err != nil {
				d.log.Warn("kill the session's cgroup", "uid", uid, "cgroup", cgroup, "error", err)
			}
		}
		if err := killUID(ctx, uid); err != nil {
			return len(pids), err
		}
	}
	if cgroup != "" {
		// Tasks leave a cgroup a moment after they die.
		waitUntil(ctx, 5*time.Second, func() bool { return removeCgroup(cgroup) == nil })
		if err := removeCgroup(cgroup); err != nil {
			d.log.Warn("remove the session's cgroup", "uid", uid, "error", err)
		}
	}
	return len(pids), nil
}

// killUID SIGKILLs every process of uid until none is left. The signal is
// sent by kill(-1) from a process of uid: it reaches every process of uid
// and nothing else, and Linux delivers it under the tasklist lock, so no
// fork outruns it; whatever a process was forking dies with its parent.
// It is sent again as long as /proc shows a process of uid, in case one
// got in (a start racing the stop).
func killUID(ctx context.Context, uid uint32) error {
	deadline := time.Now().Add(killTimeout)
	for {
		pids, err := pidsOf(uid)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("processes %v of uid %d survived SIGKILL", pids, uid)
		}
		if err := killAllAs(uid); err != nil {
			return err
		}
		waitUntil(ctx, time.Second, func() bool {
			left, err := pidsOf(uid)
			return err == nil && len(left) == 0
		})
	}
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
