package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
)

// monthSpend rolls up a month: what ended sessions cost comes from the
// store's monthly rollup (a row per class), what running ones have cost
// and can cost is metered from their records.
func (s *Server) monthSpend(ctx context.Context, month cost.Month) (*cohort.MonthSpend, error) {
	settings, err := s.store.GetSettings(ctx)
	if err != nil {
		return nil, err
	}
	// The running seats first: one that ends before the rollup is read
	// then counts twice (more, never less), not in neither.
	active, err := s.fresh.ListSessions(ctx, cohort.SessionFilter{States: cohort.ActiveStates})
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ListSpend(ctx, "")
	if err != nil {
		return nil, err
	}
	classes, err := s.store.ListClasses(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := &cohort.MonthSpend{Month: string(month), Currency: s.prices.Currency, Classes: []cohort.ClassSpend{}, Months: []cohort.MonthTotal{}}
	byClass := map[string]*cohort.ClassSpend{}
	class := func(id, name string) *cohort.ClassSpend {
		if byClass[id] == nil {
			byClass[id] = &cohort.ClassSpend{ClassID: id, ClassName: name}
		}
		return byClass[id]
	}
	totals := map[string]float64{}
	for _, r := range rows {
		totals[r.Month] += r.Amount
		if r.Month == string(month) {
			cs := class(r.ClassID, r.ClassName)
			cs.Spent += r.Amount
			cs.Sessions += r.Sessions
			cs.Committed += r.Amount // ended sessions commit what they cost
		}
	}
	type terms struct {
		rate    cost.Rate
		seatCap time.Duration
	}
	current := map[string]terms{}
	names := map[string]string{}
	for _, c := range classes {
		rate, _ := s.prices.Rate(s.driver, c.Runtime)
		current[c.ID], names[c.ID] = terms{rate, cost.SeatCap(c.Policy, s.driver)}, c.Name
	}
	for _, sess := range active {
		t, ok := current[sess.ClassID]
		if !ok {
			continue // its class was deleted under it
		}
		rate, _ := cost.Terms(sess, t.rate, t.seatCap)
		cost.EachMonth(sess, rate, now, func(m cost.Month, spent float64) {
			totals[string(m)] += spent
			if m == month {
				cs := class(sess.ClassID, "")
				cs.Spent += spent
				cs.Sessions++
			}
		})
		if month != cost.MonthOf(now) {
			continue
		}
		// A running seat commits all it can cost, the part of it before
		// this month too: more than it will, never less.
		cs := class(sess.ClassID, "")
		cs.Committed += cost.Committed(sess, t.rate, now, t.seatCap)
		if sess.State != cohort.StateRequested {
			cs.RunningSeats++
			cs.RunningHour += rate.Hour()
		}
	}
	thisMonth := month == cost.MonthOf(now)
	for _, cs := range byClass {
		if !thisMonth {
			cs.Committed = 0
		}
		cs.ClassName = cmp.Or(names[cs.ClassID], cs.ClassName) // renamed since, or deleted
		out.Spent += cs.Spent
		out.Committed += cs.Committed
		out.RunningSeats += cs.RunningSeats
		out.RunningHour += cs.RunningHour
		out.Classes = append(out.Classes, *cs)
	}
	slices.SortFunc(out.Classes, func(a, b cohort.ClassSpend) int {
		return cmp.Or(cmp.Compare(b.Spent, a.Spent), cmp.Compare(a.ClassName, b.ClassName), cmp.Compare(a.ClassID, b.ClassID))
	})
	for m, v := range totals {
		out.Months = append(out.Months, cohort.MonthTotal{Month: m, Spent: v})
	}
	slices.SortFunc(out.Months, func(a, b cohort.MonthTotal) int { return cmp.Compare(b.Month, a.Month) })
	if thisMonth {
		out.Budget = settings.MonthlyBudget
		if b := out.Budget; b > 0 && out.Committed >= cohort.BudgetWarnAt*b {
			out.Warning = fmt.Sprintf("%.0f%% of the installation's monthly budget is committed: %s left", 100*out.Committed/b, cost.Money(max(b-out.Committed, 0), out.Currency))
		}
	}
	return out, nil
}

// getSpend answers GET /v1/spend?month=2026-12 (this month if none), for
// admins.
func (s *Server) getSpend(c *gin.Context) {
	if err := requireAdmin(c); err != nil {
		s.fail(c, err)
		return
	}
	month := cost.MonthOf(s.now())
	if v := c.Query("month"); v != "" {
		var err error
		if month, err = cost.ParseMonth(v); err != nil {
			s.fail(c, err)
			return
		}
	}
	out, err := s.monthSpend(c.Request.Context(), month)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// getSettings answers GET /v1/settings, for admins.
func (s *Server) getSettings(c *gin.Context) {
	if err := requireAdmin(c); err != nil {
		s.fail(c, err)
		return
	}
	set, err := s.store.GetSettings(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, set)
}

// putSettings answers PUT /v1/settings, for admins: the monthly budget.
// A budget lowered below what the month has committed refuses new seats;
// running ones go on to their hard stops (a class's own budget stops
// them; docs/cost.md).
func (s *Server) putSettings(c *gin.Context) {
	if err := requireAdmin(c); err != nil {
		s.fail(c, err)
		return
	}
	var in cohort.Settings
	if err := decode(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if err := in.Validate(); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if err := s.store.SetSettings(ctx, &in); err != nil {
		s.fail(c, err)
		return
	}
	u := currentUser(c)
	s.audit(ctx, u, cohort.AuditEvent{Action: cohort.AuditSettingsChanged, Detail: fmt.Sprintf("monthly budget %s", cost.Money(in.MonthlyBudget, s.prices.Currency))})
	c.JSON(http.StatusOK, in)
}

// admitMonthly refuses a seat that the installation's monthly budget
// cannot cover to its hard stop. Call with the installation's admission
// lock held until the seat is recorded.
func (s *Server) admitMonthly(ctx context.Context, class *cohort.Class, userID string, budget float64, capacity time.Duration) error {
	// A running seat is a reconnect, as for a class's budget.
	if userID != cohort.PoolUserID {
		mine, err := s.fresh.ListSessions(ctx, cohort.SessionFilter{ClassID: class.ID, UserID: userID,
			States: []cohort.SessionState{cohort.StateRequested, cohort.StateProvisioning, cohort.StateReady}})
		if err != nil || len(mine) > 0 {
			return err
		}
	}
	rate, err := s.prices.Rate(s.driver, class.Runtime)
	if err != nil {
		return errors.Join(errOverBudget, cohort.Errorf(cohort.ECONFLICT, "the installation has a monthly budget, but this class's seats have no price: %s", cohort.ErrorMessage(err)))
	}
	m, err := s.monthSpend(ctx, cost.MonthOf(s.now()))
	if err != nil {
		return err
	}
	seat := rate.Seat(capacity)
	if m.Committed+seat <= budget {
		return nil
	}
	money := func(v float64) string { return cost.Money(v, s.prices.Currency) }
	return errors.Join(errOverBudget, cohort.Errorf(cohort.ECONFLICT, "the installation's monthly budget of %s has %s left this month, and a seat of this class can cost up to %s: "+
		"no seat can start. An admin can raise the monthly budget (cohort spend --set-budget)", money(budget), money(max(budget-m.Committed, 0)), money(seat)))
}
