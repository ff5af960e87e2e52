package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
	"github.com/cohortdev/cohort/timeouts"
)

// budget is a class's money as admission sees it.
type budget struct {
	rate      cost.Rate
	seatCap   time.Duration
	sessions  []*cohort.Session
	committed float64
}

func (s *Server) budgetOf(ctx context.Context, class *cohort.Class) (*budget, error) {
	rate, err := s.prices.Rate(s.driver, class.Runtime)
	if err != nil {
		return nil, errors.Join(errOverBudget, cohort.Errorf(cohort.ECONFLICT, "the class has a budget, but its seats have no price: %s", cohort.ErrorMessage(err)))
	}
	sessions, err := s.fresh.ListSessions(ctx, cohort.SessionFilter{ClassID: class.ID})
	if err != nil {
		return nil, err
	}
	b := &budget{rate: rate, seatCap: cost.SeatCap(class.Policy, s.driver), sessions: sessions}
	now := s.now()
	for _, sess := range sessions {
		b.committed += cost.Committed(sess, rate, now, b.seatCap)
	}
	return b, nil
}

// admitSeat refuses a new seat for a user (or the warm pool) when the
// class's budget cannot cover it running for capacity, to its hard stop;
// a user who has a seat reconnects to it whatever the budget. Call with
// the class's admission lock held, until the seat is recorded, so that
// two starts cannot both take the last of a budget.
func (s *Server) admitSeat(ctx context.Context, class *cohort.Class, userID string, capacity time.Duration) error {
	limit := class.Policy.Budget
	if limit == 0 {
		return nil
	}
	b, err := s.budgetOf(ctx, class)
	if err != nil {
		return err
	}
	// A running seat is a reconnect; a stopping one is about to end, and
	// its user's next seat is a new one.
	if userID != cohort.PoolUserID && slices.ContainsFunc(b.sessions, func(x *cohort.Session) bool { return x.UserID == userID && x.State.WantsRunning() }) {
		return nil
	}
	seat := b.rate.Seat(capacity)
	if b.committed+seat <= limit {
		return nil
	}
	money := func(v float64) string { return cost.Money(v, s.prices.Currency) }
	left := max(limit-b.committed, 0)
	return errors.Join(errOverBudget, cohort.Errorf(cohort.ECONFLICT, "the class's budget of %s has %s left, and a seat can cost up to %s (%s at %s an hour, to its hard stop): "+
		"no seat can start; what is left covers %s of one seat. An instructor can raise the budget, or shorten the maximum lifetime or extensions",
		money(limit), money(left), money(seat), cohort.Duration(capacity), money(b.rate.Hour()), cohort.Duration(hoursOf(left, b.rate.Hour()))))
}

func hoursOf(amount, hourly float64) time.Duration {
	if hourly <= 0 {
		return 0
	}
	return time.Duration(amount / hourly * float64(time.Hour)).Truncate(time.Minute)
}

// enforceBudget brings what a class has committed back within its budget
// after the budget changed. Its newest seats stop first, until the rest
// fit: a ready one after the class's warning time, its participant told
// at once (and the driver's backstop moved to then), one not ready yet at
// once. A seat marked to stop that fits again (the budget was raised, or
// removed) goes on. It returns how many seats stop.
func (s *Server) enforceBudget(ctx context.Context, class *cohort.Class) (stopping int, err error) {
	limit := class.Policy.Budget
	var b *budget
	if limit > 0 {
		if b, err = s.budgetOf(ctx, class); err != nil {
			return 0, err
		}
	} else {
		b = &budget{}
		if b.sessions, err = s.fresh.ListSessions(ctx, cohort.SessionFilter{ClassID: class.ID}); err != nil {
			return 0, err
		}
	}
	active := slices.DeleteFunc(slices.Clone(b.sessions), func(x *cohort.Session) bool { return x.EndedAt != nil || !x.State.WantsRunning() })
	// Unclaimed warm seats first (nobody loses work), then the newest.
	slices.SortFunc(active, func(a, c *cohort.Session) int {
		if a.Warm() != c.Warm() {
			if a.Warm() {
				return -1
			}
			return 1
		}
		return c.CreatedAt.Compare(a.CreatedAt)
	})
	now := s.now()
	// What the class commits if no seat stops for the budget.
	unmarked := func(x *cohort.Session) *cohort.Session { cp := *x; cp.BudgetStopAt = nil; return &cp }
	for _, sess := range active {
		b.committed += cost.Committed(unmarked(sess), b.rate, now, b.seatCap) - cost.Committed(sess, b.rate, now, b.seatCap)
	}
	for _, sess := range active {
		if limit == 0 || b.committed <= limit {
			if sess.BudgetStopAt != nil {
				if err := s.markBudgetStop(ctx, sess, class, nil); err != nil {
					return stopping, err
				}
			}
			continue
		}
		before := cost.Committed(unmarked(sess), b.rate, now, b.seatCap)
		if sess.State == cohort.StateReady && sess.ReadyAt != nil && !sess.Warm() {
			at := now.Add(class.Policy.Warn()).UTC()
			if sess.BudgetStopAt != nil && sess.BudgetStopAt.Before(at) {
				at = *sess.BudgetStopAt // told before: not later now
			}
			if err := s.markBudgetStop(ctx, sess, class, &at); err != nil {
				return stopping, err
			}
		} else {
			msg := fmt.Sprintf("stopped: the class's budget (%s) is below what its seats had committed", cost.Money(limit, s.prices.Currency))
			stopped, ok, err := s.stopWith(ctx, sess, cohort.CauseBudget, msg, msg)
			if err != nil {
				return stopping, err
			}
			if ok {
				sess = stopped
			}
		}
		stopping++
		b.committed += cost.Committed(sess, b.rate, now, b.seatCap) - before
	}
	return stopping, nil
}

// markBudgetStop sets (or with at nil, calls off) a ready seat's stop for
// its class's budget, stores its deadlines, tells its participant, and
// moves the driver's backstop.
func (s *Server) markBudgetStop(ctx context.Context, sess *cohort.Session, class *cohort.Class, at *time.Time) error {
	if equalTime(sess.BudgetStopAt, at) {
		return nil
	}
	if err := s.store.SetBudgetStop(ctx, sess.ID, at); err != nil {
		return err
	}
	sess.BudgetStopAt = at
	d, ok := timeouts.Compute(sess, class.Policy)
	if !ok {
		return nil
	}
	now := s.now().UTC()
	var warned *time.Time
	msg := "the stop for the class's budget is called off: the budget covers this session again"
	if at != nil {
		warned = &now
		msg = fmt.Sprintf("this session will stop at %s (in %s) %s; download your work now",
			at.Format("15:04 UTC"), cohort.Duration(at.Sub(now).Round(time.Minute)), timeouts.Why(cohort.CauseBudget))
	}
	if err := s.store.SetDeadlines(ctx, sess.ID, d.Stored(warned)); err != nil {
		return err
	}
	if s.sweeper != nil {
		s.sweeper.Reschedule(ctx, sess.ID, d.Hard)
	}
	s.sessionEvent(ctx, sess, msg)
	return nil
}

// holdClass serialises admission to one class, in this process and then
// across every replica on the database: per class, so that a 500-seat
// start-all holds up no other class. "" is the installation's lock (the
// monthly budget), taken after a class's.
func (s *Server) holdClass(ctx context.Context, classID string) (release func(), err error) {
	m, _ := s.admission.LoadOrStore(classID, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	held, err := s.store.Hold(ctx, "cohort admission "+classID)
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	return func() { held(); mu.Unlock() }, nil
}
