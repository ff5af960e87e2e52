// Package jobs runs cohort's background work on River, a job queue in the
// same database as the store: one reconcile job per session change (with
// retries and snoozes while a notebook starts), and a periodic resync
// that re-reads every session not at rest, so that nothing depends on a
// job surviving a crash.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/timeouts"
)

// Reconciler is what the jobs run.
type Reconciler interface {
	Reconcile(ctx context.Context, sessionID string) (provisioner.Result, error)
	Pending(ctx context.Context) ([]string, error)
}

// Shards is a driver that batches sessions into shards whose updates run
// as jobs (provisioner/gce).
type Shards interface {
	// UpdateShard runs the update a shard is owed and says how soon to
	// look at it again (0: nothing more is owed).
	UpdateShard(ctx context.Context, class, shard string) (time.Duration, error)
	// OwedShards returns the shards owed an update that nobody runs.
	OwedShards(ctx context.Context) ([]cohort.Shard, error)
}

// Pools keeps classes' warm seats (api.Server).
type Pools interface {
	// TendPool brings a class's warm seats to what its schedule wants.
	TendPool(ctx context.Context, classID string) error
	// WarmClasses returns the classes whose warm window is open, or
	// opens within soon (when), or closed a little ago.
	WarmClasses(ctx context.Context, soon time.Duration) (map[string]time.Time, error)
}

// Sweeper enforces session deadlines.
type Sweeper interface {
	Sweep(ctx context.Context) (timeouts.Stats, error)
}

// Options configure a Queue.
type Options struct {
	// DB is a pool for River alone. With SQLite it must allow one
	// connection only (SQLite allows one writer, and River runs work in
	// parallel).
	DB *sql.DB
	// Database is what DB is: SQLite (the default) or Postgres.
	Database   string
	Reconciler Reconciler
	// Shards, if set, has its shard updates run here.
	Shards Shards
	// Pools, if set, has classes' warm seats kept here: the resync looks
	// at every class whose warm window is open.
	Pools Pools
	// Workers is how many sessions are reconciled at once; 20 if zero.
	Workers int
	// Resync is how often every session not at rest is looked at again;
	// 30s if zero.
	Resync time.Duration
	// Sweeper, if set, runs every SweepEvery (5s if zero): the leader
	// queues it, so with several replicas one sweep runs each time, on
	// whichever replica takes the job.
	Sweeper    Sweeper
	SweepEvery time.Duration
	Logger     *slog.Logger
}

// The databases River runs on.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Queue is the job queue.
type Queue struct {
	client  *river.Client[*sql.Tx]
	rec     Reconciler
	shards  Shards
	pools   Pools
	every   time.Duration // between resyncs
	sweeper Sweeper
	log     *slog.Logger
}

// ReconcileArgs asks for one reconcile pass over a session.
type ReconcileArgs struct {
	SessionID string `json:"session_id"`
}

// Kind names the job in the queue.
func (ReconcileArgs) Kind() string { return "reconcile_session" }

// InsertOpts gives reconcile jobs many attempts: snoozes do not use them
// up, and errors are retried with River's backoff.
func (ReconcileArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 10} }

// ShardArgs asks for the update a shard is owed.
type ShardArgs struct {
	Class string `json:"class_id"`
	Shard string `json:"shard"`
	// NotBefore delays the update (a class start gathers its seats).
	// River's scheduled jobs wait for its scheduler, which runs every 5 s;
	// a job that snoozes for less is made available at once.
	NotBefore time.Time `json:"not_before,omitzero"`
}

// Kind names the job in the queue.
func (ShardArgs) Kind() string { return "update_shard" }

// InsertOpts: an update that fails is retried, with River's backoff.
// Updates have a queue of their own: a reconcile job that stops a session
// waits for one, and must not hold the worker it needs.
func (ShardArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 25, Queue: shardQueue}
}

// shardQueue is the River queue of shard updates.
const shardQueue = "shards"

// PoolArgs asks for a look at a class's warm seats.
type PoolArgs struct {
	Class string `json:"class_id"`
	// NotBefore is when to look: the opening of the class's warm window.
	NotBefore time.Time `json:"not_before,omitzero"`
}

// Kind names the job in the queue.
func (PoolArgs) Kind() string { return "tend_pool" }

// ResyncArgs asks for a look at every session that needs one.
type ResyncArgs struct{}

// Kind names the job in the queue.
func (ResyncArgs) Kind() string { return "resync_sessions" }

// SweepArgs asks for a sweep of session deadlines.
type SweepArgs struct{}

// Kind names the job in the queue.
func (SweepArgs) Kind() string { return "sweep_deadlines" }

