//go:build linux && !client

package main

import (
	"context"
	"database/sql"
	"path/filepath"

	"github.com/cohortdev/cohort/jobs"
	"github.com/cohortdev/cohort/store/postgres"
	"github.com/cohortdev/cohort/store/sqlite"
	"github.com/cohortdev/cohort/store/sqlstore"
)

// database is where cohort keeps its state, and River's pool beside it.
type database struct {
	store *sqlstore.Store
	river *sql.DB
	kind  string // jobs.SQLite or jobs.Postgres
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

func (d *database) Close() error {
	d.river.Close()
	return d.store.Close()
}
