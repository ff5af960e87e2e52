// Package local is the embedded provisioner driver: each session's notebook
// is a Jupyter server process on this machine, listening on a unix socket,
// in its own directory. It needs no cloud and no GPU, which makes it the
// driver of `make run` and of the tests.
//
// Run as root with a range of uids (Options.UIDs), it makes participants
// strangers: each session runs under a uid of its own, which alone can
// enter its directory and connect to its notebook, and Stop ends every
// process of that uid. Otherwise every notebook runs as cohort's own user,
// and a participant's code can reach cohort and every other session.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	// Root holds one directory per session; required. With UIDs, every
	// directory above it must let other users through (o+x).
	Root string
	// Bin is the notebook server executable; DefaultBin if empty.
	Bin string
	// StopGrace is how long the notebook server gets to shut its kernels
	// down after SIGTERM before everything of the session is killed; 5s
	// if zero.
	StopGrace time.Duration
	// UIDs, if not zero, gives each session a uid of its own from this
	// range (gid the same number, no supplementary groups). It needs
	// cohort to run as root, and the range to be free: no account or
	// group of this machine may use these ids. DefaultUIDs is a good one.
	UIDs   UIDRange
	Logger *slog.Logger
}

// Driver runs notebooks as local processes.
type Driver struct {
	root      string
	bin       string
	stopGrace time.Duration
	uids      UIDRange
	claims    claims
	cgroups   cgroups
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
	d := &Driver{
		root:      root,
		bin:       cmpOr(opts.Bin, DefaultBin),
		stopGrace: opts.StopGrace,
		uids:      opts.UIDs,
		log:       opts.Logger,
		// A notebook whose kernel saturates the CPU answers slowly. Each
		// check dials afresh: a pooled connection would still reach the
		// server that listened when it was made, whatever now sits at
		// the socket's path.
		http:  jupyter.NewCheckClient(5 * time.Second),
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
	if d.isolated() {
		if err := checkIsolation(d.uids, d.bin); err != nil {
			return nil, fmt.Errorf("local driver: %w", err)
		}
	}
	if err := d.makeRoot(); err != nil {
		return nil, fmt.Errorf("local driver: %w", err)
	}
	if d.isolated() {
		if err := d.setUpIsolation(); err != nil {
			return nil, fmt.Errorf("local driver: %w", err)
		}
	}
	return d, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// makeRoot creates the root and the driver's state directory. When
// isolated the root is root's and 0711: session uids pass through it to
// their own directory but cannot list the others.
func (d *Driver) makeRoot() error {
	mode := os.FileMode(0o700)
	if d.isolated() {
		mode = 0o711
	}
	if err := os.MkdirAll(d.root, mode); err != nil {
		return err
	}
	// The real path: session uids traverse the real directories, and a
	// socket path must be as short as it can be.
	real, err := filepath.EvalSymlinks(d.root)
	if err != nil {
		return err
	}
	d.root = real
	if d.isolated() {
		if err := os.Chown(d.root, 0, 0); err != nil {
			return err
		}
	}
	if err := os.Chmod(d.root, mode); err != nil {
		return err
	}
	if err := os.MkdirAll(d.worksDir(), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(d.worksDir(), 0o700); err != nil {
		return err
	}
	d.claims = claims{dir: filepath.Join(d.stateDir(), "uids")}
	if err := os.MkdirAll(d.claims.dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(d.stateDir(), 0o700)
}

// setUpIsolation checks that session uids can reach the root and run
// here, finds a cgroup hierarchy if there is one, and reports processes of
// the range that are not of this driver's sessions.
func (d *Driver) setUpIsolation() error {
	if err := traversable(d.root); err != nil {
		return err
	}
	// In a user namespace (a rootless container) only some uids exist:
	// find out now rather than at a participant's first start.
	for _, uid := range []uint32{d.uids.First, d.uids.Last} {
		if err := canRunAs(uid); err != nil {
			return fmt.Errorf("cannot run a process as uid %d (in a user namespace that maps fewer uids?): %w", uid, err)
		}
	}
	cg, err := findCgroups(d.root)
	if err != nil {
		d.log.Info("sessions get no cgroup; Stop kills by uid alone", "reason", err)
	}
	d.cgroups = cg
	_, err = d.uidSessions()
	return err
}

// Isolated reports whether each session runs under a uid of its own. When
// it does not, a participant's code runs as cohort's user and can reach
// cohort's files and every other session.
func (d *Driver) Isolated() bool { return d.isolated() }

func (d *Driver) isolated() bool { return !d.uids.IsZero() }

// Name returns "local".
func (d *Driver) Name() string { return "local" }

// FilesNote says where a local session's files stay.
func (d *Driver) FilesNote() string {
	return "Your files stay on the cohort server for your next session of this class, until the class's work is deleted; you can download them as a zip at any time."
}

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

// sessionUID returns the uid that session id holds, if any: from its
// record, or from the claims when a start crashed before recording it.
func (d *Driver) sessionUID(id string, in *instance) (uint32, bool, error) {
	if !d.isolated() {
		return 0, false, nil
	}
	if in != nil && in.UID != 0 {
		return in.UID, true, nil
	}
	return d.claims.of(id)
}

// serverAlive reports whether the recorded notebook server still runs.
func (d *Driver) serverAlive(id string, in *instance) bool {
	if in == nil || in.PID == 0 {
		return false
	}
	if d.isolated() {
		return hasUID(in.PID, in.UID)
	}
	return ownedBy(in.PID, d.root, id)
}

// sessionProcs returns the live processes of session id.
func (d *Driver) sessionProcs(id string, in *instance) ([]int, error) {
	if !d.isolated() {
		all, err := scanProcs(d.root)
		if err != nil {
			return nil, fmt.Errorf("scan processes: %w", err)
		}
		return all[id], nil
	}
	uid, ok, err := d.sessionUID(id, in)
	if err != nil || !ok {
		return nil, err
	}
	return pidsOf(uid)
}

// Inspect reports whether the session's notebook runs and answers.
func (d *Driver) Inspect(ctx context.Context, spec cohort.NotebookSpec) (cohort.Instance, error) {
	if err := checkID(spec.SessionID); err != nil {
		return cohort.Instance{}, err
	}
	in, err := d.readInstance(spec.SessionID)
	if err != nil {
		return cohort.Instance{}, err
	}
	if in == nil || in.PID == 0 {
		pids, err := d.sessionProcs(spec.SessionID, in)
		if err != nil {
			return cohort.Instance{}, err
		}
		if len(pids) == 0 {
			return cohort.Instance{State: cohort.InstanceAbsent}, nil
		}
		// Processes without a recorded server: a start cut short (cohort
		// died between the launch and its record). Stop or the next Start
		// ends them.
		return cohort.Instance{State: cohort.InstanceInterrupted, Progress: "an earlier start was interrupted"}, nil
	}
	if !d.serverAlive(spec.SessionID, in) {
		return cohort.Instance{State: cohort.InstanceExited, Reason: d.exitReason(spec.SessionID)}, nil
	}
	if err := capLog(d.logPath(spec.SessionID)); err != nil {
		d.log.Warn("empty the notebook server's log", "session_id", spec.SessionID, "error", err)
	}
	addr := jupyter.SocketAddress(in.socket(), d.serverUID(in))
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

// serverUID is the uid the session's notebook server runs as, which
// every connection to its socket checks.
func (d *Driver) serverUID(in *instance) int {
	if d.isolated() {
		return int(in.UID)
	}
	return os.Getuid()
}

// Stop ends every process of the session and forgets the instance. The
// session's files stay in its directory; when isolated the directory
// becomes root's and 0700, and the session's uid is free for another
// session only once nothing of it runs and nothing it left can be
// reached. While anything of the uid may still run, Stop fails and keeps
// the uid: the reconciler tries again.
//
// No walk of the session's files is needed for that: every process of
// the uid has ended, the directory is closed to everyone but root, and no
// file in it has a name elsewhere (in its mount namespace the session's
// home is a mount of its own, which hard links cannot cross). The files
// keep the uid as owner; the next start of the session gives them to
// whichever uid it gets (adoptTree).
func (d *Driver) Stop(ctx context.Context, sessionID string) error {
	if err := checkID(sessionID); err != nil {
		return err
	}
	defer d.lock(sessionID)()
	in, err := d.readInstance(sessionID)
	if err != nil {
		return err
	}
	ended, err := d.end(ctx, sessionID, in)
	if err != nil {
		return fmt.Errorf("stop session %s: %w", sessionID, err)
	}
	uid, isolated, err := d.sessionUID(sessionID, in)
	if err != nil {
		return err
	}
	retire := false
	if isolated {
		err := clearKeyrings(ctx, uid)
		if errors.Is(err, errKeyringsKept) {
			d.log.Warn("the session's uid is retired: its keyrings cannot be cleared", "session_id", sessionID, "uid", uid, "error", err)
			retire = true
		} else if err != nil {
			return fmt.Errorf("stop session %s: %w", sessionID, err)
		}
	}
	if err := removeRunDir(ctx, in); err != nil {
		return fmt.Errorf("stop session %s: %w", sessionID, err)
	}
	if isolated {
		for _, dir := range []string{d.sessionDir(sessionID), workOf(in)} {
			if dir == "" {
				continue
			}
			if err := secureHome(dir); err != nil {
				return fmt.Errorf("stop session %s: secure its files: %w", sessionID, err)
			}
		}
	}
	// The record goes before the claim: a crash in between leaves a claim
	// that the next Stop finds and finishes.
	if err := d.removeInstance(sessionID); err != nil {
		return err
	}
	if isolated {
		release := d.claims.release
		if retire {
			release = d.claims.retire
		}
		if err := release(uid, sessionID); err != nil {
			return err
		}
	}
	if ended > 0 {
		d.log.Info("notebook stopped", "session_id", sessionID, "processes", ended)
	}
	return nil
}

// List returns the sessions that have processes running. When isolated,
// processes of a uid of the range that no session holds are reported in
// the log and left alone: they may be another cohort's (given an
// overlapping range), and no session of this one gets that uid while they
// run (see claims.allocate).
func (d *Driver) List(ctx context.Context) ([]string, error) {
	if d.isolated() {
		return d.uidSessions()
	}
	all, err := scanProcs(d.root)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	return sortedIDs(ids), nil
}

// uidSessions returns the sessions with processes by uid, and logs the
// range's processes that belong to no session.
func (d *Driver) uidSessions() ([]string, error) {
	procs, err := uidProcs(d.uids)
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	held, err := d.claims.all()
	if err != nil {
		return nil, err
	}
	var ids []string
	for uid, pids := range procs {
		if id, ok := held[uid]; ok && !strings.HasPrefix(id, retiredPrefix) {
			ids = append(ids, id)
			continue
		}
		d.log.Warn("processes of a session uid belong to no session of this cohort; left alone, and the uid is not used",
			"uid", uid, "pids", pids)
	}
	return sortedIDs(ids), nil
}

func sortedIDs(ids []string) []string {
	slices.Sort(ids)
	return ids
}
