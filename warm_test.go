package cohort_test

import (
	"testing"
	"time"

	"github.com/cohortdev/cohort"
)

func TestWarmWindowAndTarget(t *testing.T) {
	T := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := T.Add(d); return &v }
	p := cohort.DefaultClass().Policy
	p.StartsAt, p.EndsAt = at(0), at(3*time.Hour)
	p.Warm = &cohort.Warm{Seats: 10}
	from, until, ok := p.WarmWindow()
	if !ok || !from.Equal(T.Add(-cohort.WarmLead)) || !until.Equal(T.Add(3*time.Hour)) {
		t.Fatalf("window %s..%s (%v), want 15 minutes before the opening until the end", from, until, ok)
	}
	for _, tc := range []struct {
		now         time.Duration
		left, free  int
		roster      bool
		seats, want int
	}{
		{now: -20 * time.Minute, left: 30, free: 30, seats: 10, want: 0},               // before the window
		{now: -15 * time.Minute, left: 30, free: 30, seats: 10, want: 10},              // it opens
		{now: -5 * time.Minute, left: 4, free: 30, seats: 10, want: 10},                // before the class: the roster may grow
		{now: 5 * time.Minute, left: 4, free: 30, seats: 10, want: 4},                  // under way: those left to arrive
		{now: 5 * time.Minute, left: 30, free: 3, seats: 10, want: 3},                  // no more than the free seats
		{now: -5 * time.Minute, left: 7, free: 30, roster: true, want: 7},              // one per participant yet to start
		{now: -5 * time.Minute, left: 17, free: 30, roster: true, seats: 12, want: 12}, // at most seats
		{now: 3 * time.Hour, left: 30, free: 30, seats: 10, want: 0},                   // the class ended
	} {
		p.Warm = &cohort.Warm{Seats: tc.seats, Roster: tc.roster}
		if got := p.WarmTarget(T.Add(tc.now), tc.left, tc.free); got != tc.want {
			t.Errorf("%+v: target %d, want %d", tc, got, tc.want)
		}
	}
	// An explicit window, cut at the class's end: a warm seat never
	// outlives its class.
	p.Warm = &cohort.Warm{Seats: 2, From: at(-time.Hour), Until: at(5 * time.Hour)}
	if _, until, _ := p.WarmWindow(); !until.Equal(*p.EndsAt) {
		t.Fatalf("window ends %s, after the class (%s)", until, p.EndsAt)
	}
}

func TestWarmValidation(t *testing.T) {
	T := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := T.Add(d); return &v }
	for _, tc := range []struct {
		name  string
		warm  cohort.Warm
		start *time.Time
		field string
	}{
		{"more than the seats", cohort.Warm{Seats: 31}, at(0), "policy.warm.seats"},
		{"negative", cohort.Warm{Seats: -1}, at(0), "policy.warm.seats"},
		{"no time to begin", cohort.Warm{Seats: 3}, nil, "policy.warm.from"},
		{"ends before it begins", cohort.Warm{Seats: 3, From: at(0), Until: at(-time.Minute)}, nil, "policy.warm.until"},
		{"a two-day window", cohort.Warm{Seats: 3, From: at(0), Until: at(48 * time.Hour)}, nil, "policy.warm.until"},
		{"fine", cohort.Warm{Roster: true}, at(0), ""},
	} {
		c := cohort.DefaultClass()
		c.Name, c.Policy.StartsAt, c.Policy.Warm = "NLP", tc.start, &tc.warm
		err := c.Validate()
		if field := cohort.ErrorField(err); field != tc.field {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.field)
		}
	}
	c := cohort.DefaultClass()
	c.Name, c.Policy.Warm = "NLP", &cohort.Warm{}
	if err := c.Validate(); err != nil || c.Policy.Warm != nil {
		t.Fatalf("an empty warm setting: %v, kept %+v", err, c.Policy.Warm)
	}
}
