package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort/jobs"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/store/postgres"
	"github.com/cohortdev/cohort/store/postgres/pgtest"
	"github.com/cohortdev/cohort/store/sqlite"
)

// script is a reconciler that answers each session's passes from a list
// and records them.
type script struct {
	mu      sync.Mutex
	answers map[string][]answer
	passes  map[string]int
	pending []string
	done    chan string
}

type answer struct {
	res provisioner.Result
	err error
}

func (s *script) Reconcile(_ context.Context, id string) (provisioner.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.passes[id]
	s.passes[id]++
	if n < len(s.answers[id]) {
		return s.answers[id][n].res, s.answers[id][n].err
	}
	s.done <- id
	return provisioner.Result{}, nil
}

func (s *script) Pending(context.Context) ([]string, error) { return s.pending, nil }

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// onEach runs test with River on each database cohort supports.
func onEach(t *testing.T, test func(t *testing.T, database string)) {
	for _, database := range []string{jobs.SQLite, jobs.Postgres} {
		t.Run(database, func(t *testing.T) {
			t.Parallel()
			test(t, database)
		})
	}
}

func newQueue(t *testing.T, rec *script, database string) *jobs.Queue {
	t.Helper()
	return newQueueFor(t, rec, database)
}

func newQueueFor(t testing.TB, rec jobs.Reconciler, database string) *jobs.Queue {
	t.Helper()
	return newQueueWith(t, database, jobs.Options{Reconciler: rec, Resync: time.Hour})
}

// newQueueWith is a started queue of opts on a database of the test's own.
func newQueueWith(t testing.TB, database string, opts jobs.Options) *jobs.Queue {
	t.Helper()
	ctx := context.Background()
	var db *sql.DB
	var err error
	if database == jobs.Postgres {
		db, err = postgres.OpenDB(pgtest.URL(t), 10)
	} else {
		db, err = sql.Open("sqlite", sqlite.DSN(filepath.Join(t.TempDir(), "cohort.db")))
	}
	if err != nil {
		t.Fatal(err)
	}
	if database == jobs.SQLite {
		db.SetMaxOpenConns(1) // see jobs.Options
	}
	t.Cleanup(func() { db.Close() })
	opts.DB, opts.Database = db, database
	q, err := jobs.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q.Stop(stop)
	})
	return q
}

func waitDone(t *testing.T, rec *script, want ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, id := range want {
		left[id] = true
	}
	timeout := time.After(30 * time.Second)
	for len(left) > 0 {
		select {
		case id := <-rec.done:
			delete(left, id)
		case <-timeout:
			t.Fatalf("sessions %v never came to rest", left)
		}
	}
}

func TestRequeueAndRetry(t *testing.T) { onEach(t, testRequeueAndRetry) }

