package timeouts

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// ActivityStore is where a Tracker writes.
type ActivityStore interface {
	RecordActivity(ctx context.Context, id string, at time.Time) error
}

// Tracker records use seen by the proxy. It writes a session's activity at
// most once per Every: activity is only ever late by that much, against
// idle timeouts of many minutes, and busy notebooks do not turn into a
// stream of database writes.
type Tracker struct {
	store ActivityStore
	now   func() time.Time
	every time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	written map[string]time.Time
}

// NewTracker returns a Tracker writing to store at most once per every.
func NewTracker(store ActivityStore, now func() time.Time, every time.Duration, log *slog.Logger) *Tracker {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{store: store, now: now, every: every, log: log, written: map[string]time.Time{}}
}

// Touch records that the session is in use now.
func (t *Tracker) Touch(sessionID string) {
	now := t.now()
	t.mu.Lock()
	last, ok := t.written[sessionID]
	due := !ok || now.Sub(last) >= t.every
	if due {
		t.written[sessionID] = now
		if len(t.written) > 10000 { // forget sessions not seen for long
			for id, at := range t.written {
				if now.Sub(at) > time.Hour {
					delete(t.written, id)
				}
			}
		}
	}
	t.mu.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.store.RecordActivity(ctx, sessionID, now); err != nil {
		t.log.Error("record activity", "session_id", sessionID, "error", err)
	}
}
