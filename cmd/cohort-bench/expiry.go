package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jobs"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/provisioner/local"
	"github.com/cohortdev/cohort/store/sqlite"
	"github.com/cohortdev/cohort/timeouts"
)

// expiry measures how long after an idle deadline passes a local
// notebook's processes are gone, with the server's own scheduler (River's
// periodic sweep at the given interval) and real notebooks. The clock the
// sweep reads is moved forward past every deadline at once; everything
// else runs in real time.
func expiry(ctx context.Context, dir string, n int, every time.Duration) ([]time.Duration, error) {
	store, err := sqlite.Open(ctx, filepath.Join(dir, "cohort.db"))
	if err != nil {
		return nil, err
	}
	defer store.Close()
	riverDB, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(dir, "cohort.db")))
	if err != nil {
		return nil, err
	}
	riverDB.SetMaxOpenConns(1)
	defer riverDB.Close()
	driver, err := local.New(local.Options{Root: filepath.Join(dir, "sessions")})
	if err != nil {
		return nil, err
	}
	defer stopNotebooks(filepath.Join(dir, "sessions"))
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	late := &lateQueue{}
	sweeper := timeouts.New(timeouts.Options{Store: store, Driver: driver, Enqueuer: late, Now: now})
	queue, err := jobs.New(ctx, jobs.Options{DB: riverDB, Reconciler: provisioner.New(provisioner.Options{Store: store, Driver: driver}),
		Sweeper: sweeper, SweepEvery: every})
	if err != nil {
		return nil, err
	}
	late.q = queue
	if err := queue.Start(ctx); err != nil {
		return nil, err
	}
	defer queue.Stop(context.WithoutCancel(ctx))

	owner, _ := store.EnsureUser(ctx, "teacher@bench.example", cohort.RoleInstructor)
	class := cohort.DefaultClass()
	class.Name, class.OwnerID = "expiry", owner.ID
	if err := store.CreateClass(ctx, &class); err != nil {
		return nil, err
	}
	ids := make([]string, n)
	for i := range ids {
		u, _ := store.EnsureUser(ctx, fmt.Sprintf("p%d@bench.example", i), cohort.RoleParticipant)
		s, _, err := store.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: class.ID, UserID: u.ID,
			State: cohort.StateRequested, Driver: driver.Name(), NotebookToken: cohort.NewSecret("")}, n)
		if err != nil {
			return nil, err
		}
		ids[i] = s.ID
		queue.Enqueue(ctx, s.ID)
	}
	for _, id := range ids {
		if err := waitFor(ctx, 2*time.Minute, func() bool {
			s, _ := store.GetSession(ctx, id)
			return s != nil && s.State == cohort.StateReady
		}); err != nil {
			return nil, fmt.Errorf("session %s never ready: %w", id, err)
		}
	}
	// Every idle deadline passes now.
	offset.Store(int64(class.Policy.IdleTimeout.D() + time.Minute))
	t0 := time.Now()
	gone := make([]time.Duration, 0, n)
	left := slices.Clone(ids)
	for len(left) > 0 {
		running, err := driver.List(ctx)
		if err != nil {
			return nil, err
		}
		left = slices.DeleteFunc(left, func(id string) bool {
			if slices.Contains(running, id) {
				return false
			}
			gone = append(gone, time.Since(t0))
			return true
		})
		if time.Since(t0) > 3*every+time.Minute {
			return nil, fmt.Errorf("%d notebooks still run %s after their deadline", len(left), time.Since(t0))
		}
		time.Sleep(20 * time.Millisecond)
	}
	slices.Sort(gone)
	return gone, nil
}

type lateQueue struct{ q *jobs.Queue }

func (l *lateQueue) Enqueue(ctx context.Context, id string) error { return l.q.Enqueue(ctx, id) }

func waitFor(ctx context.Context, limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