// New migrates River's tables and builds the queue; Start runs it.
func New(ctx context.Context, opts Options) (*Queue, error) {
	if opts.Workers == 0 {
		opts.Workers = 20
	}
	if opts.Resync == 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.SweepEvery == 0 {
		opts.SweepEvery = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var driver riverdriver.Driver[*sql.Tx] = riversqlite.New(opts.DB)
	if opts.Database == Postgres {
		driver = riverdatabasesql.New(opts.DB)
	}
	if err := migrate(ctx, driver, opts); err != nil {
		return nil, err
	}
	q := &Queue{rec: opts.Reconciler, shards: opts.Shards, pools: opts.Pools, every: opts.Resync, sweeper: opts.Sweeper, log: opts.Logger}
	workers := river.NewWorkers()
	river.AddWorker(workers, &reconcileWorker{q: q})
	if opts.Shards != nil {
		river.AddWorker(workers, &shardWorker{q: q})
	}
	river.AddWorker(workers, &resyncWorker{q: q})
	if opts.Pools != nil {
		river.AddWorker(workers, &poolWorker{q: q})
	}
	periodic := []*river.PeriodicJob{river.NewPeriodicJob(
		river.PeriodicInterval(opts.Resync),
		func() (river.JobArgs, *river.InsertOpts) { return ResyncArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true},
	)}
	if opts.Sweeper != nil {
		river.AddWorker(workers, &sweepWorker{q: q})
		periodic = append(periodic, river.NewPeriodicJob(
			river.PeriodicInterval(opts.SweepEvery),
			func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true},
		))
	}
	queues := map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.Workers}}
	if opts.Shards != nil {
		queues[shardQueue] = river.QueueConfig{MaxWorkers: opts.Workers}
	}
	var err error
	q.client, err = river.NewClient(driver, &river.Config{
		Queues:       queues,
		Workers:      workers,
		PeriodicJobs: periodic,
		// Neither SQLite nor Postgres through database/sql has River's
		// LISTEN/NOTIFY: poll often, it is a cheap query.
		FetchPollInterval: 100 * time.Millisecond,
		FetchCooldown:     20 * time.Millisecond,
		// A GCE start may try several zones, minutes each.
		JobTimeout: 30 * time.Minute,
		Logger:     quiet(opts.Logger),
	})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return q, nil
}

// riverMigrationLock is the advisory lock replicas on Postgres take to
// migrate River's tables one at a time.
const riverMigrationLock = 0x7269766572 // "river"

// migrate brings River's tables up to date: on Postgres under an advisory
// lock, so that replicas starting together do not race.
func migrate(ctx context.Context, driver riverdriver.Driver[*sql.Tx], opts Options) error {
	if opts.Database == Postgres {
		conn, err := opts.DB.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrate river tables: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", riverMigrationLock); err != nil {
			return fmt.Errorf("migrate river tables: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", riverMigrationLock)
	}
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: quiet(opts.Logger)})
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river tables: %w", err)
	}
	return nil
}

// quiet keeps River's own chatter out of the log below warnings.
func quiet(l *slog.Logger) *slog.Logger {
	return slog.New(levelFilter{l.Handler(), slog.LevelWarn})
}

type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

// Start runs the workers and, without waiting for the periodic resync,
// queues every session that was in flight when cohort last stopped.
func (q *Queue) Start(ctx context.Context) error {
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("start job queue: %w", err)
	}
	return q.resync(ctx)
}

// Stop lets running jobs finish for a few seconds, then cancels them and
// waits for them until ctx ends: a cancelled shard update interrupts its
// engine, which finishes what it sent to the cloud, writes its state and
// releases the stack's lock (provisioner/gce).
func (q *Queue) Stop(ctx context.Context) error {
	soft, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := q.client.Stop(soft); err == nil {
		return nil
	}
	return q.client.StopAndCancel(ctx)
}

// Enqueue asks for a reconcile pass over the session soon.
func (q *Queue) Enqueue(ctx context.Context, sessionID string) error {
	if _, err := q.client.Insert(ctx, ReconcileArgs{SessionID: sessionID}, nil); err != nil {
		return fmt.Errorf("enqueue session %s: %w", sessionID, err)
	}
	return nil
}

// EnqueueShard asks for an update of a shard after a while.
func (q *Queue) EnqueueShard(ctx context.Context, class, shard string, after time.Duration) error {
	args := ShardArgs{Class: class, Shard: shard}
	if after > 0 {
		args.NotBefore = time.Now().Add(after)
	}
	if _, err := q.client.Insert(ctx, args, nil); err != nil {
		return fmt.Errorf("enqueue an update of shard %s: %w", shard, err)
	}
	return nil
}

// EnqueuePool asks for a look at a class's warm seats at a time (zero:
// soon).
func (q *Queue) EnqueuePool(ctx context.Context, classID string, notBefore time.Time) error {
	if _, err := q.client.Insert(ctx, PoolArgs{Class: classID, NotBefore: notBefore}, nil); err != nil {
		return fmt.Errorf("enqueue a look at the warm seats of class %s: %w", classID, err)
	}
	return nil
}

