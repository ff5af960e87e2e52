package jupyter

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// An address is where a notebook server listens, as cohort records it in a
// session: "http://host:port" (a GCE VM's internal address), or
// "unix:/abs/path" (the local driver's socket, which only the session's
// user and cohort can reach).

const unixPrefix = "unix:"

// sockSuffix marks the made-up host names that stand for unix sockets.
const sockSuffix = ".sock"

// SocketAddress returns the address of a notebook on a unix socket.
func SocketAddress(path string) string { return unixPrefix + path }

// BaseURL returns the http URL that reaches the notebook at address: the
// address itself for TCP; for a unix socket, a made-up host (the socket's
// path in hex, then ".sock") that DialContext turns back into the socket.
// Each socket has a host of its own, so an http.Transport never hands one
// notebook's pooled connection to another.
func BaseURL(address string) (string, error) {
	if path, ok := strings.CutPrefix(address, unixPrefix); ok {
		if !strings.HasPrefix(path, "/") {
			return "", fmt.Errorf("notebook address %q: the socket path must be absolute", address)
		}
		return "http://" + hex.EncodeToString([]byte(path)) + sockSuffix, nil
	}
	if !strings.HasPrefix(address, "http://") && !strings.HasPrefix(address, "https://") {
		return "", fmt.Errorf("notebook address %q is neither http://HOST:PORT nor unix:/PATH", address)
	}
	return strings.TrimRight(address, "/"), nil
}

// Dialer is the shape of net.Dialer.DialContext.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// DialContext returns dial, except that the made-up hosts of BaseURL are
// dialled as the unix sockets they stand for.
func DialContext(dial Dialer) Dialer {
	var unix net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || !strings.HasSuffix(host, sockSuffix) {
			return dial(ctx, network, addr)
		}
		path, err := hex.DecodeString(strings.TrimSuffix(host, sockSuffix))
		if err != nil {
			return nil, fmt.Errorf("dial %s: not a notebook socket", addr)
		}
		return unix.DialContext(ctx, "unix", string(path))
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
