package jupyter

import (
	"context"
	"net"
	"syscall"
	"testing"
)

// TestTCPDialsAcknowledgeAtOnce: after each read, a notebook's TCP
// connection is in quick-ACK mode, so that Jupyter's small reply segments
// are not held back by Nagle's algorithm waiting on a delayed ACK.
func TestTCPDialsAcknowledgeAtOnce(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	next := make(chan bool)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("reply, part one"))
		<-next
		c.Write([]byte("reply, part two"))
	}()
	c, err := DialContext((&net.Dialer{}).DialContext)(context.Background(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for i := range 2 {
		if i > 0 {
			next <- true
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		raw, err := c.(*quickAckConn).TCPConn.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var on int
		raw.Control(func(fd uintptr) { on, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK) })
		if on != 1 {
			t.Fatalf("TCP_QUICKACK after a read = %d, want 1", on)
		}
	}
}
