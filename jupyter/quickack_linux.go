package jupyter

import (
	"net"
	"syscall"
)

// quickAck makes a TCP connection to a notebook acknowledge what it
// receives at once. Jupyter writes a kernel's reply in several small
// segments without TCP_NODELAY: Nagle's algorithm holds each segment until
// the previous one is acknowledged, and a receiver that delays its ACKs
// (40 ms on Linux) turns every cell's reply into a 40 ms wait. Linux keeps
// quick-ACK mode only for a while, so it is set again after every read.
func quickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quickAckConn{TCPConn: tc, raw: raw}
}

type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *quickAckConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	c.raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
	return n, err
}
