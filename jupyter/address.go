package jupyter

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// An address is where a notebook server listens, as cohort records it in a
// session:
//
//   - "http://host:port": a GCE VM's internal address;
//   - "unix:UID:/abs/path": the local driver's socket, where UID is the
//     user the notebook server must run as. Every dial checks the peer of
//     the connection (SO_PEERCRED) and refuses any other user: the
//     directory holding the socket is the participant's, who could swap the
//     socket for a symlink to a socket only root may reach (Docker's, say),
//     which cohort, running as root, would otherwise connect to and relay
//     anything to. A unix address without a uid is refused.
const unixPrefix = "unix:"

// sockSuffix marks the made-up host names that stand for unix sockets, and
// uidMark the label of such a host that carries the peer's uid.
const (
	sockSuffix = ".sock"
	uidMark    = ".u"
)

// SocketAddress returns the address of a notebook on the unix socket at
// path, served by a process running as uid.
func SocketAddress(path string, uid int) string {
	return unixPrefix + strconv.Itoa(uid) + ":" + path
}

// ParseSocketAddress returns the socket path and the peer's uid of a unix
// address (see SocketAddress).
func ParseSocketAddress(address string) (path string, uid int, err error) {
	rest, ok := strings.CutPrefix(address, unixPrefix)
	if !ok {
		return "", 0, fmt.Errorf("notebook address %q is not a unix socket", address)
	}
	id, path, ok := strings.Cut(rest, ":")
	uid, err = strconv.Atoi(id)
	if !ok || err != nil || uid < 0 || uint64(uid) > 1<<32-1 {
		return "", 0, fmt.Errorf("notebook address %q names no uid for its socket (want unix:UID:/PATH)", address)
	}
	if !strings.HasPrefix(path, "/") {
		return "", 0, fmt.Errorf("notebook address %q: the socket path must be absolute", address)
	}
	return path, uid, nil
}

// BaseURL returns the http URL that reaches the notebook at address: the
// address itself for TCP; for a unix socket, a made-up host (the socket's
// path in hex, then ".u" and the uid, then ".sock") that DialContext turns
// back into the socket and the uid to check. Each socket and uid has a
// host of its own, so an http.Transport never hands one notebook's pooled
// connection to another.
func BaseURL(address string) (string, error) {
	if strings.HasPrefix(address, unixPrefix) {
		path, uid, err := ParseSocketAddress(address)
		if err != nil {
			return "", err
		}
		return "http://" + hex.EncodeToString([]byte(path)) + uidMark + strconv.Itoa(uid) + sockSuffix, nil
	}
	if !strings.HasPrefix(address, "http://") && !strings.HasPrefix(address, "https://") {
		return "", fmt.Errorf("notebook address %q is neither http://HOST:PORT nor unix:UID:/PATH", address)
	}
	return strings.TrimRight(address, "/"), nil
}

// socketHost reads a made-up host of BaseURL back; ok is false for any
// other host.
func socketHost(host string) (path string, uid int, ok bool, err error) {
	rest, ok := strings.CutSuffix(host, sockSuffix)
	if !ok {
		return "", 0, false, nil
	}
	i := strings.LastIndex(rest, uidMark)
	if i < 0 {
		return "", 0, true, fmt.Errorf("notebook socket host %s names no uid", host)
	}
	b, err1 := hex.DecodeString(rest[:i])
	uid, err2 := strconv.Atoi(rest[i+len(uidMark):])
	if err1 != nil || err2 != nil || uid < 0 || len(b) == 0 || b[0] != '/' {
		return "", 0, true, fmt.Errorf("notebook socket host %s is malformed", host)
	}
	return string(b), uid, true, nil
}

// Dialer is the shape of net.Dialer.DialContext.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// DialContext returns dial, except that the made-up hosts of BaseURL are
// dialled as the unix sockets they stand for, and a connection whose peer
// is not the uid of the address is closed and refused; TCP connections
// acknowledge at once (quickAck).
func DialContext(dial Dialer) Dialer {
	var unix net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return dial(ctx, network, addr)
		}
		path, uid, isSocket, err := socketHost(host)
		if !isSocket {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return quickAck(c), nil
		}
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		c, err := dialSocket(ctx, &unix, path)
		if err != nil {
			return nil, err
		}
		if err := checkPeer(c, uid); err != nil {
			c.Close()
			return nil, fmt.Errorf("dial notebook socket %s: %w", path, err)
		}
		return c, nil
	}
}

// dialSocket dials a unix socket, waiting out a full listen queue: unlike
// TCP, whose SYN is retried by the kernel, a unix socket whose server has
// not accepted the last connections yet refuses at once (EAGAIN). A burst
// of connections to one notebook (a class's tabs reconnecting) must wait,
// not fail.
func dialSocket(ctx context.Context, d *net.Dialer, path string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil || !errors.Is(err, syscall.EAGAIN) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

// NewTransport returns the transport cohort's proxy reaches notebooks
// with: unix sockets whose server is checked, TCP with quick ACKs, and
// enough idle connections per notebook for a participant's tabs and
// scripts (reconnecting for each request would cost more than the
// request).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // notebooks are reached directly, never through an HTTP proxy
		DialContext:           DialContext((&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext),
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute, // large notebook saves take a while
	}
}

// NewClient returns an HTTP client for cohort's own calls to notebooks
// (status, kernel activity), at TCP and unix-socket addresses alike.
func NewClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // notebooks are reached directly, never through an HTTP proxy
	t.DialContext = DialContext((&net.Dialer{Timeout: 5 * time.Second}).DialContext)
	return &http.Client{Timeout: timeout, Transport: t}
}

// NewCheckClient is NewClient for checks that must see the notebook as it
// is now: it keeps no connection between requests, so each request dials,
// and its peer is checked, again. A pooled connection would still reach
// the server that listened when it was made, whatever has replaced the
// socket since.
func NewCheckClient(timeout time.Duration) *http.Client {
	c := NewClient(timeout)
	c.Transport.(*http.Transport).DisableKeepAlives = true
	return c
}
