package cohort

import "time"

// Warm seats are a class's seats started ahead of its participants, owned
// by nobody: a participant's Start takes one that is ready and has a
// running notebook at once, instead of waiting for a VM to be made and
// to boot. A warm seat is a session of PoolUserID until it is claimed;
// nobody can open it before then, so no one else's files or kernels are
// ever on the seat a participant gets.
type Warm struct {
	// Seats is how many seats to keep warm; with Roster, at most that many
	// (0: as many as the roster has participants yet to start).
	Seats int `json:"seats,omitempty"`
	// Roster keeps a warm seat for every participant on the roster who
	// has no session yet, so that the pool shrinks as they arrive.
	Roster bool `json:"roster,omitempty"`
	// From is when warming begins: by default WarmLead before the class
	// opens (starts_at).
	From *time.Time `json:"from,omitempty"`
	// Until is when unclaimed seats stop: by default when the class ends
	// (ends_at), or WarmLate after it opens if it has no end (after From,
	// if that is later).
	Until *time.Time `json:"until,omitempty"`
}

// Defaults and limits of warm seats.
const (
	// WarmLead is how long before a class opens its seats are warmed, if
	// its warm setting names no start: a GPU VM boots in minutes.
	WarmLead = 15 * time.Minute
	// WarmLate is how long after a class without an end opens its
	// unclaimed seats stay.
	WarmLate = time.Hour
	// MaxWarmWindow bounds how long seats stay warm: a longer window is a
	// mistake that costs a GPU per seat all along.
	MaxWarmWindow = 24 * time.Hour
)

// PoolUserID owns the warm seats nobody has claimed yet. Nobody signs in
// as it: its email is reserved (NormalizeEmail refuses it).
const (
	PoolUserID = "usr_pool"
	PoolEmail  = "warm-seats@cohort.invalid"
)

// Warm reports whether the session is a warm seat nobody has claimed.
func (s *Session) Warm() bool { return s.UserID == PoolUserID }

// On reports whether the setting asks for any warm seat.
func (w *Warm) On() bool { return w != nil && (w.Seats > 0 || w.Roster) }

// WarmWindow returns when a class's seats are kept warm, from its warm
// setting and its schedule; ok is false when it has none.
func (p Policy) WarmWindow() (from, until time.Time, ok bool) {
	w := p.Warm
	if !w.On() {
		return time.Time{}, time.Time{}, false
	}
	switch {
	case w.From != nil:
		from = *w.From
	case p.StartsAt != nil:
		from = p.StartsAt.Add(-WarmLead)
	default:
		return time.Time{}, time.Time{}, false
	}
	switch {
	case w.Until != nil:
		until = *w.Until
	case p.EndsAt != nil:
		until = *p.EndsAt
	case p.StartsAt != nil && p.StartsAt.Add(WarmLate).After(from):
		until = p.StartsAt.Add(WarmLate)
	default:
		until = from.Add(WarmLate) // warmed after the class opened: an hour from then
	}
	if p.EndsAt != nil && p.EndsAt.Before(until) {
		until = *p.EndsAt // a warm seat never outlives its class
	}
	return from, until, until.After(from)
}

// WarmTarget is how many unclaimed seats a class wants at now: none
// outside its warm window; else its warm setting's number, or one for
// each of the roster's participants left to arrive (left), whichever is
// less when both are set, and no more than left once the class is under
// way; and never more than the seats its participants' sessions leave
// free (free).
func (p Policy) WarmTarget(now time.Time, left, free int) int {
	from, until, ok := p.WarmWindow()
	if !ok || now.Before(from) || !now.Before(until) {
		return 0
	}
	n := p.Warm.Seats
	if p.Warm.Roster && (n == 0 || left < n) {
		n = left
	}
	// Once the class is under way (at once for a class with no opening
	// time), a seat is only worth keeping for someone who may still come;
	// before, the roster may not be complete yet.
	if (p.StartsAt == nil || !now.Before(*p.StartsAt)) && left < n {
		n = left
	}
	return max(min(n, free), 0)
}

func (w *Warm) validate(p *Policy) error {
	if w == nil {
		return nil
	}
	switch {
	case w.Seats < 0 || w.Seats > p.Seats:
		return Invalid("policy.warm.seats", "warm seats must be between 0 and the class's seats (%d), not %d", p.Seats, w.Seats)
	case !w.On():
		p.Warm = nil // nothing warm: no setting
		return nil
	case w.From == nil && p.StartsAt == nil:
		return Invalid("policy.warm.from", "warm seats need a time to begin: set policy.warm.from, or the class's starts_at (they begin %s before it)", Duration(WarmLead))
	}
	from, until, ok := p.WarmWindow()
	switch {
	case !ok:
		return Invalid("policy.warm.until", "the warm window must end after it begins (%s) and before the class ends", from.UTC().Format(time.RFC3339))
	case until.Sub(from) > MaxWarmWindow:
		return Invalid("policy.warm.until", "seats can be kept warm for %s at most, not %s: every warm seat bills all along", Duration(MaxWarmWindow), Duration(until.Sub(from).Round(time.Minute)))
	}
	return nil
}

// WarmPool is a class's warm seats as its instructors see them.
type WarmPool struct {
	// From and Until are the warm window (none: no seats are kept warm).
	From  *time.Time `json:"from,omitempty"`
	Until *time.Time `json:"until,omitempty"`
	// Target is how many warm seats the schedule wants now; Ready and
	// Starting how many there are.
	Target   int `json:"target"`
	Ready    int `json:"ready"`
	Starting int `json:"starting"`
	// Claimed counts the seats participants took from the pool, and
	// ColdStarts those started for them since the window began because
	// none was warm.
	Claimed    int `json:"claimed"`
	ColdStarts int `json:"cold_starts"`
	// Cost is what warm seats cost while nobody had them, by now.
	Cost     float64 `json:"cost"`
	Currency string  `json:"currency"`
}
