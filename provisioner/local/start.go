package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jupyter"
)

// Start launches the session's notebook server unless one runs already.
func (d *Driver) Start(ctx context.Context, spec cohort.NotebookSpec) error {
	id := spec.SessionID
	if err := checkID(id); err != nil {
		return err
	}
	defer d.lock(id)()
	in, err := d.readInstance(id)
	if err != nil {
		return err
	}
	if d.serverAlive(id, in) {
		return nil // already running
	}
	// Leftovers of an earlier start (say, kernels of a server that died):
	// end them so that the new server starts clean. An isolated session
	// keeps its uid and its files meanwhile.
	if _, err := d.end(ctx, id, in); err != nil {
		return fmt.Errorf("start session %s: clean up an earlier start: %w", id, err)
	}
	if err := removeRunDir(ctx, in); err != nil {
		return err
	}
	in, s, err := d.prepare(ctx, id, spec)
	if err != nil {
		return fmt.Errorf("start session %s: %w", id, err)
	}
	// Recorded before the launch: a crash right after it leaves a record
	// that finds the run dir, the uid and the cgroup.
	if err := d.writeInstance(id, in); err != nil {
		return fmt.Errorf("record instance: %w", err)
	}
	pid, err := d.launch(ctx, id, in, s)
	if err != nil {
		return fmt.Errorf("start session %s: %w", id, err)
	}
	in.PID = pid
	if err := d.writeInstance(id, in); err != nil {
		d.end(ctx, id, in)
		return fmt.Errorf("record instance: %w", err)
	}
	d.log.Info("notebook started", "session_id", id, "pid", pid, "uid", in.UID, "socket", in.socket())
	return nil
}

// prepare gives the session its uid (when isolated) and its directories
// and writes the notebook's configuration.
func (d *Driver) prepare(ctx context.Context, id string, spec cohort.NotebookSpec) (*instance, jupyter.Settings, error) {
	in := &instance{Started: time.Now()}
	owner := os.Getuid()
	if d.isolated() {
		uid, err := d.takeUID(id)
		if err != nil {
			return nil, jupyter.Settings{}, err
		}
		in.UID, owner = uid, int(uid)
		if d.cgroups.available() {
			in.Cgroup = d.cgroups.path(id)
		}
	}
	dir := d.sessionDir(id)
	work, err := d.makeWorkDir(spec)
	if err != nil {
		return nil, jupyter.Settings{}, err
	}
	in.Work = work
	// Everything below dir goes through an os.Root: whatever an earlier
	// run of the session left there (symlinks to anywhere), cohort's
	// writes stay inside dir.
	r, err := d.makeDirs(ctx, id, in, owner)
	if err != nil {
		return nil, jupyter.Settings{}, err
	}
	defer r.Close()
	if work != "" && !d.isolated() {
		if err := linkWork(d.WorkDir(id), work); err != nil {
			return nil, jupyter.Settings{}, fmt.Errorf("show the participant's work: %w", err)
		}
	}
	s := jupyter.Settings{
		Socket: in.socket(), BasePath: spec.BasePath, Token: spec.Token,
		NotebookDir: d.WorkDir(id), ConfigDir: filepath.Join(dir, "jupyter"), RuntimeDir: in.RunDir,
		KernelTransport: "ipc",
	}
	if err := writeConfig(r, s); err != nil {
		return nil, jupyter.Settings{}, err
	}
	if d.isolated() {
		// Recorded before the participant's work is given to the uid: a
		// crash after that leaves a record from which Stop secures it.
		if err := d.writeInstance(id, in); err != nil {
			return nil, jupyter.Settings{}, fmt.Errorf("record instance: %w", err)
		}
		for _, tree := range []string{dir, work} {
			if tree == "" {
				continue
			}
			if err := adoptTree(ctx, tree, in.UID, d.uids); err != nil {
				return nil, jupyter.Settings{}, fmt.Errorf("give the session its files: %w", err)
			}
		}
		// Only the session's uid (and root) may enter, whatever an earlier
		// run of it opened up.
		if err := r.Chmod(".", 0o700); err != nil {
			return nil, jupyter.Settings{}, err
		}
		if work != "" {
			if err := os.Chmod(work, 0o700); err != nil {
				return nil, jupyter.Settings{}, err
			}
		}
	}
	return in, s, nil
}

