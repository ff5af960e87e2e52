package jupyter

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// checkPeer refuses a unix connection whose peer does not run as uid. The
// kernel records the peer's credentials when it listened (SO_PEERCRED):
// whoever made the socket path lead elsewhere cannot forge them.
func checkPeer(c net.Conn, uid int) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("read the peer's credentials: %w", credErr)
	}
	if int64(cred.Uid) != int64(uid) {
		return fmt.Errorf("the socket's server runs as uid %d, not the notebook's uid %d", cred.Uid, uid)
	}
	return nil
}
