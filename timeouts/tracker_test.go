package timeouts_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort/timeouts"
)

// gatedStore records activity once its gate opens, and fails while failing.
type gatedStore struct {
	gate    chan struct{}
	mu      sync.Mutex
	failing bool
	written map[string]time.Time
}

func (s *gatedStore) RecordActivity(ctx context.Context, id string, at time.Time) error {
	select {
	case <-s.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return errors.New("database is locked")
	}
	s.written[id] = at
	return nil
}

// TestTouchNeverWaitsForTheStore: the proxy calls Touch on every use; with
// the database stalled (another writer holds it), Touch still returns at
// once, and the use is written when the database answers again, also
// after a failed write.
func TestTouchNeverWaitsForTheStore(t *testing.T) {
	t.Parallel()
	store := &gatedStore{gate: make(chan struct{}), failing: true, written: map[string]time.Time{}}
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	tr := timeouts.NewTracker(store, func() time.Time { return now }, 30*time.Second, nil)
	touched := make(chan struct{})
	go func() {
		for i := range 100 {
			tr.Touch(fmt.Sprintf("ses_%d", i))
		}
		close(touched)
	}()
	select {
	case <-touched:
	case <-time.After(10 * time.Second):
		t.Fatal("Touch waited for the stalled database")
	}
	close(store.gate)
	if err := tr.Flush(context.Background()); err == nil {
		t.Fatal("a flush into a failing database reported no error")
	}
	store.mu.Lock()
	store.failing = false
	store.mu.Unlock()
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(store.written) != 100 || !store.written["ses_7"].Equal(now) {
		t.Fatalf("after the database recovered, %d sessions' use was written (ses_7 at %s), want 100 at %s",
			len(store.written), store.written["ses_7"], now)
	}
}
