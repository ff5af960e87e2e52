package api_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/cost"
)

// TestClassCost: a class's estimate and spend, metered from the times the
// store recorded, at the price table's rates; only its instructors see it.
func TestClassCost(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	now := t0
	e := newEnv(t, func(o *api.Options) { o.Driver, o.Now = "gce", func() time.Time { return now } })
	e.db.Now = func() time.Time { return now }
	c := e.createClass("teacher", `{"name": "Costly", "policy": {"seats": 2, "max_lifetime": "4h", "max_extension": "1h", "idle_timeout": "1h"}}`)
	ctx := context.Background()
	start := func(user string) *cohort.Session {
		s, _, err := e.store.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: c.ID, UserID: e.users[user].ID,
			State: cohort.StateProvisioning, Driver: "gce", NotebookToken: "t"}, 10)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := start("alice")
	now = t0.Add(30 * time.Minute)
	start("bob")
	now = t0.Add(time.Hour)
	a.State, a.EndedAt = cohort.StateStopped, &now
	if err := e.store.UpdateSession(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(2 * time.Hour) // alice ran 1 h; bob has run 1.5 h and runs on

	var got struct {
		Currency     string
		SeatHour     float64 `json:"seat_hour"`
		AllSeatsHour float64 `json:"all_seats_hour"`
		Typical, Max float64
		Spent        float64
		RunningHour  float64 `json:"running_hour"`
		RunningSeats int     `json:"running_seats"`
		Participants []struct {
			Email        string
			Sessions     int
			Hours, Spent float64
		}
	}
	r := e.do("teacher", "GET", "/v1/classes/"+c.ID+"/cost", "")
	if r.status != http.StatusOK {
		t.Fatalf("cost: %d %s", r.status, r.body)
	}
	r.json(t, &got)
	seat := 0.189999 + 0.35 + 100*0.10/730 // n1-standard-4, a T4, 100 GB balanced, us-central1
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	if got.Currency != "USD" || !near(got.SeatHour, seat) || !near(got.AllSeatsHour, 2*seat) {
		t.Errorf("rates %+v", got)
	}
	if !near(got.Max, 2*(seat*5.75+100*0.10/730*cost.StopAllowance.Hours())) || !near(got.Typical, 2*seat*4) {
		t.Errorf("estimate max %v typical %v, want two seats to the hard stop (4h + 1h + 15m to start + 30m) and for 4h", got.Max, got.Typical)
	}
	if !near(got.Spent, 2.5*seat) || got.RunningSeats != 1 || !near(got.RunningHour, seat) {
		t.Errorf("spent %v running %d (%v/h), want 2.5 seat-hours and bob's seat", got.Spent, got.RunningSeats, got.RunningHour)
	}
	if len(got.Participants) != 2 || got.Participants[0].Email != "bob@example.com" || !near(got.Participants[0].Hours, 1.5) || !near(got.Participants[1].Spent, seat) {
		t.Errorf("participants %+v", got.Participants)
	}
	csv := e.do("teacher", "GET", "/v1/classes/"+c.ID+"/cost?format=csv", "")
	lines := strings.Split(strings.TrimSpace(string(csv.body)), "\n")
	if csv.status != http.StatusOK || !strings.HasPrefix(csv.header.Get("Content-Type"), "text/csv") || len(lines) != 3 ||
		lines[0] != "email,sessions,hours,spent_usd" || !strings.HasPrefix(lines[1], "bob@example.com,1,1.500,") {
		t.Errorf("CSV export: %d %q", csv.status, csv.body)
	}
	for _, user := range []string{"alice", "teacher2"} {
		if r := e.do(user, "GET", "/v1/classes/"+c.ID+"/cost", ""); r.status == http.StatusOK {
			t.Errorf("%s read the class's cost", user)
		}
		if r := e.do(user, "GET", "/v1/classes/"+c.ID+"/cost?format=csv", ""); r.status == http.StatusOK {
			t.Errorf("%s downloaded the class's cost", user)
		}
	}
}

