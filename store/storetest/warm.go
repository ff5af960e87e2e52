package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
)

// testWarmSeats: a class holds many warm seats (the pool user's), which
// count as seats; a claim gives one to a participant once, with its new
// token and its lifetime from the claim; the pool user is nobody.
func testWarmSeats(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	teacher := must(s.EnsureUser(ctx, "grace@example.com", cohort.RoleInstructor))
	c := newClass(t, s, teacher)
	var warm []*cohort.Session
	for range 3 {
		w, created := must2(s.StartSession(ctx, newSession(c.ID, cohort.PoolUserID), 4))
		if !created {
			t.Fatalf("a second warm seat of a class was not made: got %s", w.ID)
		}
		warm = append(warm, w)
	}
	ada := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	must2(s.StartSession(ctx, newSession(c.ID, ada.ID), 4))
	_, _, err := s.StartSession(ctx, newSession(c.ID, cohort.PoolUserID), 4)
	wantCode(t, err, cohort.ECONFLICT) // warm seats count as seats

	ready := clock.Now()
	warm[0].State, warm[0].ReadyAt = cohort.StateReady, &ready
	if err := s.UpdateSession(ctx, warm[0], nil); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Minute)
	bob := must(s.EnsureUser(ctx, "bob@example.com", cohort.RoleParticipant))
	got := must(s.ClaimSession(ctx, warm[0].ID, bob.ID, "fresh-token", clock.Now()))
	if got.UserID != bob.ID || got.NotebookToken != "fresh-token" || got.ClaimedAt == nil || !got.ClaimedAt.Equal(clock.Now()) ||
		!got.ReadyAt.Equal(clock.Now()) || got.Version != warm[0].Version+1 {
		t.Fatalf("claimed seat = %+v", got)
	}
	if read := must(s.GetSession(ctx, got.ID)); read.ClaimedAt == nil || read.Warm() {
		t.Fatalf("claimed seat read back: claimed %v, warm %v", read.ClaimedAt, read.Warm())
	}
	_, err = s.ClaimSession(ctx, warm[0].ID, ada.ID, "other", clock.Now())
	wantCode(t, err, cohort.ECONFLICT) // claimed already
	// A seat not ready yet is claimed with its lifetime still to begin.
	notReady := must(s.ClaimSession(ctx, warm[1].ID, must(s.EnsureUser(ctx, "cy@example.com", cohort.RoleParticipant)).ID, warm[1].NotebookToken, clock.Now()))
	if notReady.ReadyAt != nil || notReady.State != cohort.StateRequested {
		t.Fatalf("claimed seat that was not ready: %+v", notReady)
	}
	warm[2].RequestStop(clock.Now(), cohort.CauseUnclaimed, "drained")
	if err := s.UpdateSession(ctx, warm[2], nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.ClaimSession(ctx, warm[2].ID, must(s.EnsureUser(ctx, "dee@example.com", cohort.RoleParticipant)).ID, "t", clock.Now())
	wantCode(t, err, cohort.ECONFLICT) // being stopped

	_, err = s.EnsureUser(ctx, cohort.PoolEmail, cohort.RoleParticipant)
	wantCode(t, err, cohort.EINVALID)
	for _, u := range must(s.ListUsers(ctx)) {
		if u.ID == cohort.PoolUserID {
			t.Fatal("ListUsers lists the pool user")
		}
	}
	ClaimRace(t, []cohort.Store{s}, c)
}

// ClaimRace: participants claiming a class's warm seats all at once,
// through the stores in turn (replicas), with no lock of the caller's,
// get each seat once.
func ClaimRace(t *testing.T, stores []cohort.Store, c *cohort.Class) {
	ctx := context.Background()
	s := stores[0]
	var seats []string
	for range 5 {
		w, _ := must2(s.StartSession(ctx, newSession(c.ID, cohort.PoolUserID), 100))
		seats = append(seats, w.ID)
	}
	var mu sync.Mutex
	owner := map[string]string{}
	var wg sync.WaitGroup
	for i := range 12 {
		s := stores[i%len(stores)]
		wg.Go(func() {
			u, err := s.EnsureUser(ctx, "racer"+string(rune('a'+i))+"@example.com", cohort.RoleParticipant)
			if err != nil {
				t.Error(err)
				return
			}
			for _, id := range seats {
				_, err := s.ClaimSession(ctx, id, u.ID, cohort.NewSecret(""), c.CreatedAt)
				if cohort.ErrorCode(err) == cohort.ECONFLICT {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if owner[id] != "" {
					t.Errorf("seat %s claimed by %s and %s", id, owner[id], u.Email)
				}
				owner[id] = u.Email
				return
			}
		})
	}
	wg.Wait()
	if len(owner) != len(seats) {
		t.Fatalf("%d of %d warm seats claimed by 12 participants", len(owner), len(seats))
	}
}
