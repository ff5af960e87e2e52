package local

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/cohortdev/cohort/jupyter"
)

// mount (util-linux) sets up each isolated session's mounts.
const mount = "/bin/mount"

// nsenter (util-linux) enters a running session's mount namespace, to
// bind a participant's work into a claimed warm seat.
const nsenter = "/usr/bin/nsenter"

// privateDirs are the machine's directories that every user may write to.
// Each isolated session gets empty ones of its own, in a mount namespace
// of its own: what a participant leaves there is in no shared place, for
// another session or the uid's next holder to find, and ends with the
// session's last process, as do its System V IPC objects and POSIX message
// queues (an IPC namespace of its own). Stop then has no shared directory
// to sweep as root, where every path is a participant's to swap.
var privateDirs = []struct{ dir, opts string }{
	// Memory, like Debian's /tmp: tmpfs pages are charged to the cgroup
	// of whoever writes them, and a session's TMPDIR is on disk, in its
	// home. The sizes only keep one session from taking all the memory
	// with files (see docs/security.md, known limits).
	{"/tmp", "mode=1777,nosuid,nodev,size=25%"},
	{"/var/tmp", "mode=1777,nosuid,nodev,size=25%"},
	{"/dev/shm", "mode=1777,nosuid,nodev,size=25%"},
	{"/run/lock", "mode=1777,nosuid,nodev,noexec,size=5m"},
}

// sessionScript runs as root in the session's new mount and IPC
// namespaces (see command), then becomes the session's uid and the
// notebook server. Arguments: the session's home, its run dir, its
// folder (ROOT/ID/work) and uid, the driver's work root (ROOT/work) and
// the participant's work in it ("" for a warm seat), then the server's
// command line. The paths come as arguments, never in the script's text.
//
// The home and the run dir are opened first and bound back at their own
// paths after the private dirs are mounted: either may lie in one of
// them (a run dir in /tmp when the root is too deep for unix sockets);
// so is the work root, so that a claim can bind a participant's work in
// later (see work.go). The participant's work is bound onto the folder.
// Each becomes a mount of its own in the session's namespace, which also
// keeps hard links from crossing it (link(2) refuses to cross mounts): no
// file of the session has a name outside its home, so nothing outside
// changes owner or leaks when the home does (see Stop).
const sessionScript = `set -eu
home=$1 run=$2 work=$3 uid=$4 works=$5 data=$6
shift 6
exec 3<"$home" 4<"$run" 5<"$works"
PRIVATE_DIRS
if [ -d /dev/mqueue ]; then ` + mount + ` -n -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue; fi
[ "$home" -ef /proc/self/fd/3 ] || mkdir -p "$home"
` + mount + ` -n --no-canonicalize --bind /proc/self/fd/3 "$home"
[ "$run" -ef /proc/self/fd/4 ] || mkdir -p "$run"
` + mount + ` -n --no-canonicalize --bind /proc/self/fd/4 "$run"
[ "$works" -ef /proc/self/fd/5 ] || mkdir -p "$works"
` + mount + ` -n --no-canonicalize --bind /proc/self/fd/5 "$works"
exec 3<&- 4<&- 5<&-
if [ -n "$data" ]; then ` + mount + ` -n --no-canonicalize --bind "$data" "$work"; fi
cd "$work"
exec ` + setpriv + ` --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs -- /bin/sh -c 'umask 077 && exec "$0" "$@"' "$@"
`

// script is sessionScript with a tmpfs mount for each of privateDirs
// (constants: no quoting needed) that this machine has.
func script() string {
	lines := make([]string, len(privateDirs))
	for i, p := range privateDirs {
		lines[i] = "if [ -d " + p.dir + " ]; then " + mount + " -n -t tmpfs -o " + p.opts + " cohort-session " + p.dir + "; fi"
	}
	return strings.Replace(sessionScript, "PRIVATE_DIRS", strings.Join(lines, "\n"), 1)
}

// command builds the notebook server's command. Its environment is clean:
// nothing of cohort's own (tokens, credentials) may reach the participant's
// kernels. USER and LOGNAME let Python's getpass answer for a uid that has
// no passwd entry; SHELL gives Jupyter's terminals a shell without one.
func (d *Driver) command(id string, in *instance, s jupyter.Settings) *exec.Cmd {
	env := append([]string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + d.sessionDir(id),
		"TMPDIR=" + filepath.Join(d.sessionDir(id), "tmp"),
		"USER=participant",
		"LOGNAME=participant",
		"SHELL=/bin/bash",
		"LANG=C.UTF-8",
		"PYTHONUNBUFFERED=1",
	}, jupyter.Env(s)...)
	// Its own session and process group: a signal to cohort (Ctrl-C in a
	// terminal) does not reach the notebooks, which outlive a restart.
	attr := &syscall.SysProcAttr{Setsid: true}
	if !d.isolated() {
		cmd := exec.Command(d.bin, jupyter.Args(s)...)
		cmd.Dir, cmd.Env, cmd.SysProcAttr = s.NotebookDir, append(env, envRoot+"="+d.root, envSession+"="+id), attr
		return cmd
	}
	// Go makes the new mount namespace's mounts private before the script
	// runs: nothing it mounts reaches the machine's namespace. The script
	// mounts as root, then setpriv takes the uid, no groups and
	// no_new_privs (see the constant), and the shell sets the umask, for
	// which exec has no attribute, and becomes Jupyter.
	attr.Unshareflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC
	args := slices.Concat([]string{"-c", script(), "cohort-session",
		d.sessionDir(id), in.RunDir, s.NotebookDir, strconv.FormatUint(uint64(in.UID), 10), d.worksDir(), in.Work, d.bin}, jupyter.Args(s))
	cmd := exec.Command("/bin/sh", args...)
	cmd.Dir, cmd.Env, cmd.SysProcAttr = "/", env, attr
	return cmd
}

// coveredBy returns the private dir that holds path, if any.
func coveredBy(path string) (string, bool) {
	for _, p := range privateDirs {
		if path == p.dir || strings.HasPrefix(path, p.dir+"/") {
			return p.dir, true
		}
	}
	return "", false
}

// toolsPresent checks for the programs an isolated session starts with.
func toolsPresent() error {
	for _, tool := range []struct{ path, pkg string }{{setpriv, "util-linux"}, {nsenter, "util-linux"}, {mount, "mount"}, {python, "python3"}} {
		if _, err := os.Stat(tool.path); err != nil {
			return fmt.Errorf("%s is missing (Debian package %s): %w", tool.path, tool.pkg, err)
		}
	}
	return nil
}
