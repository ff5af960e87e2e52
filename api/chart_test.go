package api

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
)

// TestCSVCellsAreNotFormulas: a spreadsheet opening the export must not
// run an email that starts like a formula.
func TestCSVCellsAreNotFormulas(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ada@example.org": "ada@example.org", "=1+2@example.org": "'=1+2@example.org", "+x@example.org": "'+x@example.org",
		"-x@example.org": "'-x@example.org", "@x@example.org": "'@x@example.org", "": "",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestChartShowsSpendAsItGrew: a session that ran from 0 h to 10 h and
// ended adds its spend over those hours, not all of it from the start.
func TestChartShowsSpendAsItGrew(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	ended := t0.Add(10 * time.Hour)
	s := &cohort.Session{State: cohort.StateStopped, CreatedAt: t0, EndedAt: &ended}
	rate := cost.Rate{VM: 1}
	ch := chartSpend([]*cohort.Session{s}, rate, time.Hour, t0.Add(20*time.Hour), &cohort.ClassCost{Spent: 10, Committed: 10})
	pts := strings.Fields(ch.Points)
	y := func(i int) float64 {
		v, _ := strconv.ParseFloat(strings.Split(pts[i], ",")[1], 64)
		return v
	}
	// Heights: the chart's top is 11 (spent and committed × 1.1); y grows down.
	if len(pts) != 49 || y(0) < float64(ch.Height)-1 || y(12) > y(0)-20 || y(48) != y(24) || y(24) > 20 {
		t.Fatalf("points %v: want 0 at the start, half way at 5 h, all 10 from 10 h on", ch.Points)
	}
	if ch.BudgetY != -1 || ch.CommittedY < 0 {
		t.Fatalf("budget line %v, committed line %v", ch.BudgetY, ch.CommittedY)
	}
}
