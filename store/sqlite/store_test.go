package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/store/sqlite"
	"github.com/cohortdev/cohort/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) cohort.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "cohort.db"))
		if err != nil {
			t.Fatal(err)
		}
		s.Now = now
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cohort.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.EnsureUser(ctx, "ada@example.com", cohort.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path) // migrations run again and must be no-ops
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.GetUser(ctx, u.ID); err != nil || got.Email != u.Email {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

// TestDatabaseIsPrivate: the database holds every notebook token, so its
// files are the owner's alone, also when the file existed before with a
// looser mode.
func TestDatabaseIsPrivate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, existed := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "cohort.db")
		if existed {
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.EnsureUser(ctx, "ada@example.com", cohort.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if mode := fi.Mode().Perm(); mode != 0o600 {
				t.Errorf("%s has mode %o (file existed before: %v), want 600", filepath.Base(p), mode, existed)
			}
		}
		s.Close()
	}
}
