package api

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cohortdev/cohort/metrics"
)

// What counts as use of a notebook. Idle timeouts must follow real use,
// not an open tab: a browser tab polls the notebook's REST API and answers
// WebSocket pings on its own, for hours. So these count:
//   - requests that change something (POST, PUT, PATCH, DELETE): running,
//     saving, uploading;
//   - pages opened (GET outside api/ and static/);
//   - WebSocket data frames in either direction: code sent to a kernel,
//     its output, a terminal's keystrokes.
// And these do not: GETs of api/ and static/ (polling), WebSocket control
// frames (ping, pong, close).

// Toucher records that a session is in use.
type Toucher interface {
	Touch(sessionID string)
}

// requestIsUse reports whether an HTTP request through the proxy is use.
func requestIsUse(r *http.Request, basePath string) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
		return true
	}
	rest := strings.TrimPrefix(r.URL.Path, basePath)
	return !strings.HasPrefix(rest, "api/") && !strings.HasPrefix(rest, "static/") && !strings.HasPrefix(rest, "nbextensions/") && !strings.HasPrefix(rest, "custom/")
}

// wsTransport returns a transport for one WebSocket upgrade whose
// connection reports data frames, both ways, as use of the session, and
// counts the bytes it carries.
func wsTransport(base *http.Transport, touch func(), m *metrics.Metrics) *http.Transport {
	t := base.Clone()
	t.DisableKeepAlives = true // the connection belongs to this WebSocket
	dial := base.DialContext
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &usageConn{Conn: c, touch: touch, metrics: m, in: frameScanner{skipHTTP: true}, out: frameScanner{skipHTTP: true}}, nil
	}
	return t
}

// usageConn is the proxy's connection to a notebook for one WebSocket: it
// scans the bytes going either way for data frames.
type usageConn struct {
	net.Conn
	touch   func()
	metrics *metrics.Metrics
	in, out frameScanner // each used by one direction's goroutine only
	last    atomic.Int64 // unix nanoseconds of the last touch; both directions write it
}

func (c *usageConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.in.scan(p[:n]) {
		c.used()
	}
	c.metrics.ProxyBytes(n, 0)
	return n, err
}

func (c *usageConn) Write(p []byte) (int, error) {
	if c.out.scan(p) {
		c.used()
	}
	n, err := c.Conn.Write(p)
	c.metrics.ProxyBytes(0, n)
	return n, err
}

// used calls touch at most once a second: the Tracker throttles writes
// anyway, this spares it the lock on a busy stream.
func (c *usageConn) used() {
	now := time.Now().UnixNano()
	last := c.last.Load()
	if now-last >= int64(time.Second) && c.last.CompareAndSwap(last, now) {
		c.touch()
	}
}

// frameScanner follows a WebSocket byte stream (RFC 6455 framing) without
// copying it, and tells whether a data frame began. It first skips the
// HTTP handshake that precedes the frames on the connection.
type frameScanner struct {
	skipHTTP bool
	tail     []byte // the last bytes of the handshake seen, to find its end
	header   []byte // a frame header being read
	payload  uint64 // payload bytes of the current frame still to skip
	broken   bool   // unreadable framing: stop scanning, count nothing
}

var headerEnd = []byte("\r\n\r\n")

// scan consumes p and reports whether a data frame started in it.
func (f *frameScanner) scan(p []byte) bool {
	data := false
	for len(p) > 0 && !f.broken {
		switch {
		case f.skipHTTP:
			buf := append(f.tail, p...)
			i := bytes.Index(buf, headerEnd)
			if i < 0 {
				keep := min(len(buf), len(headerEnd)-1)
				f.tail = append([]byte(nil), buf[len(buf)-keep:]...)
				return data
			}
			consumed := i + len(headerEnd) - len(f.tail)
			f.skipHTTP, f.tail = false, nil
			p = p[consumed:]
		case f.payload > 0:
			n := uint64(len(p))
			if n > f.payload {
				n = f.payload
			}
			f.payload -= n
			p = p[n:]
		default:
			f.header = append(f.header, p[0])
			p = p[1:]
			need, ok := headerLen(f.header)
			if !ok || len(f.header) < need {
				continue
			}
			opcode := f.header[0] & 0x0f
			f.payload = payloadLen(f.header)
			switch {
			case opcode <= 0x2: // continuation, text, binary
				data = true
			case opcode >= 0x8 && opcode <= 0xa: // close, ping, pong
			default:
				f.broken = true // reserved opcode: not a WebSocket stream we understand
			}
			f.header = f.header[:0]
		}
	}
	return data
}

// headerLen returns how long a frame header is, once enough of it is known.
func headerLen(h []byte) (int, bool) {
	if len(h) < 2 {
		return 2, false
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4 // masking key
	}
	return n, true
}

func payloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(h[2])<<8 | uint64(h[3])
	case 127:
		var v uint64
		for _, b := range h[2:10] {
			v = v<<8 | uint64(b)
		}
		return v
	default:
		return uint64(l)
	}
}
