package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// maxStreamsPerUser bounds the event streams one user keeps open: each
// holds a connection and polls the store.
const maxStreamsPerUser = 20

// sessionEvents returns a session's progress. With "Accept:
// text/event-stream" it streams Server-Sent Events until the session ends
// (or the client goes); otherwise it returns the events as a JSON list.
// Either way, ?after=ID (or the Last-Event-ID header of a reconnecting
// EventSource) skips events already seen.
func (s *Server) sessionEvents(c *gin.Context) {
	a, err := s.session(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	sess := a.session
	after, err := eventCursor(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if !strings.Contains(c.GetHeader("Accept"), "text/event-stream") {
		events, err := s.store.ListEvents(ctx, sess.ID, after)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"events": nonNil(events)})
		return
	}

	release, ok := s.streams.acquire(currentUser(c).ID)
	if !ok {
		s.fail(c, cohort.Errorf(ETOOMANY, "you have %d event streams open; close some (other tabs) first", maxStreamsPerUser))
		return
	}
	defer release()
	w := c.Writer
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tell reverse proxies not to buffer
	w.WriteHeader(http.StatusOK)
	w.Flush()

	poll := time.NewTicker(s.eventPoll)
	defer poll.Stop()
	lastWrite, lastCheck := time.Now(), time.Now()
	for {
		// A stream lasts as long as its session: it ends when the access
		// that let it in ends (a revoked credential, a removal).
		if time.Since(lastCheck) >= s.recheck {
			u, _, err := s.identify(c.Request)
			if err == nil {
				_, err = s.sessionFor(ctx, u, sess.ID)
			}
			if err != nil {
				return
			}
			lastCheck = time.Now()
		}
		// Read the state before the events: the event that ends a session
		// is committed with its state, so once the state read says ended,
		// the listing that follows holds every event there will be.
		cur, err := s.store.GetSession(ctx, sess.ID)
		if err != nil {
			return
		}
		events, err := s.store.ListEvents(ctx, sess.ID, after)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("event stream", "session_id", sess.ID, "error", err)
			}
			return
		}
		for _, e := range events {
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.State, b)
			after = e.ID
		}
		if len(events) > 0 {
			w.Flush()
			lastWrite = time.Now()
		}
		if !cur.State.Active() {
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			w.Flush()
			return
		}
		if time.Since(lastWrite) > 15*time.Second {
			fmt.Fprint(w, ": keep-alive\n\n") // keeps idle proxies from cutting the stream
			w.Flush()
			lastWrite = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		}
	}
}

func eventCursor(c *gin.Context) (int64, error) {
	raw := c.Query("after")
	if raw == "" {
		raw = c.GetHeader("Last-Event-ID")
	}
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, cohort.Invalid("after", "after must be an event ID (a non-negative integer), not %q", raw)
	}
	return n, nil
}
