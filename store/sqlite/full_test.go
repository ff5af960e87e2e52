package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
)

// TestFullDatabaseIsUnavailable: a database that cannot grow (a full
// disk; here SQLite's page limit, which fails the same way, SQLITE_FULL)
// reaches clients as "unavailable" with what to do, not "Internal error."
func TestFullDatabaseIsUnavailable(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", DSN(filepath.Join(t.TempDir(), "full.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // the page limit is the connection's
	for _, q := range []string{`CREATE TABLE t (v BLOB)`, `PRAGMA max_page_count = 8`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		if _, err = db.Exec(`INSERT INTO t VALUES (?)`, strings.Repeat("x", 4096)); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("the database never filled up; the test proves nothing")
	}
	got := unavailable(err)
	if cohort.ErrorCode(got) != cohort.EUNAVAILABLE || !strings.Contains(cohort.ErrorMessage(got), "disk is full") {
		t.Fatalf("a full database: %v (code %s), from %v", got, cohort.ErrorCode(got), err)
	}
}