// TestClassBudget: seats start while what the class has spent and its
// seats can still cost to their hard stops fits the budget; the next is
// refused with what is left; a participant with a seat reconnects;
// lowering the budget stops the newest seats with end cause "budget".
func TestClassBudget(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, func(o *api.Options) { o.Driver, o.Now = "gce", func() time.Time { return now } })
	e.db.Now = func() time.Time { return now }
	// To the hard stop, 4h + 1h + 15m + 30m, and its disk 10 minutes more.
	seat := (0.189999+0.35)*5.75 + 100*0.10/730*(5.75+cost.StopAllowance.Hours())
	// Room for two seats and a bit: the third must not start.
	c := e.createClass("teacher", fmt.Sprintf(`{"name": "Capped", "policy": {"seats": 10, "max_lifetime": "4h", "max_extension": "1h", "idle_timeout": "1h", "budget": %.2f}}`, 2.4*seat))
	e.do("teacher", "POST", "/v1/classes/"+c.ID+"/members", `{"emails": ["carol@example.com"]}`)
	if _, st := e.startSession("alice", c.ID); st != http.StatusCreated {
		t.Fatalf("first seat: %d", st)
	}
	now = now.Add(10 * time.Minute)
	bob, st := e.startSession("bob", c.ID)
	if st != http.StatusCreated {
		t.Fatalf("second seat: %d", st)
	}
	now = now.Add(10 * time.Minute)
	var warned cohort.ClassCost
	e.do("teacher", "GET", "/v1/classes/"+c.ID+"/cost", "").json(t, &warned)
	if !strings.Contains(warned.Warning, "of the budget is committed") || !strings.Contains(warned.Warning, "room for 0 more seats") {
		t.Errorf("two seats of a budget of 2.4: warning %q", warned.Warning)
	}
	r := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/sessions", "")
	code, _, msg := r.errorCode()
	if r.status != http.StatusConflict || code != "conflict" || !strings.Contains(msg, "has $") || !strings.Contains(msg, "left, and a seat can cost up to $") ||
		!strings.Contains(msg, "covers") {
		t.Fatalf("a seat over the budget: %d %s", r.status, r.body)
	}
	if _, st := e.startSession("alice", c.ID); st != http.StatusOK {
		t.Fatalf("alice reconnecting over the budget: %d", st)
	}
	var all struct {
		Started, Running int
		OverBudget       int `json:"over_budget"`
	}
	e.do("teacher", "POST", "/v1/classes/"+c.ID+"/start-all", "").json(t, &all)
	if all.Started != 0 || all.Running != 2 || all.OverBudget != 1 {
		t.Fatalf("start-all over the budget: %+v", all)
	}
	// Changing the class does not change what running seats count: they
	// keep the rate and hard stop they were admitted with (their VMs do).
	var before cohort.ClassCost
	e.do("teacher", "GET", "/v1/classes/"+c.ID+"/cost", "").json(t, &before)
	for _, change := range []string{`{"runtime": {"machine_type": "e2-standard-4", "gpu_type": "", "gpu_count": 0}}`, `{"policy": {"max_lifetime": "1h", "max_extension": "0s"}}`} {
		if r := e.do("teacher", "PATCH", "/v1/classes/"+c.ID, change); r.status != http.StatusOK {
			t.Fatalf("PATCH %s: %d %s", change, r.status, r.body)
		}
		var after cohort.ClassCost
		e.do("teacher", "GET", "/v1/classes/"+c.ID+"/cost", "").json(t, &after)
		if after.Committed < before.Committed-1e-9 {
			t.Fatalf("after %s committed fell from %v to %v: running seats would be repriced", change, before.Committed, after.Committed)
		}
	}
	// Lowered below two seats' worth: the newest seat (bob's) stops; alice's
	// fits.
	if r := e.do("teacher", "PATCH", "/v1/classes/"+c.ID, fmt.Sprintf(`{"policy": {"budget": %.2f}}`, 1.5*seat)); r.status != http.StatusOK {
		t.Fatalf("lower the budget: %d %s", r.status, r.body)
	}
	got, err := e.store.GetSession(context.Background(), bob.ID)
	if err != nil || got.State != cohort.StateStopping || got.EndCause != cohort.CauseBudget {
		t.Fatalf("bob's seat after the budget was lowered: %+v, %v", got, err)
	}
	var spend cohort.ClassCost
	e.do("teacher", "GET", "/v1/classes/"+c.ID+"/cost", "").json(t, &spend)
	if math.Abs(spend.Budget-1.5*seat) > 0.01 || spend.Committed > spend.Budget+1e-9 {
		t.Fatalf("after lowering: budget %v, committed %v", spend.Budget, spend.Committed)
	}
	for _, bad := range []string{`-1`, `1e12`} {
		r := e.do("teacher", "PATCH", "/v1/classes/"+c.ID, `{"policy": {"budget": `+bad+`}}`)
		if _, field, _ := r.errorCode(); r.status != http.StatusBadRequest || field != "policy.budget" {
			t.Errorf("budget %s: %d %s", bad, r.status, r.body)
		}
	}
}

// TestParticipantSeesTheirCost: where the class allows it, a participant's
// home page says what their session has cost; otherwise it does not.
func TestParticipantSeesTheirCost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *api.Options) { o.Driver = "gce" })
	shown := e.createClass("teacher", `{"name": "Open books", "policy": {"show_cost": true}}`)
	hidden := e.createClass("teacher", `{"name": "Closed books"}`)
	for _, c := range []*cohort.Class{shown, hidden} {
		if _, st := e.startSession("alice", c.ID); st != http.StatusCreated {
			t.Fatalf("start in %s: %d", c.Name, st)
		}
	}
	b := newBrowser(t)
	signIn(t, e, b, "alice@example.com", "/")
	_, page := b.get(e.http.URL + "/")
	open := strings.Index(page, "Open books")
	closed := strings.Index(page, "Closed books")
	if open < 0 || closed < 0 {
		t.Fatalf("home page lacks the classes:\n%s", page)
	}
	card := func(from, to int) string {
		if to < from {
			return page[from:]
		}
		return page[from:to]
	}
	if c := card(open, closed); !strings.Contains(c, "data-session-cost") || !strings.Contains(c, "an hour while it runs") {
		t.Errorf("the class that shows costs does not show alice hers:\n%s", c)
	}
	if c := card(closed, open); strings.Contains(c, "data-session-cost") {
		t.Errorf("the class that hides costs shows alice hers:\n%s", c)
	}
}
