package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/store/sqlite"
)

// TestBusyDatabase: another process holds the write lock longer than the
// busy timeout. Reads answer at once all the while; a write waits the
// timeout and then says the database is busy (EUNAVAILABLE, which the API
// answers with 503 and Retry-After), not an internal error.
func TestBusyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cohort.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.EnsureUser(ctx, "ada@example.org", cohort.RoleInstructor)
	if err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", sqlite.DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE users SET role = role`); err != nil {
		t.Fatal(err)
	}
	// Writers queue for the lock, holding connections of the write pool.
	writes := make(chan error, 6)
	for range cap(writes) {
		go func() { writes <- s.SetUserRole(ctx, u.ID, cohort.RoleAdmin) }()
	}
	time.Sleep(500 * time.Millisecond)
	for range 20 {
		t0 := time.Now()
		if _, err := s.GetUser(ctx, u.ID); err != nil {
			t.Fatalf("a read while another process writes: %v", err)
		}
		if d := time.Since(t0); d > 2*time.Second {
			t.Fatalf("a read waited %s behind writers", d)
		}
	}
	err = <-writes
	if cohort.ErrorCode(err) != cohort.EUNAVAILABLE || cohort.ErrorMessage(err) != "the database is busy; try again in a few seconds" {
		t.Fatalf("a write past the busy timeout: %v (code %s)", err, cohort.ErrorCode(err))
	}
}
