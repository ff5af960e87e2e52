//go:build unix

package materials

import "syscall"

const (
	oNOFOLLOW = syscall.O_NOFOLLOW
	oNONBLOCK = syscall.O_NONBLOCK
)

var syscallENOTDIR = syscall.ENOTDIR
