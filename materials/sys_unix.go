//go:build unix

package materials

import "syscall"

const (
	oNOFOLLOW  = syscall.O_NOFOLLOW
	oNONBLOCK  = syscall.O_NONBLOCK
	oDIRECTORY = syscall.O_DIRECTORY
)

var syscallENOTDIR = syscall.ENOTDIR