func testRequeueAndRetry(t *testing.T, database string) {
	rec := &script{
		answers: map[string][]answer{
			"ses_wait":  {{res: provisioner.Result{RequeueAfter: 50 * time.Millisecond}}, {res: provisioner.Result{Requeue: true}}},
			"ses_error": {{err: errors.New("driver hiccup")}},
		},
		passes: map[string]int{}, done: make(chan string, 10),
	}
	q := newQueue(t, rec, database)
	for _, id := range []string{"ses_wait", "ses_error"} {
		if err := q.Enqueue(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	waitDone(t, rec, "ses_wait", "ses_error")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.passes["ses_wait"] != 3 || rec.passes["ses_error"] != 2 {
		t.Fatalf("passes = %v, want 3 for the snoozed session and 2 for the failed one", rec.passes)
	}
}

func TestStartResumesPendingSessions(t *testing.T) { onEach(t, testStartResumesPendingSessions) }

func testStartResumesPendingSessions(t *testing.T, database string) {
	rec := &script{answers: map[string][]answer{}, passes: map[string]int{}, done: make(chan string, 10),
		pending: []string{"ses_a", "ses_b"}}
	newQueue(t, rec, database)
	waitDone(t, rec, "ses_a", "ses_b")
}

// forever is a reconciler whose sessions never come to rest: each pass
// asks for another after snooze, as while a notebook starts.
type forever struct {
	snooze time.Duration
	mu     sync.Mutex
	passes map[string]int
}

func (f *forever) Reconcile(_ context.Context, id string) (provisioner.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passes[id]++
	return provisioner.Result{RequeueAfter: f.snooze}, nil
}

func (f *forever) Pending(context.Context) ([]string, error) { return nil, nil }

func (f *forever) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.passes[id]
}

// TestOneChainPerSession: a session that provisions for long is enqueued
// again and again (each change, each resync). Each enqueue adds a job,
// but the older ones end at their next pass, so the jobs come back to one
// and the passes grow with the enqueues and the snoozes, not with their
// product (before: 4 to 27 passes a second within 8 s, from 7 jobs).
func TestOneChainPerSession(t *testing.T) { onEach(t, testOneChainPerSession) }

func testOneChainPerSession(t *testing.T, database string) {
	ctx := context.Background()
	f := &forever{snooze: 200 * time.Millisecond, passes: map[string]int{}}
	q := newQueueFor(t, f, database)
	const enqueues = 30
	start := time.Now()
	for range enqueues {
		if err := q.Enqueue(ctx, "ses_slow"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := q.Depth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reconcile jobs live for one session 10 s after %d enqueues, want 1", n, enqueues)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A pass starts at an enqueue or at the end of a snooze; while two
	// chains meet, both may pass.
	elapsed := time.Since(start)
	if most := 2*(enqueues+int(elapsed/f.snooze)) + 4; f.count("ses_slow") > most {
		t.Fatalf("%d passes in %s for %d enqueues with %s snoozes, want at most %d",
			f.count("ses_slow"), elapsed.Round(time.Millisecond), enqueues, f.snooze, most)
	}
	// The one chain goes on.
	before := f.count("ses_slow")
	time.Sleep(5 * f.snooze)
	if f.count("ses_slow") == before {
		t.Fatal("the session's last job ended too: no chain carries it")
	}
}

// TestReplicasMigrateRiverOnce: replicas starting together on an empty
// Postgres database each make their queue; River's tables are made once.
func TestReplicasMigrateRiverOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			db, err := postgres.OpenDB(url, 4)
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			rec := &script{answers: map[string][]answer{}, passes: map[string]int{}, done: make(chan string, 1)}
			if _, err := jobs.New(context.Background(), jobs.Options{DB: db, Database: jobs.Postgres, Reconciler: rec}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// BenchmarkProvisioningPasses measures reconcile passes per second of one
// session that provisions for a minute while it is enqueued again every
// second (a participant's page reconnecting, a resync), with the local
// driver's poll of 250 ms: the rate in the first and the last 10 seconds,
// and the jobs live at the end. Run it with -benchtime 1x.
func BenchmarkProvisioningPasses(b *testing.B) {
	for _, database := range []string{jobs.SQLite, jobs.Postgres} {
		b.Run(database, func(b *testing.B) {
			for b.Loop() {
				ctx := context.Background()
				f := &forever{snooze: 250 * time.Millisecond, passes: map[string]int{}}
				q := newQueueFor(b, f, database)
				var first, last int
				for sec := range 60 {
					if err := q.Enqueue(ctx, "ses_slow"); err != nil {
						b.Fatal(err)
					}
					time.Sleep(time.Second)
					switch sec {
					case 9:
						first = f.count("ses_slow")
					case 49:
						last = f.count("ses_slow")
					}
				}
				live, err := q.Depth(ctx)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(first)/10, "passes/s-first10s")
				b.ReportMetric(float64(f.count("ses_slow")-last)/10, "passes/s-last10s")
				b.ReportMetric(float64(live), "live-jobs")
			}
		})
	}
}
