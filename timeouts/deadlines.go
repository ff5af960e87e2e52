// Package timeouts keeps forgotten notebooks from billing: it computes each
// session's idle and hard deadlines from its activity, its extension and
// its class's current policy, warns the participant before a stop, and
// stops sessions whose deadline passed. Activity comes from the proxy
// (Tracker) and from the notebook's kernels (read through the driver).
package timeouts

import (
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
)

// Deadlines are when a session stops under its class's policy.
type Deadlines struct {
	// LastActivity is the latest use seen (the session's start at first).
	LastActivity time.Time
	// Idle is when it stops if nobody uses it; never after Hard.
	Idle time.Time
	// Hard is when it stops whatever happens, and why (max_lifetime,
	// class_ended or budget).
	Hard      time.Time
	HardCause cohort.EndCause
	warn      time.Duration
}

// Compute returns a ready session's deadlines under policy p. Sessions
// that were never ready have none (ok is false).
func Compute(s *cohort.Session, p cohort.Policy) (d Deadlines, ok bool) {
	if s.ReadyAt == nil {
		return Deadlines{}, false
	}
	if s.Warm() {
		return warmDeadlines(s, p), true
	}
	d.LastActivity = *s.ReadyAt
	if s.LastActivityAt != nil && s.LastActivityAt.After(d.LastActivity) {
		d.LastActivity = *s.LastActivityAt
	}
	// Seats started before the class opens wait for it: idle time counts
	// from the opening, not from the early start.
	if p.StartsAt != nil && p.StartsAt.After(d.LastActivity) {
		d.LastActivity = *p.StartsAt
	}
	d.Hard, d.HardCause = s.ReadyAt.Add(p.MaxLifetime.D()+s.Extension.D()), cohort.CauseMaxLifetime
	if end, ok := admittedEnd(s); ok && end.Before(d.Hard) {
		d.Hard = end // the class's lifetime (or warm window) grew after it was admitted
	}
	if p.EndsAt != nil && p.EndsAt.Before(d.Hard) {
		d.Hard, d.HardCause = *p.EndsAt, cohort.CauseClassEnded
	}
	if s.BudgetStopAt != nil && s.BudgetStopAt.Before(d.Hard) {
		d.Hard, d.HardCause = *s.BudgetStopAt, cohort.CauseBudget
	}
	d.Idle = d.LastActivity.Add(p.IdleTimeout.D())
	if d.Idle.After(d.Hard) {
		d.Idle = d.Hard
	}
	d.warn = p.Warn()
	return d, true
}

// warmDeadlines are an unclaimed warm seat's: it stops at the end of its
// class's warm window (at once if the class has none any more), or
// earlier at the class's end or for its budget; nobody uses it, so it
// has no idle timeout, and nobody is there to warn.
func warmDeadlines(s *cohort.Session, p cohort.Policy) Deadlines {
	d := Deadlines{LastActivity: *s.ReadyAt, Hard: *s.ReadyAt, HardCause: cohort.CauseUnclaimed}
	if _, until, ok := p.WarmWindow(); ok {
		d.Hard = until // capped by the class's end already
	}
	if end, ok := admittedEnd(s); ok && end.Before(d.Hard) {
		d.Hard = end
	}
	if s.BudgetStopAt != nil && s.BudgetStopAt.Before(d.Hard) {
		d.Hard, d.HardCause = *s.BudgetStopAt, cohort.CauseBudget
	}
	d.Idle = d.Hard
	return d
}

// admittedEnd is the latest a session may run to as it was admitted (its
// budget counted it, and its VM's own stop is set there): its admitted
// life from when it became ready, or for a warm seat from when it was
// made (its life covers its window, then its participant's).
func admittedEnd(s *cohort.Session) (time.Time, bool) {
	life := cost.Life(s)
	if life == 0 {
		return time.Time{}, false
	}
	if s.Warm() || s.ClaimedAt != nil {
		return s.CreatedAt.Add(life), true
	}
	return s.ReadyAt.Add(life), true
}

// Next returns the earliest stop and its cause.
func (d Deadlines) Next() (time.Time, cohort.EndCause) {
	if d.Idle.Before(d.Hard) {
		return d.Idle, cohort.CauseIdle
	}
	return d.Hard, d.HardCause
}

// WarnAt is when the participant is warned of the next stop.
func (d Deadlines) WarnAt() time.Time {
	next, _ := d.Next()
	return next.Add(-d.warn)
}

// Warning returns the cause of a stop that is near at now (within the
// warning time), or "" when none is.
func (d Deadlines) Warning(now time.Time) cohort.EndCause {
	next, cause := d.Next()
	if now.Before(next.Add(-d.warn)) {
		return ""
	}
	return cause
}

// Stored returns what the store caches of the deadlines, with the given
// warning time.
func (d Deadlines) Stored(warned *time.Time) cohort.SessionDeadlines {
	idle, hard, check := d.Idle, d.Hard, d.WarnAt()
	return cohort.SessionDeadlines{Idle: &idle, Hard: &hard, CheckAt: &check, WarnedAt: warned}
}

// Extend returns a session's extension after an instructor extends it by
// by, or why it may not be: the session ended; by is not positive, or
// more than the class's max_extension leaves; the seat's admitted
// lifetime (what its budget counted and its VM's own stop enforces) is
// used up; or the class's end or its budget stops it first.
func Extend(s *cohort.Session, p cohort.Policy, by cohort.Duration) (cohort.Duration, error) {
	switch {
	case by <= 0:
		return 0, cohort.Invalid("by", "by must be a positive duration such as \"1h\"")
	case !s.State.WantsRunning():
		return 0, cohort.Errorf(cohort.ECONFLICT, "session %s has ended; it cannot be extended", s.ID)
	case by > p.MaxExtension-s.Extension: // compared before adding: a huge by must not wrap around
		return 0, cohort.Invalid("by", "the class allows extending a session by %s in all; this one has %s left",
			p.MaxExtension, p.MaxExtension-s.Extension)
	}
	if life := cost.Life(s); life > 0 && p.MaxLifetime.D()+(s.Extension+by).D() > life {
		return 0, cohort.Invalid("by", "this seat was admitted to run %s at most, extensions included (the class's limits when it started, which its budget and its VM's own stop count); it can be extended by %s more",
			cohort.Duration(life), cohort.Duration(max(life-p.MaxLifetime.D()-s.Extension.D(), 0)))
	}
	if d, ok := Compute(s, p); ok && d.HardCause == cohort.CauseClassEnded {
		return 0, cohort.Errorf(cohort.ECONFLICT, "the session stops when the class ends at %s; move the class's ends_at to give more time",
			d.Hard.UTC().Format(time.RFC3339))
	} else if ok && d.HardCause == cohort.CauseBudget {
		return 0, cohort.Errorf(cohort.ECONFLICT, "the session stops at %s for the class's budget; raise the budget to keep it",
			d.Hard.UTC().Format(time.RFC3339))
	}
	return s.Extension + by, nil
}
