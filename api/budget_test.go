package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/cost"
	"github.com/cohortdev/cohort/timeouts"
)

// TestLoweredBudgetWarnsFirst: a budget lowered below what ready seats
// have committed stops the newest after the class's warning time, told
// at once, with end_cause budget; raised again before then, the stop is
// called off. What the class commits meanwhile fits the lowered budget.
func TestLoweredBudgetWarnsFirst(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var sweeper *timeouts.Sweeper
	gce := &backstops{moved: map[string]time.Time{}}
	e := newEnv(t, func(o *api.Options) {
		sweeper = timeouts.New(timeouts.Options{Store: o.Store, Driver: gce, Enqueuer: o.Enqueuer, Now: clock})
		o.Driver, o.Now, o.Sweeper = "gce", clock, sweeper
	})
	e.db.Now = clock
	seat := (0.189999+0.35)*5.75 + 100*0.10/730*(5.75+cost.StopAllowance.Hours())
	c := e.createClass("teacher", fmt.Sprintf(`{"name": "Capped", "policy": {"seats": 10, "max_lifetime": "4h", "max_extension": "1h", "idle_timeout": "3h", "budget": %.2f}}`, 3*seat))
	ready := func(who string) *cohort.Session {
		started, st := e.startSession(who, c.ID)
		if st != http.StatusCreated {
			t.Fatalf("%s's seat: %d", who, st)
		}
		s, _ := e.store.GetSession(context.Background(), started.ID)
		at := now
		s.State, s.ReadyAt = cohort.StateReady, &at
		if err := e.store.UpdateSession(context.Background(), s, nil); err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice := ready("alice")
	now = now.Add(time.Minute)
	bob := ready("bob")
	setBudget := func(seats float64) {
		t.Helper()
		if r := e.do("teacher", "PATCH", "/v1/classes/"+c.ID, fmt.Sprintf(`{"policy": {"budget": %.2f}}`, seats*seat)); r.status != http.StatusOK {
			t.Fatalf("budget of %v seats: %d %s", seats, r.status, r.body)
		}
	}
	session := func(s *cohort.Session) *cohort.Session {
		got, err := e.store.GetSession(context.Background(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	events := func(s *cohort.Session) string {
		var out struct{ Events []cohort.Event }
		e.do("bob", "GET", "/v1/sessions/"+s.ID+"/events", "").json(t, &out)
		var msgs []string
		for _, ev := range out.Events {
			msgs = append(msgs, ev.Message)
		}
		return strings.Join(msgs, "\n")
	}
	committed := func() (float64, float64) {
		var cc cohort.ClassCost
		e.do("teacher", "GET", "/v1/classes/"+c.ID+"/cost", "").json(t, &cc)
		return cc.Committed, cc.Budget
	}

	setBudget(1.5)
	got := session(bob)
	if got.State != cohort.StateReady || got.BudgetStopAt == nil || !got.BudgetStopAt.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("bob's seat after the budget was lowered: %s, stops at %v; want ready, stopping in the warning time", got.State, got.BudgetStopAt)
	}
	if s := session(alice); s.BudgetStopAt != nil {
		t.Fatalf("alice's older seat fits the budget but stops at %v", s.BudgetStopAt)
	}
	if ev := events(bob); !strings.Contains(ev, "will stop at 09:11 UTC (in 10m) because the class's budget was lowered") {
		t.Fatalf("bob was not warned:\n%s", ev)
	}
	if at := gce.at(bob.ID); !at.Equal(*got.BudgetStopAt) {
		t.Fatalf("the driver's backstop for bob's seat is at %v, want its budget stop %v: with cohort down, GCE would run it on", at, got.BudgetStopAt)
	}
	if c, b := committed(); c > b+1e-9 {
		t.Fatalf("committed %v over the lowered budget %v while bob's seat is warned", c, b)
	}
	var v struct {
		StopsAt   *time.Time `json:"stops_at"`
		StopCause string     `json:"stop_cause"`
	}
	e.do("bob", "GET", "/v1/sessions/"+bob.ID, "").json(t, &v)
	if v.StopCause != "budget" || v.StopsAt == nil || !v.StopsAt.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("bob's session view: stops %v for %q", v.StopsAt, v.StopCause)
	}
	r := e.do("teacher", "POST", "/v1/sessions/"+bob.ID+"/extend", `{"by": "30m"}`)
	if _, _, msg := r.errorCode(); r.status != http.StatusConflict || !strings.Contains(msg, "raise the budget") {
		t.Fatalf("extending a seat stopping for the budget: %d %s", r.status, r.body)
	}

	// Raised back before the stop: called off.
	now = now.Add(5 * time.Minute)
	setBudget(2.5)
	if s := session(bob); s.BudgetStopAt != nil {
		t.Fatalf("bob's stop stands after the budget was raised: %v", s.BudgetStopAt)
	}
	if ev := events(bob); !strings.Contains(ev, "called off") {
		t.Fatalf("bob was not told his seat goes on:\n%s", ev)
	}

	// Lowered again: warned again, and the sweep stops the seat at its time,
	// not before, and warns no second time.
	setBudget(1.5)
	before := strings.Count(events(bob), "will stop at")
	now = now.Add(9 * time.Minute)
	if _, err := sweeper.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := session(bob); s.State != cohort.StateReady {
		t.Fatalf("bob's seat stopped %s early", s.BudgetStopAt.Sub(now))
	}
	if n := strings.Count(events(bob), "will stop at"); n != before {
		t.Fatalf("bob was warned %d times, want %d", n, before)
	}
	now = now.Add(time.Minute)
	if _, err := sweeper.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := session(bob); s.State != cohort.StateStopping || s.EndCause != cohort.CauseBudget {
		t.Fatalf("bob's seat at its budget stop: %s, cause %q", s.State, s.EndCause)
	}
	if s := session(alice); s.State != cohort.StateReady {
		t.Fatalf("alice's seat: %s", s.State)
	}
}

// backstops is a driver with a backstop of its own, as GCE's scheduler
// jobs are: it records where each session's was moved.
type backstops struct {
	mu    sync.Mutex
	moved map[string]time.Time
}

func (b *backstops) Reschedule(_ context.Context, sessionID string, deadline time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.moved[sessionID] = deadline
	return nil
}

func (b *backstops) at(sessionID string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.moved[sessionID]
}

func (b *backstops) Name() string                                     { return "gce" }
func (b *backstops) Start(context.Context, cohort.NotebookSpec) error { return nil }
func (b *backstops) Stop(context.Context, string) error               { return nil }
func (b *backstops) List(context.Context) ([]string, error)           { return nil, nil }
func (b *backstops) FilesNote() string                                { return "Files: deleted." }
func (b *backstops) Inspect(context.Context, cohort.NotebookSpec) (cohort.Instance, error) {
	return cohort.Instance{State: cohort.InstanceReady}, nil
}

// TestRaisedLimitsKeepTheAdmittedCap: a seat runs at most what it was
// admitted for, which its budget counted and its VM's own stop enforces:
// raising the class's lifetime later moves no running seat's hard stop
// past it, and an extension beyond it is refused with what is left.
func TestRaisedLimitsKeepTheAdmittedCap(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, func(o *api.Options) { o.Driver, o.Now = "gce", func() time.Time { return now } })
	e.db.Now = func() time.Time { return now }
	c := e.createClass("teacher", `{"name": "Limits", "policy": {"max_lifetime": "4h", "max_extension": "1h", "idle_timeout": "3h"}}`)
	started, st := e.startSession("alice", c.ID)
	if st != http.StatusCreated {
		t.Fatalf("alice's seat: %d", st)
	}
	s, _ := e.store.GetSession(context.Background(), started.ID)
	ready := now
	s.State, s.ReadyAt = cohort.StateReady, &ready
	if err := e.store.UpdateSession(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	if r := e.do("teacher", "PATCH", "/v1/classes/"+c.ID, `{"policy": {"max_lifetime": "8h", "max_extension": "3h"}}`); r.status != http.StatusOK {
		t.Fatalf("raise the limits: %d %s", r.status, r.body)
	}
	var v struct {
		HardDeadline *time.Time `json:"hard_deadline"`
	}
	e.do("alice", "GET", "/v1/sessions/"+s.ID, "").json(t, &v)
	if v.HardDeadline == nil || !v.HardDeadline.Equal(ready.Add(5*time.Hour)) {
		t.Fatalf("hard deadline after the class's lifetime was raised: %v, want the admitted 5h", v.HardDeadline)
	}
	r := e.do("teacher", "POST", "/v1/sessions/"+s.ID+"/extend", `{"by": "2h"}`)
	if _, field, msg := r.errorCode(); r.status != http.StatusBadRequest || field != "by" || !strings.Contains(msg, "admitted to run 5h") {
		t.Fatalf("an extension past the admitted cap: %d %s", r.status, r.body)
	}
	// A seat admitted now has the new limits.
	bob, _ := e.startSession("bob", c.ID)
	if got, _ := e.store.GetSession(context.Background(), bob.ID); cost.Life(got) != 11*time.Hour {
		t.Fatalf("a new seat's admitted life is %s, want 11h", cost.Life(got))
	}
}
