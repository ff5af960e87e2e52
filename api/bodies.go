package api

import (
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// A client that sends its request body slowly holds a connection and a
// handler; the server's ReadHeaderTimeout covers only the headers. Bodies
// of the app (at most maxBody) must arrive within appBodyTime; notebook
// uploads, which can be large, must keep moving: each read may wait at
// most notebookBodyIdle.
const (
	appBodyTime      = 30 * time.Second
	notebookBodyIdle = time.Minute
)

// guardBody bounds the time a request body may take: idle is how long one
// read may wait, total the whole body's time (0: no bound). The deadline
// is lifted once the body is read, so that a long answer (an event
// stream, a download) is not cut by it.
func guardBody(idle, total time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Body != nil && c.Request.Body != http.NoBody && !isWebSocket(c.Request) {
			rc := http.NewResponseController(c.Writer)
			g := &guardedBody{ReadCloser: c.Request.Body, rc: rc, idle: idle}
			if total > 0 {
				g.end = time.Now().Add(total)
			}
			c.Request.Body = g
		}
		c.Next()
	}
}

type guardedBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	end  time.Time
	done bool
}

func (g *guardedBody) Read(p []byte) (int, error) {
	if g.done {
		return g.ReadCloser.Read(p)
	}
	deadline := time.Now().Add(g.idle)
	if !g.end.IsZero() && g.end.Before(deadline) {
		deadline = g.end
	}
	g.rc.SetReadDeadline(deadline)
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		// Read in time: lift the deadline. After any other error it stays,
		// so the server drops the connection instead of waiting on it.
		g.done = true
		g.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
