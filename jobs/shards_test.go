package jobs_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jobs"
	"github.com/cohortdev/cohort/provisioner"
)

// stopping is a reconciler whose every pass waits for a shard's update,
// as a GCE session's stop does.
type stopping struct {
	updated chan struct{}
	waiting atomic.Int32
}

func (s *stopping) Reconcile(ctx context.Context, _ string) (provisioner.Result, error) {
	s.waiting.Add(1)
	select {
	case <-s.updated:
		return provisioner.Result{}, nil
	case <-ctx.Done():
		return provisioner.Result{}, ctx.Err()
	}
}

func (*stopping) Pending(context.Context) ([]string, error) { return nil, nil }

// updates is a driver's shards: an update lets every stop go on.
type updates struct {
	updated chan struct{}
	once    sync.Once
}

func (u *updates) UpdateShard(context.Context, string, string) (time.Duration, error) {
	u.once.Do(func() { close(u.updated) })
	return 0, nil
}

func (*updates) OwedShards(context.Context) ([]cohort.Shard, error) { return nil, nil }

// TestStopsNeverStarveShardUpdates: every reconcile worker busy with a
// stop that waits for its shard's update; the update still runs (shard
// updates have workers of their own).
func TestStopsNeverStarveShardUpdates(t *testing.T) { onEach(t, testStopsNeverStarveShardUpdates) }

func testStopsNeverStarveShardUpdates(t *testing.T, database string) {
	updated := make(chan struct{})
	rec := &stopping{updated: updated}
	q := newQueueWith(t, database, jobs.Options{Reconciler: rec, Shards: &updates{updated: updated}, Workers: 2, Resync: time.Hour})
	ctx := context.Background()
	for i := range 2 {
		if err := q.Enqueue(ctx, fmt.Sprintf("ses_%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for rec.waiting.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the stops never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := q.EnqueueShard(ctx, "cls_1", "shard-1", 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-updated:
	case <-time.After(15 * time.Second):
		t.Fatal("the shard's update never ran while every worker's stop waited for it")
	}
}
