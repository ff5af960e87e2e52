package gce_test

import (
	"context"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/provisioner/gce"
	"github.com/cohortdev/cohort/store/sqlite"
)

// clock is a time the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// bare is a driver with no queue: the test runs its shards' updates.
func bare(t *testing.T, opts gce.Options) (*gce.Driver, cohort.ShardStore) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "cohort.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return bareOn(t, st, opts), st
}

// testLog writes a driver's log to the test's.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// bareOn is another such driver on the same store: another replica.
func bareOn(t *testing.T, st cohort.ShardStore, opts gce.Options) *gce.Driver {
	t.Helper()
	opts.Shards = st
	opts.Enqueue = func(context.Context, string, string, time.Duration) error { return nil }
	if opts.Logger == nil { // what its updates say shows with a failure
		opts.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	}
	d, err := gce.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// shardOf returns the shard a session is a member of.
func shardOf(t *testing.T, st cohort.ShardStore, id string) (*cohort.ShardMember, *cohort.Shard) {
	t.Helper()
	m, err := st.ShardMember(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	shards, err := st.ListShards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		if sh.Name == m.Shard {
			return m, sh
		}
	}
	t.Fatalf("shard %s of %s is gone", m.Shard, id)
	return nil, nil
}

// TestAnotherReplicasLeaseIsWaitedOut: a shard whose lease another
// replica holds is not updated until the lease runs out, by the driver's
// clock (the holder settles it, or the resync finds it owed once the
// lease has run out); then this replica takes it over and makes the VM.
func TestAnotherReplicasLeaseIsWaitedOut(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	now := &clock{now: time.Now()}
	d, st := bare(t, gce.Options{Stacks: stacks, Project: "workshop-123", Subnetwork: subnet, Now: now.Now})
	ctx := context.Background()
	if err := d.Start(ctx, seat("ses_l", "cls_l")); err != nil {
		t.Fatal(err)
	}
	m, sh := shardOf(t, st, "ses_l")
	err := st.EditShards(ctx, "cls_l", func(set *cohort.ShardSet) error {
		s := set.Shards[sh.Name]
		s.LeaseOwner, s.LeaseUntil = "elsewhere/1/x", now.Now().Add(30*time.Second)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	now.Add(29 * time.Second)
	wait, err := d.UpdateShard(ctx, "cls_l", m.Shard)
	if err != nil || wait != 0 || fake.Creates() != 0 {
		t.Fatalf("UpdateShard under another's lease = %v, %v after %d creates; want to leave it to its holder", wait, err, fake.Creates())
	}
	now.Add(2 * time.Second)
	if wait, err = d.UpdateShard(ctx, "cls_l", m.Shard); err != nil || wait != 0 {
		t.Fatalf("UpdateShard once the lease ran out = %v, %v", wait, err)
	}
	if m, sh := shardOf(t, st, "ses_l"); m.VM == "" || sh.Settled != sh.Generation || sh.LeaseOwner != "" {
		t.Fatalf("after the update: member %+v, shard %+v", m, sh)
	}
	if n := len(fake.Instances()); n != 1 {
		t.Fatalf("%d instances, want 1", n)
	}
}

// TestLostLeaseInterruptsTheUpdate: a replica whose lease another took
// (it could not renew in time) kills its engine at once instead of racing
// the new holder, and fails no seat: the seat it was making is owed the
// next update. The next holder, another driver on the same store and
// state, takes any lock left as stale, repairs the state and finishes:
// one VM, no lock.
func TestLostLeaseInterruptsTheUpdate(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	fake.Latency = 10 * time.Second
	opts := gce.Options{Stacks: stacks, Project: "workshop-123", Subnetwork: subnet, Lease: 600 * time.Millisecond}
	d, st := bare(t, opts)
	ctx := context.Background()
	if err := d.Start(ctx, seat("ses_x", "cls_x")); err != nil {
		t.Fatal(err)
	}
	m, _ := shardOf(t, st, "ses_x")
	done := make(chan error, 1)
	go func() { _, err := d.UpdateShard(ctx, "cls_x", m.Shard); done <- err }()
	waitUntil(t, func() bool { return fake.CreatesInFlight() > 0 })
	steal := func(until time.Time) {
		t.Helper()
		err := st.EditShards(ctx, "cls_x", func(set *cohort.ShardSet) error {
			set.Shards[m.Shard].LeaseOwner, set.Shards[m.Shard].LeaseUntil = "thief/1/y", until
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	steal(time.Now().Add(time.Hour))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(8 * time.Second): // the create in flight takes 10; SIGKILL comes after 5
		t.Fatal("the update went on after its lease was lost")
	}
	m, sh := shardOf(t, st, "ses_x")
	if m.Failed != "" || sh.Generation <= sh.Settled || sh.LeaseOwner != "thief/1/y" {
		t.Fatalf("after a lost lease: member %+v, shard %+v; want the seat owed another update, the lease the thief's", m, sh)
	}
	// Interrupted twice, the engine may have released its lock; killed, it
	// left it. Either way the next holder finishes.
	t.Logf("locks the engine left: %v", locksOf(stacks))

	// The thief's lease runs out; another replica updates the shard, with
	// a lease of the usual length: a 600 ms one renews within 100 ms or
	// gives up, which a loaded machine's database does not always allow
	// (seen: "renew the lease ...: context deadline exceeded").
	steal(time.Now())
	nextOpts := opts
	nextOpts.Lease = 0
	next := bareOn(t, st, nextOpts)
	waitUntil(t, func() bool { return fake.CreatesInFlight() == 0 })
	if wait, err := next.UpdateShard(ctx, "cls_x", m.Shard); err != nil || wait != 0 {
		t.Fatalf("the next replica's update = %v, %v", wait, err)
	}
	if m, _ := shardOf(t, st, "ses_x"); m.VM == "" || m.Failed != "" {
		t.Fatalf("after the next replica's update: %+v", m)
	}
	if n := len(fake.Instances()); n != 1 {
		t.Fatalf("%d instances, want the one the killed engine had sent", n)
	}
	if locks := locksOf(stacks); len(locks) != 0 {
		t.Fatalf("locks left: %v", locks)
	}
}

// locksOf lists the stack locks in newStacks's file:// backend.
func locksOf(stacks *gce.Stacks) []string {
	var locks []string
	state := filepath.Join(filepath.Dir(filepath.Dir(stacks.WorkDir("x"))), "state", ".pulumi", "locks")
	filepath.WalkDir(state, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			locks = append(locks, path)
		}
		return nil
	})
	return locks
}
