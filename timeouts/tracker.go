package timeouts

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ActivityStore is where a Tracker writes.
type ActivityStore interface {
	RecordActivity(ctx context.Context, id string, at time.Time) error
}

// Tracker records use seen by the proxy without ever making it wait for
// the database: Touch notes the use in memory, and Run writes what was
// noted in the background. A session's use is noted at most once per
// every: activity is only ever late by that much plus Run's interval,
// against idle timeouts of many minutes, and busy notebooks do not turn
// into a stream of database writes.
type Tracker struct {
	store ActivityStore
	now   func() time.Time
	every time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	noted   map[string]time.Time // when each session's use was last noted
	pending map[string]time.Time // noted, not written yet
	pruned  time.Time            // when noted was last pruned
}

// NewTracker returns a Tracker noting each session's use at most once per
// every; nothing is written until Run or Flush.
func NewTracker(store ActivityStore, now func() time.Time, every time.Duration, log *slog.Logger) *Tracker {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{store: store, now: now, every: every, log: log,
		noted: map[string]time.Time{}, pending: map[string]time.Time{}}
}

// Touch records that the session is in use now. It never blocks on I/O.
func (t *Tracker) Touch(sessionID string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.noted[sessionID]; ok && now.Sub(last) < t.every {
		return
	}
	t.noted[sessionID] = now
	t.pending[sessionID] = now
	// Forget sessions not seen for long, looking at most once a minute.
	if len(t.noted) > 10000 && now.Sub(t.pruned) > time.Minute {
		t.pruned = now
		for id, at := range t.noted {
			if now.Sub(at) > time.Hour {
				delete(t.noted, id)
			}
		}
	}
}

// Flush writes the use noted since the last flush. What fails to be
// written stays noted for the next.
func (t *Tracker) Flush(ctx context.Context) error {
	t.mu.Lock()
	batch := t.pending
	t.pending = map[string]time.Time{}
	t.mu.Unlock()
	var errs []error
	for id, at := range batch {
		if err := t.store.RecordActivity(ctx, id, at); err != nil {
			errs = append(errs, err)
			t.mu.Lock()
			if later, ok := t.pending[id]; !ok || later.Before(at) {
				t.pending[id] = at
			}
			t.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

// Run flushes every interval until ctx ends, and once more then (for up
// to 5 seconds), so that a clean shutdown loses no use.
func (t *Tracker) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := t.Flush(ctx); err != nil && ctx.Err() == nil {
				t.log.Error("record activity", "error", err)
			}
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := t.Flush(last); err != nil {
				t.log.Error("record activity at shutdown", "error", err)
			}
			return
		}
	}
}
