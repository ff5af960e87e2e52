package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Where things live, under the driver's root:
//
//	ROOT/                 root 0711 when isolated (enter, not list); cohort 0700 otherwise
//	ROOT/.cohort/         cohort 0700: the driver's own state, out of participants' reach
//	  ID.json             the instance record (uid, server PID, run dir, cgroup)
//	  ID.log              the notebook server's output (capped, see logs.go)
//	  uids/UID -> ID      which session holds which uid (see claims)
//	ROOT/ID/              the session's uid 0700 while it runs, root 0700
//	                      once stopped: its HOME
//	  work/               the notebook's folder: the participant's work
//	                      (ROOT/work/CLASS/USER) bound or linked there,
//	                      see work.go
//	  jupyter/            JUPYTER_CONFIG_DIR, with the token in its config
//	  tmp/                TMPDIR
//	  run/                the notebook's socket and Jupyter's runtime files
//	                      (kernel connection files and IPC sockets); when
//	                      that path is too long for a unix socket, a
//	                      private directory in os.TempDir() instead
//
// The participant owns ROOT/ID, so cohort keeps nothing there that it
// reads back or writes through later: a record or log there could be
// swapped for a symlink to any file of the machine.
const stateDirName = ".cohort"

// maxSocketPath is the longest path of a unix socket (sun_path holds 108
// bytes with the terminating NUL).
const maxSocketPath = 107

// ipcNameLen is the length of the longest name in the run dir: a kernel's
// IPC socket, "/kernel-" + a 36-character kernel ID + "-ipc-" + one digit
// (jupyter_client numbers the five channels 1 to 5).
const ipcNameLen = len("/kernel-") + 36 + len("-ipc-5")

const socketName = "notebook.sock"

// checkID keeps a session ID to one plain path component (letters,
// digits, "_" and "-", not first), since it names directories that cohort
// chowns and removes as root.
func checkID(id string) error {
	ok := id != "" && len(id) <= 100 && id[0] != '-' && id[0] != '_'
	for _, c := range id {
		ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-')
	}
	if !ok {
		return fmt.Errorf("local driver: session ID %q is not a plain name", id)
	}
	return nil
}

// instance is what the driver remembers of a session's notebook, so that
// a restarted cohort finds it again. It is written before the server is
// started (PID 0) so that a crash right after the start leaves a record
// of what to clean up.
type instance struct {
	PID    int    `json:"pid,omitempty"`
	UID    uint32 `json:"uid,omitempty"`
	RunDir string `json:"run_dir"`
	Cgroup string `json:"cgroup,omitempty"`
	// Work is the participant's work directory the session shows (see
	// work.go); "" for a warm seat not claimed.
	Work    string    `json:"work,omitempty"`
	Started time.Time `json:"started"`
}

func (in *instance) socket() string { return filepath.Join(in.RunDir, socketName) }

func (d *Driver) stateDir() string            { return filepath.Join(d.root, stateDirName) }
func (d *Driver) recordPath(id string) string { return filepath.Join(d.stateDir(), id+".json") }
func (d *Driver) logPath(id string) string    { return filepath.Join(d.stateDir(), id+".log") }
func (d *Driver) sessionDir(id string) string { return filepath.Join(d.root, id) }

// WorkDir is the session's folder: the directory its notebook shows.
func (d *Driver) WorkDir(id string) string { return filepath.Join(d.sessionDir(id), "work") }

func (d *Driver) readInstance(id string) (*instance, error) {
	b, err := os.ReadFile(d.recordPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var in instance
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("session %s record: %w", id, err)
	}
	return &in, nil
}

func (d *Driver) writeInstance(id string, in *instance) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	tmp := d.recordPath(id) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, d.recordPath(id))
}

func (d *Driver) removeInstance(id string) error {
	err := os.Remove(d.recordPath(id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// runDirFits reports whether the run dir can be ROOT/ID/run: whether the
// kernels' IPC sockets in it stay within the length of a unix socket.
func (d *Driver) runDirFits(id string) bool {
	return len(filepath.Join(d.sessionDir(id), "run"))+ipcNameLen <= maxSocketPath
}

// tempRunDir makes a run dir in os.TempDir() for a session whose own
// directory is too deep for unix sockets: under a random name, so that
// nobody can have prepared it, and private to owner.
func (d *Driver) tempRunDir(owner int) (string, error) {
	dir, err := os.MkdirTemp(os.TempDir(), "cohort-run-")
	if err != nil {
		return "", fmt.Errorf("make a run dir: %w", err)
	}
	if len(dir)+ipcNameLen > maxSocketPath {
		os.Remove(dir)
		return "", fmt.Errorf("local driver: both the sessions root %s and %s are too long for unix sockets (%d bytes at most); choose a shorter root or TMPDIR", d.root, os.TempDir(), maxSocketPath)
	}
	if d.isolated() {
		if err := traversable(dir); err != nil {
			os.Remove(dir)
			return "", err
		}
	}
	if err := os.Lchown(dir, owner, owner); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("give the run dir to its session: %w", err)
	}
	return dir, nil
}

// removeRunDir removes a run dir: it holds nothing worth keeping once the
// server has gone, and sockets left in os.TempDir() would pile up.
func removeRunDir(ctx context.Context, in *instance) error {
	if in == nil || in.RunDir == "" {
		return nil
	}
	if err := removeTree(ctx, in.RunDir); err != nil {
		return fmt.Errorf("remove run dir: %w", err)
	}
	return nil
}
