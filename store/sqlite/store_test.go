package sqlite_test

import (
	"context"
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