// makeDirs creates the session's directory and what Jupyter needs in it,
// and its run dir (recorded in in), and returns the directory as an
// os.Root.
func (d *Driver) makeDirs(ctx context.Context, id string, in *instance, owner int) (*os.Root, error) {
	dir := d.sessionDir(id)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"work", "jupyter", "tmp"} {
		if sub == "work" && in.Work != "" && !d.isolated() {
			continue // a symlink to the participant's work (linkWork)
		}
		if err == nil {
			err = r.MkdirAll(sub, 0o700)
		}
	}
	if err == nil {
		// An earlier run's, with its stale sockets, and whatever else (as
		// deep as they like) a participant put there.
		err = removeTree(ctx, filepath.Join(dir, "run"))
	}
	if err == nil && d.runDirFits(id) {
		in.RunDir = filepath.Join(dir, "run")
		err = r.Mkdir("run", 0o700)
	} else if err == nil {
		in.RunDir, err = d.tempRunDir(owner)
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("make the session's directories: %w", err)
	}
	return r, nil
}

// takeUID returns the uid session id holds, or claims a free one.
func (d *Driver) takeUID(id string) (uint32, error) {
	uid, ok, err := d.claims.of(id)
	if err != nil || ok {
		return uid, err
	}
	busy, err := uidProcs(d.uids)
	if err != nil {
		return 0, fmt.Errorf("scan processes: %w", err)
	}
	return d.claims.allocate(d.uids, id, busy)
}

// writeConfig writes the notebook configuration through r. A file left in
// its place is removed first rather than written through: it may be a
// symlink.
func writeConfig(r *os.Root, s jupyter.Settings) error {
	files, err := jupyter.Config(s)
	if err != nil {
		return err
	}
	files[jupyter.ExtensionFile] = jupyter.Extension
	if err := r.MkdirAll(filepath.Join("jupyter", filepath.Dir(jupyter.ExtensionFile)), 0o700); err != nil {
		return err
	}
	for name, content := range files {
		name = filepath.Join("jupyter", name)
		if err := r.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := r.WriteFile(name, content, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// launch starts the notebook server and returns its PID. The notebook's
// log is emptied first if it has grown past maxLog.
func (d *Driver) launch(ctx context.Context, id string, in *instance, s jupyter.Settings) (int, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if fi, err := os.Stat(d.logPath(id)); err == nil && fi.Size() > maxLog {
		flags |= os.O_TRUNC
	}
	logFile, err := os.OpenFile(d.logPath(id), flags, 0o600)
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	cmd := d.command(id, in, s)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if in.Cgroup != "" {
		f, err := makeCgroup(in.Cgroup)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(f.Fd())
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", d.bin, err)
	}
	exited := make(chan struct{})
	go func() { // reap it when it exits, whatever the reason
		cmd.Wait()
		close(exited)
	}()
	pid := cmd.Process.Pid
	if d.isolated() {
		if err := awaitHandoff(ctx, pid, in.UID, exited); err != nil {
			return 0, err
		}
	}
	return pid, nil
}

// handoffTimeout bounds the wait for an isolated session's setup (a few
// mounts) to hand the server to the session's uid.
const handoffTimeout = 30 * time.Second

// awaitHandoff waits until the server runs as uid, or has exited: until
// then it is root, setting up the session's mounts, and Inspect, which
// knows the server by its uid, would take it for one that exited. A setup
// that fails exits, and Inspect reports why (its error is in the log).
func awaitHandoff(ctx context.Context, pid int, uid uint32, exited <-chan struct{}) error {
	done := func() bool {
		select {
		case <-exited:
			return true
		default:
			return hasUID(pid, uid)
		}
	}
	if !waitUntil(ctx, handoffTimeout, done) {
		syscall.Kill(pid, syscall.SIGKILL) // still root: no kill of the uid reaches it
		return fmt.Errorf("the session's setup did not hand the notebook to uid %d in %s", uid, handoffTimeout)
	}
	return nil
}
