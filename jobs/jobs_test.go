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

func newQueueFor(t *testing.T, rec jobs.Reconciler, database string) *jobs.Queue {
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
	q, err := jobs.New(ctx, jobs.Options{DB: db, Database: database, Reconciler: rec, Resync: time.Hour})
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
// asks for another after snooze, as while a notebook starts. It counts
// passes; a pass of a session in hold waits until it is released.
type forever struct {
	snooze time.Duration
	mu     sync.Mutex
	passes map[string]int
	hold   map[string]chan struct{}
	rest   bool
}

func (f *forever) Reconcile(_ context.Context, id string) (provisioner.Result, error) {
	f.mu.Lock()
	f.passes[id]++
	hold, rest := f.hold[id], f.rest
	delete(f.hold, id)
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if rest {
		return provisioner.Result{}, nil
	}
	return provisioner.Result{RequeueAfter: f.snooze}, nil
}

func (f *forever) Pending(context.Context) ([]string, error) { return nil, nil }

func (f *forever) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.passes[id]
}

// TestOneJobPerSession: a session that provisions for long is enqueued
// again and again (each change, each resync); one job carries it all
// along, woken by each enqueue, so its passes grow with the enqueues and
// the snoozes, not with their product (before: 4 to 27 passes a second
// within 8 s, from 7 jobs).
func TestOneJobPerSession(t *testing.T) { onEach(t, testOneJobPerSession) }

func testOneJobPerSession(t *testing.T, database string) {
	ctx := context.Background()
	f := &forever{snooze: 200 * time.Millisecond, passes: map[string]int{}, hold: map[string]chan struct{}{}}
	q := newQueueFor(t, f, database)
	const enqueues = 30
	start := time.Now()
	for range enqueues {
		if err := q.Enqueue(ctx, "ses_slow"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if n, err := q.Depth(ctx); err != nil || n != 1 {
			t.Fatalf("%d reconcile jobs live for one session (%v), want 1", n, err)
		}
	}
	elapsed := time.Since(start)
	// Each pass was started by an enqueue or by the end of a snooze.
	if most := enqueues + int(elapsed/f.snooze) + 2; f.count("ses_slow") > most {
		t.Fatalf("%d passes in %s for %d enqueues with %s snoozes, want at most %d",
			f.count("ses_slow"), elapsed.Round(time.Millisecond), enqueues, f.snooze, most)
	}
}

// TestEnqueueWhileRunning: a change enqueued while the session's job runs
// a pass that then ends at rest still gets a pass of its own.
func TestEnqueueWhileRunning(t *testing.T) { onEach(t, testEnqueueWhileRunning) }

func testEnqueueWhileRunning(t *testing.T, database string) {
	ctx := context.Background()
	release := make(chan struct{})
	f := &forever{passes: map[string]int{}, hold: map[string]chan struct{}{"ses_a": release}, rest: true}
	q := newQueueFor(t, f, database)
	if err := q.Enqueue(ctx, "ses_a"); err != nil {
		t.Fatal(err)
	}
	waitPasses(t, f, "ses_a", 1) // running, held
	if err := q.Enqueue(ctx, "ses_a"); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitPasses(t, f, "ses_a", 2)
}

func waitPasses(t *testing.T, f *forever, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f.count(id) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s had %d passes, want %d", id, f.count(id), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
