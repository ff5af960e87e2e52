package storetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
)

// The session half of the suite: starting, seats, versions, events,
// timeouts.

func testStartSession(t *testing.T, s cohort.Store, _ *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	c := newClass(t, s, u)
	admitted := newSession(c.ID, u.ID)
	admitted.BillVM, admitted.BillDisk, admitted.BillCap = 0.54, 0.0137, cohort.Duration(16*time.Hour+45*time.Minute)
	first, created := must2(s.StartSession(ctx, admitted, 10))
	if !created || first.Version != 1 || first.State != cohort.StateRequested {
		t.Fatalf("first StartSession = %+v, created %v", first, created)
	}
	// What it bills is fixed at admission and read back as written.
	if got := must(s.GetSession(ctx, first.ID)); got.BillVM != 0.54 || got.BillDisk != 0.0137 || got.BillCap != admitted.BillCap {
		t.Fatalf("billing terms read back %v %v %v", got.BillVM, got.BillDisk, got.BillCap)
	}
	again, created := must2(s.StartSession(ctx, newSession(c.ID, u.ID), 10))
	if created || again.ID != first.ID || again.NotebookToken != first.NotebookToken {
		t.Fatalf("second StartSession = %s (created %v), want the active session %s", again.ID, created, first.ID)
	}
	first.State = cohort.StateFailed
	if err := s.UpdateSession(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	next, created := must2(s.StartSession(ctx, newSession(c.ID, u.ID), 10))
	if !created || next.ID == first.ID {
		t.Fatalf("StartSession after failure = %s (created %v), want a new session", next.ID, created)
	}
}

func testStartSessionSeats(t *testing.T, s cohort.Store, _ *Clock) {
	ctx := context.Background()
	owner := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleInstructor))
	c := newClass(t, s, owner)
	a := must(s.EnsureUser(ctx, "a@example.com", cohort.RoleParticipant))
	b := must(s.EnsureUser(ctx, "b@example.com", cohort.RoleParticipant))
	sa, _ := must2(s.StartSession(ctx, newSession(c.ID, a.ID), 1))
	_, _, err := s.StartSession(ctx, newSession(c.ID, b.ID), 1)
	wantCode(t, err, cohort.ECONFLICT)
	if list := must(s.ListSessions(ctx, cohort.SessionFilter{ClassID: c.ID})); len(list) != 1 {
		t.Fatalf("a refused start left %d sessions, want 1", len(list))
	}
	sa.State = cohort.StateStopped
	if err := s.UpdateSession(ctx, sa, nil); err != nil {
		t.Fatal(err)
	}
	if _, created := must2(s.StartSession(ctx, newSession(c.ID, b.ID), 1)); !created {
		t.Fatal("a freed seat was not given to the next participant")
	}
}

func testStartSessionConcurrent(t *testing.T, s cohort.Store, _ *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	c := newClass(t, s, u)
	const n = 8
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			sess, _, err := s.StartSession(ctx, newSession(c.ID, u.ID), 10)
			if err != nil {
				t.Error(err)
				return
			}
			ids <- sess.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("%d concurrent starts made %d sessions, want 1", n, len(seen))
	}
}

func testUpdateSession(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	c := newClass(t, s, u)
	sess, _ := must2(s.StartSession(ctx, newSession(c.ID, u.ID), 10))
	stale := *sess
	clock.Advance(time.Second)
	now := clock.Now()
	sess.State, sess.Address, sess.StateChangedAt, sess.ReadyAt = cohort.StateReady, "http://127.0.0.1:9", now, &now
	if err := s.UpdateSession(ctx, sess, &cohort.Event{Time: now, State: cohort.StateReady, Message: "notebook ready"}); err != nil {
		t.Fatal(err)
	}
	if sess.Version != 2 {
		t.Fatalf("Version after update = %d, want 2", sess.Version)
	}
	got := must(s.GetSession(ctx, sess.ID))
	if got.State != cohort.StateReady || got.Address != "http://127.0.0.1:9" || got.ReadyAt == nil || !got.ReadyAt.Equal(now) || got.Version != 2 {
		t.Fatalf("GetSession = %+v", got)
	}
	stale.State = cohort.StateFailed
	wantCode(t, s.UpdateSession(ctx, &stale, &cohort.Event{Time: now, Message: "lost"}), cohort.ECONFLICT)
	events := must(s.ListEvents(ctx, sess.ID, 0))
	if len(events) != 2 || events[1].Message != "notebook ready" {
		t.Fatalf("events = %+v, want requested and ready only (a refused update appends nothing)", events)
	}
}

