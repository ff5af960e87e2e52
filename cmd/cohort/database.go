//go:build linux && !client

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cohortdev/cohort/jobs"
	"github.com/cohortdev/cohort/store/postgres"
	"github.com/cohortdev/cohort/store/sqlite"
	"github.com/cohortdev/cohort/store/sqlstore"
)

// database is where cohort keeps its state, and River's pool beside it.
type database struct {
	store *sqlstore.Store
	river *sql.DB
	kind  string     // jobs.SQLite or jobs.Postgres
	alone *sql.Conn  // holds holdAlone's lock
	lost  chan error // says the lock went with its connection
}

// openDatabase opens --database: empty for SQLite in the data directory
// (one replica), or a postgres:// URL (any number of replicas).
func openDatabase(ctx context.Context, url, dataDir string) (*database, error) {
	if url == "" {
		path := filepath.Join(dataDir, "cohort.db")
		store, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, err
		}
		// River gets a pool of its own with one connection (see jobs).
		river, err := sql.Open("sqlite", sqlite.DSN(path))
		if err != nil {
			store.Close()
			return nil, err
		}
		river.SetMaxOpenConns(1)
		return &database{store: store, river: river, kind: jobs.SQLite}, nil
	}
	store, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	river, err := postgres.OpenDB(url, 10)
	if err != nil {
		store.Close()
		return nil, err
	}
	return &database{store: store, river: river, kind: jobs.Postgres}, nil
}

// gceLock is the advisory lock of the replica that runs the GCE driver.
const gceLock = 0x636f686f7274 + 1

// holdAlone makes this the only replica on the database that runs the GCE
// driver, for as long as it runs: the driver keeps its shards in this
// process and its data directory, so a second replica would manage the
// same VMs apart from it. The lock is Postgres's, held by a connection of
// its own, and goes with the process however it ends. With SQLite cohort
// is one replica by construction.
func (d *database) holdAlone(ctx context.Context) error {
	if d.kind != jobs.Postgres {
		return nil
	}
	conn, err := d.river.Conn(ctx)
	if err != nil {
		return err
	}
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", gceLock).Scan(&got); err != nil {
		conn.Close()
		return err
	}
	if !got {
		conn.Close()
		return errors.New("another cohort replica on this database runs the GCE driver; for now the GCE driver runs in one replica only (docs/operations.md)")
	}
	d.alone, d.lost = conn, make(chan error, 1)
	go d.watchAlone(ctx)
	return nil
}

// watchAlone checks that the lock's connection lives: if it went (the
// database restarted, the network cut it), so did the lock, and another
// replica may take it; cohort must stop running the driver then.
func (d *database) watchAlone(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := d.alone.ExecContext(ctx, "SELECT 1"); err != nil && ctx.Err() == nil {
			d.lost <- fmt.Errorf("lost the database connection that holds the GCE driver's lock, so another replica may take it: stopping (%w)", err)
			return
		}
	}
}

func (d *database) Close() error {
	if d.alone != nil {
		d.alone.Close()
	}
	d.river.Close()
	return d.store.Close()
}
