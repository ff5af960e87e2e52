package api

import (
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
)

// classCostOf meters a class's sessions against the price table, at the
// class's current runtime.
func (s *Server) classCostOf(c *gin.Context, class *cohort.Class) (*cohort.ClassCost, error) {
	ctx := c.Request.Context()
	out := &cohort.ClassCost{Currency: s.prices.Currency, PricesChecked: s.prices.Checked, Participants: []cohort.ParticipantCost{}}
	rate, err := s.prices.Rate(s.driver, class.Runtime)
	if err != nil {
		out.Unpriced = cohort.ErrorMessage(err)
	}
	seatCap := cost.SeatCap(class.Policy, s.driver)
	e := cost.EstimateClass(class.Policy, rate, seatCap)
	out.SeatHour, out.AllSeatsHour, out.Typical, out.Max = e.Hour, e.AllSeatsHour, e.Typical, e.Max
	sessions, err := s.store.ListSessions(ctx, cohort.SessionFilter{ClassID: class.ID})
	if err != nil {
		return nil, err
	}
	now := s.now()
	out.Budget, out.Committed = class.Policy.Budget, cost.Committed(sessions, rate, now, seatCap)
	byUser := map[string]*cohort.ParticipantCost{}
	for _, sess := range sessions {
		b := cost.Meter(sess, rate, now)
		p := byUser[sess.UserID]
		if p == nil {
			u, err := s.store.GetUser(ctx, sess.UserID)
			if err != nil {
				return nil, err
			}
			p = &cohort.ParticipantCost{Email: u.Email}
			byUser[sess.UserID] = p
		}
		p.Sessions++
		p.Hours += b.VM.Hours()
		p.Spent += b.Amount
		out.Spent += b.Amount
		if sess.EndedAt == nil && sess.State != cohort.StateRequested {
			out.RunningSeats++
			out.RunningHour += rate.Hour()
		}
	}
	for _, p := range byUser {
		out.Participants = append(out.Participants, *p)
	}
	sort.Slice(out.Participants, func(i, j int) bool {
		a, b := out.Participants[i], out.Participants[j]
		return a.Spent > b.Spent || a.Spent == b.Spent && a.Email < b.Email
	})
	return out, nil
}

// getClassCost answers GET /v1/classes/:class/cost, for its instructors.
func (s *Server) getClassCost(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	out, err := s.classCostOf(c, a.class)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}