// resync queues the classes whose warm window is open or opens before
// the next resync, the shards owed an update that nobody runs, then every
// session not at rest (first the shards: Pending may stop a session,
// which waits for its shard's update).
func (q *Queue) resync(ctx context.Context) error {
	var errs []error
	if q.pools != nil {
		classes, err := q.pools.WarmClasses(ctx, q.every)
		if err != nil {
			errs = append(errs, fmt.Errorf("list classes with warm seats: %w", err))
		}
		for id, from := range classes {
			errs = append(errs, q.EnqueuePool(ctx, id, from))
		}
	}
	if q.shards != nil {
		owed, err := q.shards.OwedShards(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list shards owed an update: %w", err))
		}
		for _, sh := range owed {
			errs = append(errs, q.EnqueueShard(ctx, sh.ClassID, sh.Name, 0))
		}
	}
	ids, err := q.rec.Pending(ctx)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list pending sessions: %w", err))...)
	}
	for _, id := range ids {
		errs = append(errs, q.Enqueue(ctx, id))
	}
	return errors.Join(errs...)
}

type reconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	q *Queue
}

func (w *reconcileWorker) Work(ctx context.Context, job *river.Job[ReconcileArgs]) error {
	id := job.Args.SessionID
	res, err := w.q.rec.Reconcile(ctx, id)
	if err == nil && !res.Requeue && res.RequeueAfter == 0 {
		return nil // at rest
	}
	// Another pass is due. Every change and every resync adds a job, so
	// while a notebook starts, jobs would pile up, each passing again and
	// again; instead one chain carries each session: a job that sees a
	// newer one that will still run ends here, and the newest goes on.
	if newer, lerr := w.q.newer(ctx, job.Kind, "session_id", id, job.ID); lerr != nil {
		w.q.log.Warn("look for a newer reconcile job", "session_id", id, "error", lerr)
	} else if newer {
		return nil
	}
	switch {
	case err != nil:
		w.q.log.Warn("reconcile failed; will retry", "session_id", id, "attempt", job.Attempt, "error", err)
		return err
	case res.Requeue:
		return river.JobSnooze(time.Millisecond)
	}
	return river.JobSnooze(res.RequeueAfter)
}

type shardWorker struct {
	river.WorkerDefaults[ShardArgs]
	q *Queue
}

func (w *shardWorker) Work(ctx context.Context, job *river.Job[ShardArgs]) error {
	if wait := time.Until(job.Args.NotBefore); wait > 0 {
		return river.JobSnooze(wait)
	}
	again, err := w.q.shards.UpdateShard(ctx, job.Args.Class, job.Args.Shard)
	if err == nil && again == 0 {
		return nil
	}
	// One chain per shard, as per session: a newer job goes on instead.
	if newer, lerr := w.q.newer(ctx, job.Kind, "shard", job.Args.Shard, job.ID); lerr != nil {
		w.q.log.Warn("look for a newer shard job", "shard", job.Args.Shard, "error", lerr)
	} else if newer {
		return nil
	}
	if err != nil {
		w.q.log.Warn("shard update failed; will retry", "shard", job.Args.Shard, "attempt", job.Attempt, "error", err)
		return err
	}
	return river.JobSnooze(again)
}

// live are the states of a job that will still run, or runs.
var live = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled}

// newer says whether a job of a kind whose argument key is value, newer
// than job, will still run. The newest job never ends for another, so one
// chain always goes on. A running job may be that of a replica that died;
// the resync then adds a newer one.
func (q *Queue) newer(ctx context.Context, kind, key, value string, job int64) (bool, error) {
	res, err := q.client.JobList(ctx, river.NewJobListParams().Kinds(kind).States(live...).
		Where("args ->> @key = @value AND id > @job", river.NamedArgs{"key": key, "value": value, "job": job}).
		First(1))
	if err != nil {
		return false, err
	}
	return len(res.Jobs) > 0, nil
}

// Depth counts the reconcile jobs that will still run, running or waiting.
func (q *Queue) Depth(ctx context.Context) (int, error) {
	res, err := q.client.JobList(ctx, river.NewJobListParams().Kinds(ReconcileArgs{}.Kind()).
		States(live...).First(10000))
	if err != nil {
		return 0, err
	}
	return len(res.Jobs), nil
}

type resyncWorker struct {
	river.WorkerDefaults[ResyncArgs]
	q *Queue
}

func (w *resyncWorker) Work(ctx context.Context, _ *river.Job[ResyncArgs]) error {
	return w.q.resync(ctx)
}

type poolWorker struct {
	river.WorkerDefaults[PoolArgs]
	q *Queue
}

func (w *poolWorker) Work(ctx context.Context, job *river.Job[PoolArgs]) error {
	if wait := time.Until(job.Args.NotBefore); wait > 0 {
		return river.JobSnooze(wait)
	}
	return w.q.pools.TendPool(ctx, job.Args.Class)
}

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	q *Queue
}

func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	st, err := w.q.sweeper.Sweep(ctx)
	if err != nil {
		return err
	}
	if st.Warned+st.Expired+st.Revived > 0 {
		w.q.log.Info("deadline sweep", "checked", st.Checked, "warned", st.Warned, "expired", st.Expired, "revived", st.Revived)
	}
	return nil
}
