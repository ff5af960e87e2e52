package cost_test

import (
	"math"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
)

// TestMeterWork: a work disk bills by the GB-month (730 hours) from its
// creation, and is committed until the class's work is deleted.
func TestMeterWork(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	work := []cohort.KeptWork{{GB: 10, Created: now.Add(-73 * time.Hour)}, {GB: 20, Created: now.Add(-730 * time.Hour)}}
	spent, month, committed := cost.MeterWork(work, 0.10, now, now.Add(730*time.Hour))
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if !near(spent, 0.10+2.0) || !near(month, 3.0) || !near(committed, spent+3.0) {
		t.Fatalf("spent %v, a month %v, committed %v; want 2.10, 3.00, 5.10", spent, month, committed)
	}
	if _, _, c := cost.MeterWork(work, 0.10, now, time.Time{}); !near(c, spent) {
		t.Fatalf("no end: committed %v, want what was spent (%v)", c, spent)
	}
	if p, err := cost.Default().WorkMonth([]string{"us-central1-a"}); err != nil || p <= 0 {
		t.Fatalf("pd-balanced in us-central1 = %v, %v", p, err)
	}
	if _, err := cost.Default().WorkMonth([]string{"mars-north1-a"}); cohort.ErrorCode(err) != cohort.EUNAVAILABLE {
		t.Fatalf("an unknown region = %v", err)
	}
}
