// Package sqlite is the embedded store: cohort's state in one SQLite file,
// through the pure-Go modernc.org/sqlite driver, in WAL mode (the queries
// are store/sqlstore's).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/store/sqlstore"
	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is cohort.Store on SQLite.
type Store = sqlstore.Store

// dialect is SQLite's: one writer at a time (transactions take the write
// lock at BEGIN), so every transaction runs as if alone.
var dialect = &sqlstore.Dialect{
	Unavailable: unavailable,
	Unique: func(err error) bool {
		return strings.Contains(err.Error(), "UNIQUE constraint failed")
	},
}

// DSN returns the connection string used for path: WAL, a busy timeout so
// that concurrent writers wait instead of failing, foreign keys, and
// transactions that take the write lock at BEGIN (no deadlocking upgrades).
func DSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	return "file:" + filepath.ToSlash(path) + "?" + q.Encode()
}

// Open opens (creating if needed) the database at path and migrates it.
// The file is readable by its owner only, whoever made it: it holds every
// session's notebook token. SQLite gives its -wal and -shm files the
// database file's mode.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	if err := sqlstore.Migrate(ctx, db, dialect, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	// In WAL mode a reader never waits for a writer, and a pool of its own
	// keeps reads from queuing behind writers that wait for the lock.
	read, err := sql.Open("sqlite", readDSN(path))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	return sqlstore.New(db, read, dialect), nil
}

// readDSN is DSN for connections that only read.
func readDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "query_only(1)")
	return "file:" + filepath.ToSlash(path) + "?" + q.Encode()
}

// ownerOnly creates the database file with mode 0600, or sets that mode
// on it and on the files SQLite keeps beside it.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("make %s private: %w", p, err)
		}
	}
	return nil
}

// unavailable tells a client what it can do about a database that is
// busy (another writer held the lock past the busy timeout) or full,
// rather than "internal error"; the cause stays for the server's log.
func unavailable(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return cohort.Unavailable(err, "the database is busy; try again in a few seconds")
	case sqlite3.SQLITE_FULL:
		return cohort.Unavailable(err, "the database's disk is full; an admin must free space on the server")
	}
	return err
}
