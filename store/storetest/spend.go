package storetest

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
)

// The money half of the suite: the monthly spend rollup, budget stops,
// settings.

// testSpend: a session's cost joins its months' spend in the update that
// ends it, once, at the terms it was admitted with; it stays after its
// class is deleted.
func testSpend(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleInstructor))
	c := newClass(t, s, u)
	start := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	sess := newSession(c.ID, u.ID)
	sess.BillVM, sess.BillDisk, sess.BillCap = 2, 0, cohort.Duration(10*time.Hour)
	clock.Advance(start.Sub(clock.Now()))
	sess, _ = must2(s.StartSession(ctx, sess, 10))
	sess.State = cohort.StateReady
	must0(s.UpdateSession(ctx, sess, nil))
	if spend := must(s.ListSpend(ctx, "")); len(spend) != 0 {
		t.Fatalf("a running session was rolled up: %+v", spend[0])
	}
	// Ended at 01:30 on December 1: 1 h in November, 1.5 h in December.
	end := start.Add(150 * time.Minute)
	sess.State, sess.EndedAt = cohort.StateStopped, &end
	must0(s.UpdateSession(ctx, sess, nil))
	// Updated again after its end (a later reason): not counted twice.
	sess.Reason = "stopped"
	must0(s.UpdateSession(ctx, sess, nil))
	nov, dec := must(s.ListSpend(ctx, "2026-11")), must(s.ListSpend(ctx, "2026-12"))
	if len(nov) != 1 || len(dec) != 1 || !near(nov[0].Amount, 2) || !near(dec[0].Amount, 3) || nov[0].ClassID != c.ID || nov[0].ClassName != c.Name || dec[0].Sessions != 1 {
		t.Fatalf("spend: November %+v, December %+v; want 2 and 3 for %s", first(nov), first(dec), c.ID)
	}
	other := must(s.EnsureUser(ctx, "bo@example.com", cohort.RoleParticipant))
	b := newSession(c.ID, other.ID)
	b.BillVM = 1
	clock.Advance(end.Sub(clock.Now()))
	b, _ = must2(s.StartSession(ctx, b, 10))
	bEnd := end.Add(time.Hour)
	b.State, b.EndedAt = cohort.StateFailed, &bEnd
	must0(s.UpdateSession(ctx, b, nil))
	if dec := must(s.ListSpend(ctx, "2026-12")); len(dec) != 1 || !near(dec[0].Amount, 4) || dec[0].Sessions != 2 {
		t.Fatalf("December after a second session: %+v", first(dec))
	}
	must0(s.DeleteClass(ctx, c.ID))
	if all := must(s.ListSpend(ctx, "")); len(all) != 2 || all[0].Month != "2026-12" || all[1].Month != "2026-11" || all[0].ClassName != c.Name {
		t.Fatalf("spend after the class was deleted: %d rows, %+v", len(all), first(all))
	}
}

// testBudgetStop: a budget stop is set, read back and cleared.
func testBudgetStop(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleInstructor))
	c := newClass(t, s, u)
	sess, _ := must2(s.StartSession(ctx, newSession(c.ID, u.ID), 10))
	at := clock.Now().Add(10 * time.Minute).Truncate(time.Microsecond)
	must0(s.SetBudgetStop(ctx, sess.ID, &at))
	if got := must(s.GetSession(ctx, sess.ID)); got.BudgetStopAt == nil || !got.BudgetStopAt.Equal(at) {
		t.Fatalf("budget stop read back %v, want %v", got.BudgetStopAt, at)
	}
	must0(s.SetBudgetStop(ctx, sess.ID, nil))
	if got := must(s.GetSession(ctx, sess.ID)); got.BudgetStopAt != nil {
		t.Fatalf("budget stop not cleared: %v", got.BudgetStopAt)
	}
	wantCode(t, s.SetBudgetStop(ctx, "ses_missing", &at), cohort.ENOTFOUND)
}

func testSettings(t *testing.T, s cohort.Store, _ *Clock) {
	ctx := context.Background()
	if got := must(s.GetSettings(ctx)); got.MonthlyBudget != 0 {
		t.Fatalf("a new store's monthly budget is %v, want none", got.MonthlyBudget)
	}
	must0(s.SetSettings(ctx, &cohort.Settings{MonthlyBudget: 2500}))
	if got := must(s.GetSettings(ctx)); got.MonthlyBudget != 2500 {
		t.Fatalf("monthly budget read back %v", got.MonthlyBudget)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func first[T any](v []*T) *T {
	if len(v) == 0 {
		return nil
	}
	return v[0]
}

func must0(err error) {
	if err != nil {
		panic(failure{err})
	}
}
