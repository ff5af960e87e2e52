package timeouts_test

import (
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/timeouts"
)

// TestWarmDeadlines: an unclaimed warm seat stops at the end of its
// window, without an idle timeout; a claimed one runs its participant's
// lifetime from the claim, but never past what it was admitted for, from
// when it was made (its VM's own stop): a window that grew after it was
// made does not carry it past that.
func TestWarmDeadlines(t *testing.T) {
	t.Parallel()
	p := cohort.DefaultClass().Policy // 12 h lifetime, 4 h extensions, 90 m idle
	until := t0.Add(2 * time.Hour)
	p.Warm = &cohort.Warm{Seats: 3, From: ptr(t0.Add(-15 * time.Minute)), Until: &until}
	// Admitted at t0 - 15m for its window then a lifetime: 2h15m + 16h.
	w := &cohort.Session{ID: "ses_w", UserID: cohort.PoolUserID, State: cohort.StateReady, Driver: "local",
		CreatedAt: t0.Add(-15 * time.Minute), ReadyAt: ptr(t0.Add(-14 * time.Minute)), BillCap: cohort.Duration(2*time.Hour + 15*time.Minute + 16*time.Hour)}
	d, _ := timeouts.Compute(w, p)
	if next, cause := d.Next(); !next.Equal(until) || cause != cohort.CauseUnclaimed {
		t.Fatalf("unclaimed: stops at %s (%s), want the window's end %s", next, cause, until)
	}
	claimed := *w
	claimed.UserID, claimed.ClaimedAt, claimed.ReadyAt = "usr_p", ptr(t0.Add(time.Hour)), ptr(t0.Add(time.Hour))
	if d, _ := timeouts.Compute(&claimed, p); !d.Hard.Equal(t0.Add(13*time.Hour)) || !d.Idle.Equal(t0.Add(time.Hour+90*time.Minute)) {
		t.Fatalf("claimed at t0+1h: hard %s, idle %s; want its lifetime and idle timeout from the claim", d.Hard, d.Idle)
	}
	// The window was moved later after the seat was made, and it is
	// claimed late: its admitted life ends first.
	late := claimed
	late.ClaimedAt, late.ReadyAt = ptr(t0.Add(7*time.Hour)), ptr(t0.Add(7*time.Hour))
	if d, _ := timeouts.Compute(&late, p); !d.Hard.Equal(w.CreatedAt.Add(w.BillCap.D())) {
		t.Fatalf("claimed late: hard %s, want the end of what it was admitted for, %s", d.Hard, w.CreatedAt.Add(w.BillCap.D()))
	}
}
