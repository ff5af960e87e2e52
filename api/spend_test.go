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

// TestMonthlySpend: the admin's view of a month, by class, from the
// rollup of ended sessions and the running ones; and the installation's
// monthly budget, which refuses a seat it cannot cover to its hard stop.
func TestMonthlySpend(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	e := newEnv(t, func(o *api.Options) { o.Driver, o.Now = "gce", clock })
	e.db.Now = clock
	ctx := context.Background()
	hour := 0.189999 + 0.35 + 100*0.10/730                                          // a seat of the default runtime, an hour
	seat := (0.189999+0.35)*16.75 + 100*0.10/730*(16.75+cost.StopAllowance.Hours()) // 12h + 4h + 15m + 30m
	a := e.createClass("teacher", `{"name": "Vision"}`)
	b := e.createClass("teacher", `{"name": "Speech"}`)
	started, st := e.startSession("alice", a.ID)
	if st != http.StatusCreated {
		t.Fatalf("alice's seat: %d", st)
	}
	alice, _ := e.store.GetSession(ctx, started.ID)
	alice.State = cohort.StateReady
	if err := e.store.UpdateSession(ctx, alice, nil); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Minute)
	started, st = e.startSession("bob", b.ID)
	if st != http.StatusCreated {
		t.Fatalf("bob's seat: %d", st)
	}
	bob, _ := e.store.GetSession(ctx, started.ID)
	bob.State = cohort.StateReady
	if err := e.store.UpdateSession(ctx, bob, nil); err != nil {
		t.Fatal(err)
	}
	// Alice's seat ends at 01:00 on December 1: an hour in November, an
	// hour in December.
	now = time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	alice, _ = e.store.GetSession(ctx, alice.ID)
	alice.State, alice.EndedAt = cohort.StateStopped, &now
	if err := e.store.UpdateSession(ctx, alice, nil); err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	get := func(month string) cohort.MonthSpend {
		t.Helper()
		var m cohort.MonthSpend
		r := e.do("admin", "GET", "/v1/spend"+month, "")
		if r.status != http.StatusOK {
			t.Fatalf("spend%s: %d %s", month, r.status, r.body)
		}
		r.json(t, &m)
		return m
	}
	nov := get("?month=2026-11")
	if len(nov.Classes) != 2 || nov.Classes[0].ClassName != "Vision" || !near(nov.Classes[0].Spent, hour) || !near(nov.Classes[1].Spent, 0.5*hour) ||
		!near(nov.Spent, 1.5*hour) || nov.Committed != 0 || nov.RunningSeats != 0 {
		t.Fatalf("November: %+v", nov)
	}
	dec := get("")
	if dec.Month != "2026-12" || !near(dec.Spent, 2*hour) || dec.RunningSeats != 1 || !near(dec.RunningHour, hour) {
		t.Fatalf("December: %+v", dec)
	}
	// Committed: alice's hour in December, and bob's seat to its hard
	// stop (its half hour in November too: more, never less).
	if !near(dec.Committed, hour+seat) {
		t.Fatalf("December committed %v, want %v: %+v", dec.Committed, hour+seat, dec)
	}
	if len(dec.Months) != 2 || dec.Months[0].Month != "2026-12" || !near(dec.Months[1].Spent, 1.5*hour) {
		t.Fatalf("months %+v", dec.Months)
	}

	// A monthly budget with room for less than one more seat, 80% committed.
	if r := e.do("admin", "PUT", "/v1/settings", fmt.Sprintf(`{"monthly_budget": %.2f}`, 1.2*dec.Committed)); r.status != http.StatusOK {
		t.Fatalf("set the monthly budget: %d %s", r.status, r.body)
	}
	r := e.do("bob", "POST", "/v1/classes/"+a.ID+"/sessions", "")
	if _, _, msg := r.errorCode(); r.status != http.StatusConflict || !strings.Contains(msg, "monthly budget") || !strings.Contains(msg, "left this month") {
		t.Fatalf("a seat over the monthly budget: %d %s", r.status, r.body)
	}
	if _, st := e.startSession("bob", b.ID); st != http.StatusOK {
		t.Fatalf("bob reconnecting over the monthly budget: %d", st)
	}
	if m := get(""); !strings.Contains(m.Warning, "of the installation's monthly budget is committed") {
		t.Fatalf("no warning at %v of %v: %+v", m.Committed, m.Budget, m)
	}
	var set cohort.Settings
	e.do("admin", "GET", "/v1/settings", "").json(t, &set)
	if !near(set.MonthlyBudget, math.Round(1.2*dec.Committed*100)/100) {
		t.Fatalf("settings read back %+v", set)
	}
	if r := e.do("admin", "PUT", "/v1/settings", `{"monthly_budget": 0}`); r.status != http.StatusOK {
		t.Fatalf("lift the monthly budget: %d", r.status)
	}
	if _, st := e.startSession("bob", a.ID); st != http.StatusCreated {
		t.Fatalf("a seat once the monthly budget is lifted: %d", st)
	}

	// The admin page shows the same figures.
	br := newBrowser(t)
	signIn(t, e, br, "boss@example.com", "/admin")
	_, page := br.get(e.http.URL + "/admin?month=2026-11")
	for _, want := range []string{"Spend in 2026-11", `<dd data-spent>` + cost.Money(nov.Spent, "USD") + `</dd>`, `data-class-spend="` + a.ID + `"`, `href="/admin?month=2026-12"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the admin page for November lacks %q", want)
		}
	}
	if _, page := br.get(e.http.URL + "/admin"); !strings.Contains(page, "Spend in 2026-12") || !strings.Contains(page, `data-api="PUT /v1/settings"`) {
		t.Errorf("the admin page for this month lacks its spend or the budget form")
	}

	for _, bad := range []struct{ method, path, body, field string }{
		{"PUT", "/v1/settings", `{"monthly_budget": -5}`, "monthly_budget"},
		{"PUT", "/v1/settings", `{"monthly_budget": 1e12}`, "monthly_budget"},
		{"GET", "/v1/spend?month=2026-13", "", "month"},
		{"GET", "/v1/spend?month=last", "", "month"},
	} {
		r := e.do("admin", bad.method, bad.path, bad.body)
		if _, field, _ := r.errorCode(); r.status != http.StatusBadRequest || field != bad.field {
			t.Errorf("%s %s %s: %d %s", bad.method, bad.path, bad.body, r.status, r.body)
		}
	}
}
