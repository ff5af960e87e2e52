package timeouts_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/store/sqlite"
	"github.com/cohortdev/cohort/timeouts"
)

// BenchmarkSweep measures one sweep over a store holding 10,000 ready
// sessions, of which `due` are within the warning window (each of those
// costs a kernel check and a write; the others must cost nothing).
func BenchmarkSweep(b *testing.B) {
	for _, due := range []int{0, 100, 1000} {
		b.Run(fmt.Sprintf("sessions=10000/due=%d", due), func(b *testing.B) {
			ctx := context.Background()
			store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "cohort.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			owner, _ := store.EnsureUser(ctx, "teacher@example.com", cohort.RoleInstructor)
			class := cohort.DefaultClass()
			class.Name, class.OwnerID, class.Policy.Seats = "big", owner.ID, cohort.MaxSeats
			store.CreateClass(ctx, &class)
			now := t0.Add(2 * time.Hour)
			k := &kernels{}
			sweeper := timeouts.New(timeouts.Options{Store: store, Driver: k, Enqueuer: &queue{}, Now: func() time.Time { return now }})
			for i := range 10000 {
				if i%cohort.MaxSeats == 0 && i > 0 { // a class holds at most MaxSeats
					class.ID = ""
					store.CreateClass(ctx, &class)
				}
				u, _ := store.EnsureUser(ctx, fmt.Sprintf("p%d@example.com", i), cohort.RoleParticipant)
				s, _, err := store.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: class.ID, UserID: u.ID,
					State: cohort.StateRequested, Driver: "fake", NotebookToken: "t"}, cohort.MaxSeats)
				if err != nil {
					b.Fatal(err)
				}
				s.State, s.ReadyAt = cohort.StateReady, ptr(t0)
				store.UpdateSession(ctx, s, nil)
				// Used 45 minutes ago (idle deadline in 45m), or 85 minutes
				// ago for the due ones (in the warning window).
				last := now.Add(-45 * time.Minute)
				if i < due {
					last = now.Add(-85 * time.Minute)
				}
				store.RecordActivity(ctx, s.ID, last)
			}
			// A first sweep computes every deadline (the cache is empty).
			if _, err := sweeper.Sweep(ctx); err != nil {
				b.Fatal(err)
			}
			// Kernels report use 80 minutes ago: due sessions stay due.
			k.set(now.Add(-80*time.Minute), false)
			b.ResetTimer()
			for range b.N {
				st, err := sweeper.Sweep(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if st.Expired != 0 {
					b.Fatalf("sweep expired %d sessions", st.Expired)
				}
			}
		})
	}
}