func testListSessions(t *testing.T, s cohort.Store, _ *Clock) {
	ctx := context.Background()
	a := must(s.EnsureUser(ctx, "a@example.com", cohort.RoleParticipant))
	b := must(s.EnsureUser(ctx, "b@example.com", cohort.RoleParticipant))
	c1, c2 := newClass(t, s, a), newClass(t, s, a)
	sa, _ := must2(s.StartSession(ctx, newSession(c1.ID, a.ID), 10))
	must2(s.StartSession(ctx, newSession(c1.ID, b.ID), 10))
	must2(s.StartSession(ctx, newSession(c2.ID, a.ID), 10))
	sa.State = cohort.StateReady
	if err := s.UpdateSession(ctx, sa, nil); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		f    cohort.SessionFilter
		want int
	}{
		{"all", cohort.SessionFilter{}, 3},
		{"class", cohort.SessionFilter{ClassID: c1.ID}, 2},
		{"user", cohort.SessionFilter{UserID: a.ID}, 2},
		{"class and user", cohort.SessionFilter{ClassID: c1.ID, UserID: a.ID}, 1},
		{"state", cohort.SessionFilter{States: []cohort.SessionState{cohort.StateReady}}, 1},
		{"states", cohort.SessionFilter{States: []cohort.SessionState{cohort.StateReady, cohort.StateRequested}}, 3},
		{"none", cohort.SessionFilter{States: []cohort.SessionState{cohort.StateFailed}}, 0},
	} {
		if got := must(s.ListSessions(ctx, tt.f)); len(got) != tt.want {
			t.Errorf("%s: %d sessions, want %d", tt.name, len(got), tt.want)
		}
	}
	want := []cohort.SessionCount{{State: cohort.StateReady, Driver: "local", N: 1}, {State: cohort.StateRequested, Driver: "local", N: 2}}
	if got := must(s.CountSessions(ctx)); !slices.Equal(got, want) {
		t.Errorf("CountSessions = %+v, want %+v", got, want)
	}
}

func testEvents(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	c := newClass(t, s, u)
	sess, _ := must2(s.StartSession(ctx, newSession(c.ID, u.ID), 10))
	for _, m := range []string{"starting Jupyter", "waiting for /api/status"} {
		if err := s.AppendEvent(ctx, &cohort.Event{SessionID: sess.ID, Time: clock.Now(), State: cohort.StateProvisioning, Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	all := must(s.ListEvents(ctx, sess.ID, 0))
	if len(all) != 3 || all[0].Message != "session requested" || all[2].Message != "waiting for /api/status" {
		t.Fatalf("events = %+v", all)
	}
	rest := must(s.ListEvents(ctx, sess.ID, all[0].ID))
	if len(rest) != 2 || rest[0].ID != all[1].ID {
		t.Fatalf("events after %d = %+v", all[0].ID, rest)
	}
	if none := must(s.ListEvents(ctx, "ses_other", 0)); len(none) != 0 {
		t.Fatalf("events of an unknown session = %+v", none)
	}
}

func testTimeouts(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	c := newClass(t, s, u)
	sess, _ := must2(s.StartSession(ctx, newSession(c.ID, u.ID), 10))
	if due := must(s.DueSessions(ctx, clock.Now())); len(due) != 0 {
		t.Fatalf("a requested session is due: %+v", due)
	}
	now := clock.Now()
	sess.State, sess.ReadyAt = cohort.StateReady, &now
	if err := s.UpdateSession(ctx, sess, nil); err != nil {
		t.Fatal(err)
	}
	if due := must(s.DueSessions(ctx, now)); len(due) != 1 {
		t.Fatalf("a ready session without deadlines is not due (%d)", len(due))
	}
	later, earlier := now.Add(time.Hour), now.Add(-time.Hour)
	if err := s.RecordActivity(ctx, sess.ID, later); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordActivity(ctx, sess.ID, earlier); err != nil {
		t.Fatal(err)
	}
	idle, hard, check := now.Add(90*time.Minute), now.Add(12*time.Hour), now.Add(80*time.Minute)
	if err := s.SetDeadlines(ctx, sess.ID, cohort.SessionDeadlines{Idle: &idle, Hard: &hard, CheckAt: &check, WarnedAt: &now}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetExtension(ctx, sess.ID, cohort.Duration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.SetExtension(ctx, "ses_missing", 0), cohort.ENOTFOUND)
	got := must(s.GetSession(ctx, sess.ID))
	if !got.LastActivityAt.Equal(later) || !got.IdleDeadline.Equal(idle) || !got.HardDeadline.Equal(hard) || !got.CheckAt.Equal(check) ||
		!got.WarnedAt.Equal(now) || got.Extension.D() != time.Hour || got.Version != sess.Version {
		t.Fatalf("timeout columns = %+v (version %d, want %d unchanged)", got, got.Version, sess.Version)
	}
	for _, tt := range []struct {
		at   time.Time
		want int
	}{{now.Add(79 * time.Minute), 0}, {check, 1}, {hard, 1}} {
		if due := must(s.DueSessions(ctx, tt.at)); len(due) != tt.want {
			t.Errorf("due at %s: %d, want %d", tt.at, len(due), tt.want)
		}
	}
	// A lifecycle write keeps the timeout columns.
	got.State, got.EndCause = cohort.StateStopping, cohort.CauseIdle
	if err := s.UpdateSession(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
	after := must(s.GetSession(ctx, sess.ID))
	if after.EndCause != cohort.CauseIdle || after.IdleDeadline == nil || after.Extension.D() != time.Hour {
		t.Fatalf("after a lifecycle write: %+v", after)
	}
	if due := must(s.DueSessions(ctx, hard)); len(due) != 0 {
		t.Fatal("a stopping session is due")
	}
}
