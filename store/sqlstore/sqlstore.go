// Package sqlstore is cohort.Store in SQL that SQLite and Postgres both
// speak: the queries, transactions and scanning. A Dialect says what
// differs (placeholders, isolation, which errors mean busy or a conflict);
// store/sqlite and store/postgres open the database, migrate it and pass
// their dialect.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cohortdev/cohort"
)

var _ cohort.Store = (*Store)(nil)

// Dialect is what a database does its own way.
type Dialect struct {
	// Numbered placeholders ($1, $2, ...; Postgres) instead of ?.
	Numbered bool
	// Tx are the options of every transaction. Each must behave as if it
	// ran alone: SQLite serialises writers; Postgres needs serializable.
	Tx *sql.TxOptions
	// Retry says a transaction failed only because another one ran at the
	// same time (a serialization failure) and may run again.
	Retry func(error) bool
	// Unavailable turns an error of the database being busy or full into
	// cohort.Unavailable; it returns other errors as they are.
	Unavailable func(error) error
	// Unique says err is a violated unique constraint.
	Unique func(error) bool
	// MigrationLock, if set, is a statement that makes the migrations of
	// replicas starting together wait for each other.
	MigrationLock string
}

// Store is cohort.Store on a SQL database.
type Store struct {
	// db writes, read reads: with SQLite a pool of its own keeps reads from
	// queuing behind writers that wait for the lock; with Postgres both
	// are the one pool.
	db, read querier
	pools    []*sql.DB
	locks    *sql.DB // holds Hold's locks, one connection each; nil: one replica
	d        *Dialect
	// Now returns the current time; tests replace it.
	Now func() time.Time
}

// New is a Store writing through db and reading through read.
func New(db, read *sql.DB, dialect *Dialect) *Store {
	d := *dialect // stores share dialects: this one is New's own
	if d.Retry == nil {
		d.Retry = func(error) bool { return false }
	}
	pools := []*sql.DB{db}
	if read != db {
		pools = append(pools, read)
	}
	return &Store{db: querier{db, &d}, read: querier{read, &d}, pools: pools, d: &d, Now: time.Now}
}

// UseLocks makes Hold take locks on the database, through pool, which
// the store's queries do not use: a holder's queries never wait for a
// connection held by one that waits for its lock. The store closes pool.
func (s *Store) UseLocks(pool *sql.DB) {
	s.locks = pool
	s.pools = append(s.pools, pool)
}

// Hold takes the lock named name on the database (Postgres's advisory
// locks, on a connection of its own) until release is called; without a
// lock pool (SQLite: one replica) there is nothing to take.
func (s *Store) Hold(ctx context.Context, name string) (func(), error) {
	if s.locks == nil {
		return func() {}, nil
	}
	conn, err := s.locks.Conn(ctx)
	if err != nil {
		return nil, s.d.Unavailable(err)
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	key := int64(h.Sum64())
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		conn.Close()
		return nil, s.d.Unavailable(err)
	}
	return func() {
		// Unlocked or not (the connection may be gone, and the lock with
		// it), the connection goes back to the pool only unlocked.
		if _, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", key); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	var errs []error
	for _, p := range s.pools {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pools[0].PingContext(ctx) }

// queryer is what querier runs statements on: a pool or a transaction.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// querier runs statements written with ? placeholders in the dialect's.
type querier struct {
	q queryer
	d *Dialect
}

func (q querier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return q.q.ExecContext(ctx, q.d.rebind(query), args...)
}

func (q querier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return q.q.QueryContext(ctx, q.d.rebind(query), args...)
}

func (q querier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.q.QueryRowContext(ctx, q.d.rebind(query), args...)
}

// rebound caches queries rewritten with numbered placeholders: cohort's
// queries are a fixed set of strings.
var rebound sync.Map

// rebind numbers the ? placeholders of query for a dialect that wants
// them so; cohort's queries hold no ? inside quoted text.
func (d *Dialect) rebind(query string) string {
	if !d.Numbered || !strings.Contains(query, "?") {
		return query
	}
	if q, ok := rebound.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	rebound.Store(query, b.String())
	return b.String()
}

// Migrate applies the files migrations/*.sql of fsys, in the order of
// their names, that db has not had yet, recording each in
// cohort_migrations: all in one transaction, after the dialect's Lock, so
// that replicas starting together migrate once.
func Migrate(ctx context.Context, db *sql.DB, d *Dialect, fsys fs.FS) error {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	// Read committed, where the dialect has levels: each statement sees
	// what a replica that held the lock before committed.
	md := *d
	md.Tx = nil
	s := New(db, db, &md)
	return s.inTx(ctx, func(tx querier) error {
		if d.MigrationLock != "" {
			if _, err := tx.ExecContext(ctx, d.MigrationLock); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS cohort_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return err
		}
		for _, name := range names {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM cohort_migrations WHERE name = ?`, name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			body, err := fs.ReadFile(fsys, name)
			if err != nil {
				return err
			}
			// A migration is in the dialect's own words: it is not rebound.
			if _, err := tx.q.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO cohort_migrations (name, applied_at) VALUES (?, ?)`, name, micros(time.Now())); err != nil {
				return err
			}
		}
		return nil
	})
}

// maxTxAttempts bounds how often a transaction that lost a race runs
// again: a class's seats are counted by every admission into it, so 30
// participants clicking Start at once race each other, one winning each
// round.
const maxTxAttempts = 60

// inTx runs fn in a transaction, again if it lost a race with another
// (fn must only touch the database, or be safe to repeat), after a random
// pause that grows with the attempts so that the racers spread out.
func (s *Store) inTx(ctx context.Context, fn func(querier) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, fn)
		if err == nil || !s.d.Retry(err) || attempt == maxTxAttempts {
			return s.d.Unavailable(err)
		}
		pause := time.Duration(rand.Int64N(int64(min(attempt, 25)) * int64(2*time.Millisecond)))
		select {
		case <-ctx.Done():
			return s.d.Unavailable(err)
		case <-time.After(pause):
		}
	}
}

func (s *Store) tryTx(ctx context.Context, fn func(querier) error) error {
	tx, err := s.pools[0].BeginTx(ctx, s.d.Tx)
	if err != nil {
		return err
	}
	if err := fn(querier{tx, s.d}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// exec runs one statement that writes.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := s.db.ExecContext(ctx, query, args...)
	return res, s.d.Unavailable(err)
}

func (s *Store) isUniqueViolation(err error) bool { return err != nil && s.d.Unique(err) }

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(*t), Valid: true}
}

func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return cohort.Errorf(cohort.ENOTFOUND, format, args...)
	}
	return err
}
