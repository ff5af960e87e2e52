package postgres_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/store/postgres"
	"github.com/cohortdev/cohort/store/postgres/pgtest"
	"github.com/cohortdev/cohort/store/sqlite"
	"github.com/cohortdev/cohort/store/sqlstore"
)

// BenchmarkStores compares the two stores in one run on the questions
// that matter most: a session read (every request that the cache misses),
// and a seat admitted then stopped (two serializable transactions on
// Postgres, two write locks on SQLite), one at a time and from 8
// goroutines at once.
func BenchmarkStores(b *testing.B) {
	ctx := context.Background()
	open := map[string]func(b *testing.B) *sqlstore.Store{
		"sqlite": func(b *testing.B) *sqlstore.Store {
			s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "cohort.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"postgres": func(b *testing.B) *sqlstore.Store {
			s, err := postgres.Open(ctx, pgtest.URL(b))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		s := open[name](b)
		owner, err := s.EnsureUser(ctx, "teacher@example.org", cohort.RoleInstructor)
		if err != nil {
			b.Fatal(err)
		}
		c := cohort.DefaultClass()
		c.Name, c.OwnerID = "bench", owner.ID
		if err := s.CreateClass(ctx, &c); err != nil {
			b.Fatal(err)
		}
		var users atomic.Int64
		admit := func(b *testing.B) {
			u, err := s.EnsureUser(ctx, fmt.Sprintf("p%d@example.org", users.Add(1)), cohort.RoleParticipant)
			if err != nil {
				b.Fatal(err)
			}
			sess, _, err := s.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: c.ID, UserID: u.ID,
				State: cohort.StateRequested, Driver: "local", NotebookToken: "t"}, 1_000_000)
			if err != nil {
				b.Fatal(err)
			}
			sess.State = cohort.StateStopped
			if err := s.UpdateSession(ctx, sess, nil); err != nil {
				b.Fatal(err)
			}
		}
		u, _ := s.EnsureUser(ctx, "reader@example.org", cohort.RoleParticipant)
		read, _, err := s.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: c.ID, UserID: u.ID,
			State: cohort.StateReady, Driver: "local", NotebookToken: "t"}, 1_000_000)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/get-session", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.GetSession(ctx, read.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/admit-and-stop", func(b *testing.B) {
			for b.Loop() {
				admit(b)
			}
		})
		b.Run(name+"/admit-and-stop-8-at-once", func(b *testing.B) {
			b.SetParallelism(4) // 8 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					admit(b)
				}
			})
		})
		s.Close()
	}
}
