package api_test

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
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
	if !near(got.Max, 2*seat*5.5) || !near(got.Typical, 2*seat*4) {
		t.Errorf("estimate max %v typical %v, want two seats to the hard stop (4h + 1h + 30m) and for 4h", got.Max, got.Typical)
	}
	if !near(got.Spent, 2.5*seat) || got.RunningSeats != 1 || !near(got.RunningHour, seat) {
		t.Errorf("spent %v running %d (%v/h), want 2.5 seat-hours and bob's seat", got.Spent, got.RunningSeats, got.RunningHour)
	}
	if len(got.Participants) != 2 || got.Participants[0].Email != "bob@example.com" || !near(got.Participants[0].Hours, 1.5) || !near(got.Participants[1].Spent, seat) {
		t.Errorf("participants %+v", got.Participants)
	}
	for _, user := range []string{"alice", "teacher2"} {
		if r := e.do(user, "GET", "/v1/classes/"+c.ID+"/cost", ""); r.status == http.StatusOK {
			t.Errorf("%s read the class's cost", user)
		}
	}
}
