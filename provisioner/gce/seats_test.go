package gce_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jobs"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/provisioner/gce"
	"github.com/cohortdev/cohort/provisioner/gce/gcptest"
	"github.com/cohortdev/cohort/store/sqlite"
)

// seats is a driver whose shard updates run on a real job queue over a
// SQLite store, with what a test needs to look at: the store, every note
// a start wrote, and Start waiting for the VM as the reconciler does.
type seats struct {
	*gce.Driver
	store *notes
	queue *jobs.Queue
}

// driver is gce.New over a store and queue of the test's own; a second
// driver on the same store (cohort restarted, or another replica) is
// driverOn.
func driver(t testing.TB, opts gce.Options) *seats {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cohort.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return driverOn(t, &notes{ShardStore: st, path: path}, opts)
}

func driverOn(t testing.TB, store *notes, opts gce.Options) *seats {
	t.Helper()
	var queue *jobs.Queue
	opts.Shards, opts.Progress = store, store.add
	opts.Enqueue = func(ctx context.Context, class, shard string, after time.Duration) error {
		return queue.EnqueueShard(ctx, class, shard, after)
	}
	d, err := gce.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", sqlite.DSN(store.path))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // see jobs.Options
	ctx := context.Background()
	queue, err = jobs.New(ctx, jobs.Options{DB: db, Reconciler: idle{}, Shards: d, Resync: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		queue.Stop(stop)
		db.Close()
	})
	return &seats{Driver: d, store: store, queue: queue}
}

// Start records the seat as Driver.Start does, then waits as the
// reconciler would until its VM exists (nil), the driver gave up on it
// (the reason, as an EUNAVAILABLE error) or it was stopped (nil).
func (s *seats) Start(ctx context.Context, spec cohort.NotebookSpec) error {
	if err := s.Driver.Start(ctx, spec); err != nil {
		return err
	}
	for {
		m, err := s.store.ShardMember(ctx, spec.SessionID)
		switch {
		case cohort.ErrorCode(err) == cohort.ENOTFOUND:
			return nil
		case err != nil:
			return err
		case m.Failed != "":
			return cohort.Errorf(cohort.EUNAVAILABLE, "%s", m.Failed)
		case m.VM != "" || !m.Wanted:
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shards returns the names of the shards in the store.
func (s *seats) shards(t testing.TB) []string {
	t.Helper()
	list, err := s.store.ListShards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sh := range list {
		names = append(names, sh.Name)
	}
	return names
}

// notes is the store, keeping every step the driver told of a start.
type notes struct {
	cohort.ShardStore
	path string
	mu   sync.Mutex
	all  map[string][]string
}

func (n *notes) add(_ context.Context, id, note string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.all == nil {
		n.all = map[string][]string{}
	}
	n.all[id] = append(n.all[id], note)
}

func (n *notes) of(id string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.all[id])
}

// idle is a reconciler with no sessions: these tests drive the driver.
type idle struct{}

func (idle) Reconcile(context.Context, string) (provisioner.Result, error) {
	return provisioner.Result{}, nil
}
func (idle) Pending(context.Context) ([]string, error) { return nil, nil }

// subnet is the foundation's subnetwork of session VMs (infra/foundation).
const subnet = "projects/workshop-123/regions/us-central1/subnetworks/cohort-sessions"

// newDriver is a driver over newStacks with the default class's runtime.
func newDriver(t testing.TB) (*seats, *gce.Stacks, *gcptest.Fake) {
	t.Helper()
	stacks, fake := newStacks(t)
	return driver(t, gce.Options{Stacks: stacks, Project: "workshop-123", Subnetwork: subnet, SeatsPerShard: 25, Gather: 300 * time.Millisecond}), stacks, fake
}

func seat(id, class string, zones ...string) cohort.NotebookSpec {
	rt := cohort.DefaultClass().Runtime
	if len(zones) > 0 {
		rt.Zones = zones
	}
	return cohort.NotebookSpec{SessionID: id, ClassID: class, UserEmail: id + "@example.org", Token: "t-" + id,
		BasePath: "/", Runtime: rt, MaxLifetime: time.Hour}
}

// startAll starts the seats at once and returns each one's error.
func startAll(d *seats, specs []cohort.NotebookSpec) map[string]error {
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	for _, s := range specs {
		wg.Go(func() {
			err := d.Start(context.Background(), s)
			mu.Lock()
			errs[s.SessionID] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return errs
}
