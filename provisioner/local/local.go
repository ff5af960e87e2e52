// Package local is the embedded provisioner driver: each session's notebook
// is a Jupyter server process on this machine, on a loopback port, in its
// own directory. It needs no cloud and no GPU, which makes it the driver of
// `make run` and of the tests.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jupyter"
)

var _ cohort.Driver = (*Driver)(nil)

// DefaultBin is Debian's Jupyter notebook server. It is started by path:
// its shebang names Debian's Python, which has the packages Jupyter needs.
const DefaultBin = "/usr/bin/jupyter-notebook"

// Options configure a Driver.
type Options struct {
	// Root holds one directory per session; required.
	Root string
	// Bin is the notebook server executable; DefaultBin if empty.
	Bin string
	// StopGrace is how long processes get to exit after SIGTERM before
	// SIGKILL; 5s if zero.
	StopGrace time.Duration
	Logger    *slog.Logger
}

// Driver runs notebooks as local processes.
type Driver struct {
	root      string
	bin       string
	stopGrace time.Duration
	log       *slog.Logger
	http      *http.Client

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per session: Start and Stop never overlap
}

// New returns a driver rooted at opts.Root, creating it if needed.
func New(opts Options) (*Driver, error) {
	if opts.Root == "" {
		return nil, errors.New("local driver: Root is required")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("local driver: %w", err)
	}
	d := &Driver{
		root:      root,
		bin:       cmpOr(opts.Bin, DefaultBin),
		stopGrace: opts.StopGrace,
		log:       opts.Logger,
		// A notebook whose kernel saturates the CPU answers slowly.
		http:  jupyter.NewClient(5 * time.Second),
		locks: map[string]*sync.Mutex{},
	}
	if d.stopGrace == 0 {
		d.stopGrace = 5 * time.Second
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(d.bin); err != nil {
		return nil, fmt.Errorf("local driver: notebook server %s not found (install Debian's jupyter-notebook package): %w", d.bin, err)
	}
	return d, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Name returns "local".
func (d *Driver) Name() string { return "local" }

// instance is what the driver remembers of a started notebook, in the
// session directory, so that a restarted cohort finds it again.
type instance struct {
	PID     int       `json:"pid"`
	Port    int       `json:"port"`
	Started time.Time `json:"started"`
}

func (d *Driver) sessionDir(id string) string { return filepath.Join(d.root, id) }

// WorkDir is the directory holding the session's notebooks and files.
func (d *Driver) WorkDir(id string) string { return filepath.Join(d.sessionDir(id), "work") }

func (d *Driver) lock(id string) func() {
	d.mu.Lock()
	l, ok := d.locks[id]
	if !ok {
		l = &sync.Mutex{}
		d.locks[id] = l
	}
	d.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (d *Driver) readInstance(id string) (*instance, error) {
	b, err := os.ReadFile(filepath.Join(d.sessionDir(id), "instance.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var in instance
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("session %s instance.json: %w", id, err)
	}
	return &in, nil
}

func (d *Driver) writeInstance(id string, in *instance) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	tmp := filepath.Join(d.sessionDir(id), "instance.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(d.sessionDir(id), "instance.json"))
}

func (d *Driver) procs(id string) ([]int, error) {
	all, err := scanProcs(d.root)
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	return all[id], nil
}

// Start launches the session's notebook server unless one runs already.
func (d *Driver) Start(ctx context.Context, spec cohort.NotebookSpec) error {
	defer d.lock(spec.SessionID)()
	in, err := d.readInstance(spec.SessionID)
	if err != nil {
		return err
	}
	if in != nil && ownedBy(in.PID, d.root, spec.SessionID) {
		return nil // already running
	}
	pids, err := d.procs(spec.SessionID)
	if err != nil {
		return err
	}
	if len(pids) > 0 {
		// Leftovers of an earlier start (say, kernels of a server that
		// died): end them so the new server starts clean.
		d.kill(ctx, pids)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	dir := d.sessionDir(spec.SessionID)
	s := jupyter.Settings{
		Port: port, IP: "127.0.0.1", BasePath: spec.BasePath, Token: spec.Token,
		NotebookDir: d.WorkDir(spec.SessionID), ConfigDir: filepath.Join(dir, "jupyter"),
	}
	if err := os.MkdirAll(s.NotebookDir, 0o700); err != nil {
		return err
	}
	if err := jupyter.WriteConfig(s); err != nil {
		return fmt.Errorf("write notebook config: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "notebook.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()

	cmd := exec.Command(d.bin, jupyter.Args(s)...)
	cmd.Dir = s.NotebookDir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A clean environment: nothing of cohort's own (tokens, credentials)
	// may reach the participant's kernels.
	cmd.Env = append([]string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + dir,
		"LANG=C.UTF-8",
		"PYTHONUNBUFFERED=1",
		envRoot + "=" + d.root,
		envSession + "=" + spec.SessionID,
	}, jupyter.Env(s)...)
	// Its own session and process group: a signal to cohort (Ctrl-C in a
	// terminal) does not reach the notebooks, which outlive a restart.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.bin, err)
	}
	go cmd.Wait() // reap it when it exits, whatever the reason
	if err := d.writeInstance(spec.SessionID, &instance{PID: cmd.Process.Pid, Port: port, Started: time.Now()}); err != nil {
		d.kill(ctx, []int{cmd.Process.Pid})
		return fmt.Errorf("record instance: %w", err)
	}
	d.log.Info("notebook started", "session_id", spec.SessionID, "pid", cmd.Process.Pid, "port", port)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Inspect reports whether the session's notebook runs and answers.
func (d *Driver) Inspect(ctx context.Context, spec cohort.NotebookSpec) (cohort.Instance, error) {
	in, err := d.readInstance(spec.SessionID)
	if err != nil {
		return cohort.Instance{}, err
	}
	if in == nil {
		pids, err := d.procs(spec.SessionID)
		if err != nil {
			return cohort.Instance{}, err
		}
		if len(pids) == 0 {
			return cohort.Instance{State: cohort.InstanceAbsent}, nil
		}
		// Leftovers without a recorded server (a crash mid-start): Stop or
		// the next Start ends them.
		return cohort.Instance{State: cohort.InstanceStarting, Progress: "cleaning up an earlier start"}, nil
	}
	if !ownedBy(in.PID, d.root, spec.SessionID) {
		return cohort.Instance{State: cohort.InstanceExited, Reason: d.exitReason(spec.SessionID)}, nil
	}
	addr := fmt.Sprintf("http://127.0.0.1:%d", in.Port)
	if _, err := jupyter.GetStatus(ctx, d.http, addr, spec.BasePath, spec.Token); err != nil {
		return cohort.Instance{State: cohort.InstanceStarting, Address: addr, Progress: "starting Jupyter"}, nil
	}
	ready := cohort.Instance{State: cohort.InstanceReady, Address: addr}
	// Kernel activity is a bonus: a failure to read it is not a failure.
	if a, err := jupyter.GetActivity(ctx, d.http, addr, spec.BasePath, spec.Token); err == nil {
		ready.KernelActivityKnown, ready.LastKernelActivity, ready.KernelBusy = true, a.LastActivity, a.Busy
	}
	return ready, nil
}

// FilesNote says where a local session's files stay.
func (d *Driver) FilesNote() string {
	return "Files you saved stay on the cohort server, but a new session starts with an empty folder: download what you want to keep."
}

// exitReason is the last lines the notebook server wrote, which usually say
// why it ended.
func (d *Driver) exitReason(id string) string {
	b, err := os.ReadFile(filepath.Join(d.sessionDir(id), "notebook.log"))
	if err != nil || len(b) == 0 {
		return "the notebook server exited"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if len(last) > 300 {
		last = last[len(last)-300:]
	}
	return "the notebook server exited: " + last
}

// Stop ends every process of the session and forgets the instance. The
// session's files stay in its work directory.
func (d *Driver) Stop(ctx context.Context, sessionID string) error {
	defer d.lock(sessionID)()
	// A kernel may start while the server is being stopped: look again
	// until nothing of the session is left.
	var ended int
	for range 3 {
		pids, err := d.procs(sessionID)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		if err := d.kill(ctx, pids); err != nil {
			return err
		}
		ended += len(pids)
	}
	err := os.Remove(filepath.Join(d.sessionDir(sessionID), "instance.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if ended > 0 {
		d.log.Info("notebook stopped", "session_id", sessionID, "processes", ended)
	}
	return nil
}

// kill sends SIGTERM (the notebook server then shuts its kernels down),
// waits up to the grace period, then SIGKILLs whatever of the session is
// left, including kernels that were re-parented.
func (d *Driver) kill(ctx context.Context, pids []int) error {
	if len(pids) == 0 {
		return nil
	}
	signalAll(pids, syscall.SIGTERM)
	if d.waitGone(ctx, pids, d.stopGrace) {
		return nil
	}
	signalAll(pids, syscall.SIGKILL)
	if d.waitGone(ctx, pids, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("processes %v did not exit after SIGKILL", pids)
}

func (d *Driver) waitGone(ctx context.Context, pids []int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		alive := 0
		for _, pid := range pids {
			if !isZombie(fmt.Sprintf("/proc/%d", pid)) {
				alive++
			}
		}
		if alive == 0 {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// List returns the sessions that have processes running.
func (d *Driver) List(ctx context.Context) ([]string, error) {
	all, err := scanProcs(d.root)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}
