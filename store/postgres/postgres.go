// Package postgres is the store for an installation of several replicas:
// cohort's state in Postgres, through pgx, with the queries of
// store/sqlstore. Every transaction is serializable and runs again when it
// loses a race, which gives the guarantees SQLite's single writer gives.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// IsURL says whether a --database value names a Postgres database.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at url (postgres://...) and migrates it.
func Open(ctx context.Context, url string) (*sqlstore.Store, error) {
	db, err := OpenDB(url, 16)
	if err != nil {
		return nil, err
	}
	if err := sqlstore.Migrate(ctx, db, dialect, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate the Postgres database: %w", unavailable(err))
	}
	locks, err := OpenDB(url, 8)
	if err != nil {
		db.Close()
		return nil, err
	}
	store := sqlstore.New(db, db, dialect)
	store.UseLocks(locks)
	return store, nil
}

// OpenDB opens a pool of at most conns connections to url; River gets a
// pool of its own.
func OpenDB(url string, conns int) (*sql.DB, error) {
	// The value may hold a password: errors never repeat it.
	if !IsURL(url) {
		return nil, cohort.Invalid("database", "a Postgres database is named by a URL that starts with postgres://")
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, cohort.Invalid("database", "the Postgres URL does not parse; its form is %s", urlForm)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}

const urlForm = "postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=verify-full (or ?host=/socket/dir for a unix socket)"

// migrationLock is the advisory lock replicas take to migrate one at a time.
const migrationLock = 0x636f686f7274 // "cohort"

var dialect = &sqlstore.Dialect{
	Numbered: true,
	Tx:       &sql.TxOptions{Isolation: sql.LevelSerializable},
	Retry: func(err error) bool {
		code := errorCode(err)
		return code == "40001" || code == "40P01" // serialization failure, deadlock
	},
	Unavailable:   unavailable,
	Unique:        func(err error) bool { return errorCode(err) == "23505" },
	MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLock),
}

func errorCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// unavailable tells a client what it can do about a database that is
// unreachable, overloaded or full, rather than "internal error"; the cause
// stays for the server's log. Codes: postgresql.org/docs/current/errcodes-appendix.html
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return cohort.Unavailable(err, "cannot reach the database; try again in a few seconds")
	}
	code := errorCode(err)
	switch {
	case code == "53100": // disk_full
		return cohort.Unavailable(err, "the database's disk is full; an admin must free space on the database server")
	case code == "40001", code == "40P01", code == "55P03", // lost races too often, lock_not_available
		strings.HasPrefix(code, "08"),                     // connection exception
		code == "53300", code == "57P03", code == "57P01": // too many connections, starting up, shutting down
		return cohort.Unavailable(err, "the database is busy; try again in a few seconds")
	}
	return err
}
