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
	sessions, err := s.store.ListSessions(ctx, cohort.SessionFilter{ClassID: class.ID})
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

// admitSeat refuses a new seat for a user when the class's budget cannot
// cover it running to its hard stop; a user who has a seat reconnects to
// it whatever the budget. Call with the class's admission lock held, until
// the seat is recorded, so that two starts cannot both take the last of a
// budget.
func (s *Server) admitSeat(ctx context.Context, class *cohort.Class, userID string) error {
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
	if slices.ContainsFunc(b.sessions, func(x *cohort.Session) bool { return x.UserID == userID && x.State.WantsRunning() }) {
		return nil
	}
	seat := b.rate.Hour() * b.seatCap.Hours()
	if b.committed+seat <= limit {
		return nil
	}
	money := func(v float64) string { return cost.Money(v, s.prices.Currency) }
	left := max(limit-b.committed, 0)
	return errors.Join(errOverBudget, cohort.Errorf(cohort.ECONFLICT, "the class's budget of %s has %s left, and a seat can cost up to %s (%s at %s an hour, to its hard stop): "+
		"no seat can start; what is left covers %s of one seat. An instructor can raise the budget, or shorten the maximum lifetime or extensions",
		money(limit), money(left), money(seat), cohort.Duration(b.seatCap), money(b.rate.Hour()), cohort.Duration(hoursOf(left, b.rate.Hour()))))
}

func hoursOf(amount, hourly float64) time.Duration {
	if hourly <= 0 {
		return 0
	}
	return time.Duration(amount / hourly * float64(time.Hour)).Truncate(time.Minute)
}

// enforceBudget stops a class's newest seats until what it has committed
// fits its budget again: after the budget was lowered below it.
func (s *Server) enforceBudget(ctx context.Context, class *cohort.Class) (stopped int, err error) {
	limit := class.Policy.Budget
	if limit == 0 {
		return 0, nil
	}
	b, err := s.budgetOf(ctx, class)
	if err != nil || b.committed <= limit {
		return 0, err
	}
	active := slices.DeleteFunc(slices.Clone(b.sessions), func(x *cohort.Session) bool { return x.EndedAt != nil || !x.State.WantsRunning() })
	slices.SortFunc(active, func(a, c *cohort.Session) int { return c.CreatedAt.Compare(a.CreatedAt) }) // newest first
	now := s.now()
	for _, sess := range active {
		if b.committed <= limit {
			break
		}
		before := cost.Committed(sess, b.rate, now, b.seatCap)
		msg := fmt.Sprintf("stopped: the class's budget (%s) is below what its seats had committed", cost.Money(limit, s.prices.Currency))
		stoppedSess, ok, err := s.stopWith(ctx, sess, cohort.CauseBudget, msg, msg)
		if err != nil {
			return stopped, err
		}
		if ok {
			stopped++
			sess = stoppedSess
		}
		// From now on it costs what it has cost and the stop, not what it
		// could.
		b.committed += cost.Committed(sess, b.rate, now, b.seatCap) - before
	}
	return stopped, nil
}

// classLock serialises admission to one class: per class, so that a
// 500-seat start-all holds up no other class.
func (s *Server) classLock(classID string) *sync.Mutex {
	m, _ := s.admission.LoadOrStore(classID, &sync.Mutex{})
	return m.(*sync.Mutex)
}
