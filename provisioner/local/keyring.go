package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// python is the interpreter of Debian's jupyter-notebook (its shebang
// names it), so it is on every machine that runs the local driver.
const python = "/usr/bin/python3"

// clearKeyringsCode does away with the kernel keyrings of the uid it
// runs as: the user keyring (@u), the user session keyring (@us) and the
// persistent keyring, where the kernel has them. The kernel keeps these
// per uid, not per process or namespace, and they outlive every process
// of the uid: without this, the uid's next holder would read what the last
// one kept there. Only the uid itself can: root cannot even name another
// user's keyrings.
//
// Each keyring is invalidated, which frees it and what only it held; the
// next holder gets new ones. The ids are all taken first: naming @u or
// @us makes the kernel create both if either is missing. The persistent
// keyring is reached through the helper's own process keyring, which a
// participant cannot have closed. A keyring that refuses to be
// invalidated is emptied instead. A participant may take away the
// permissions on their own keyrings so that neither works, while the
// uid could still read them: a refusal anywhere (EACCES, or ENOKEY for a
// keyring that may not be searched) makes it exit 3. argv[1] is the keyctl syscall number of this machine.
const clearKeyringsCode = `
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
nr = int(sys.argv[1])
def keyctl(*args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return r, ctypes.get_errno()
def fail(what, err):
    print("%s: %s" % (what, errno.errorcode.get(err, err)), file=sys.stderr)
    sys.exit(3 if err in (errno.EACCES, errno.ENOKEY) else 1)
GET_KEYRING_ID, CLEAR, INVALIDATE, GET_PERSISTENT = 0, 7, 21, 22
USER, USER_SESSION, PROCESS = -4, -5, -2
rings = []
for spec in (USER, USER_SESSION):
    ring, err = keyctl(GET_KEYRING_ID, spec, 1)
    if ring < 0:
        fail("keyring %d" % spec, err)
    rings.append(ring)
ring, err = keyctl(GET_PERSISTENT, -1, PROCESS)
if ring >= 0:
    rings.insert(0, ring)
elif err not in (errno.EOPNOTSUPP, errno.ENOSYS):
    fail("the persistent keyring", err)
for ring in rings:
    if keyctl(INVALIDATE, ring)[0] == 0:
        continue
    r, err = keyctl(CLEAR, ring)
    if r < 0:
        fail("keyring %d" % ring, err)
`

// errKeyringsKept is returned when a keyring of the uid could not be
// cleared for want of permission: the uid must never serve another
// session (see claims.retire).
var errKeyringsKept = errors.New("a keyring of the uid refuses to be cleared")

// clearKeyrings runs clearKeyringsCode as uid, once no other process of
// uid runs, if the uid has keys at all: most sessions never use keyrings,
// and naming them would create them. The helper itself is a process of
// uid: it is waited for, and starts with an empty environment in Python's
// isolated mode, so that nothing of the participant's (a sitecustomize in
// their files) runs in it.
func clearKeyrings(ctx context.Context, uid uint32) error {
	has, err := hasKeys(uid)
	if err != nil || !has {
		return err
	}
	cmd := exec.CommandContext(ctx, python, "-I", "-S", "-c", clearKeyringsCode, strconv.Itoa(unix.SYS_KEYCTL))
	cmd.Dir, cmd.Env = "/", []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: credential(uid)}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		return fmt.Errorf("uid %d: %w (%s)", uid, errKeyringsKept, strings.TrimSpace(string(out)))
	default:
		return fmt.Errorf("clear the keyrings of uid %d: %w (%s)", uid, err, strings.TrimSpace(string(out)))
	}
}

// hasKeys reports whether the kernel holds keys of uid, by
// /proc/key-users, which lists every uid that has some ("UID: ...").
func hasKeys(uid uint32) (bool, error) {
	b, err := os.ReadFile("/proc/key-users")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // a kernel without keys
	}
	if err != nil {
		return false, fmt.Errorf("read key users: %w", err)
	}
	want := strconv.FormatUint(uint64(uid), 10) + ":"
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == want {
			return true, nil
		}
	}
	return false, nil
}
