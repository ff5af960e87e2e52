package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
)

// classCostOf meters a class's sessions at the terms fixed when each was
// admitted (older ones at the class's current runtime), estimates the
// class at its current runtime and policy, and with chart draws its
// spend over time.
func (s *Server) classCostOf(ctx context.Context, class *cohort.Class, chart bool) (*cohort.ClassCost, *spendChart, error) {
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
		return nil, nil, err
	}
	now := s.now()
	out.Budget = class.Policy.Budget
	for _, sess := range sessions {
		out.Committed += cost.Committed(sess, rate, now, seatCap)
	}
	s.meterKeptWork(ctx, class, out)
	if b := out.Budget; b > 0 && out.Committed >= cohort.BudgetWarnAt*b {
		seat := rate.Seat(seatCap)
		out.Warning = fmt.Sprintf("%.0f%% of the budget is committed: %s left, room for %d more seats", 100*out.Committed/b,
			cost.Money(max(b-out.Committed, 0), out.Currency), seatsFitting(b-out.Committed, seat))
	}
	emails, err := s.emailsOf(ctx, sessions)
	if err != nil {
		return nil, nil, err
	}
	byUser := map[string]*cohort.ParticipantCost{}
	for _, sess := range sessions {
		terms, _ := cost.Terms(sess, rate, seatCap)
		b := cost.Meter(sess, terms, now)
		p := byUser[sess.UserID]
		if p == nil {
			p = &cohort.ParticipantCost{Email: emails[sess.UserID]}
			byUser[sess.UserID] = p
		}
		p.Sessions++
		p.Hours += b.VM.Hours()
		p.Spent += b.Amount
		out.Spent += b.Amount
		if sess.EndedAt == nil && sess.State.Active() && sess.State != cohort.StateRequested {
			out.RunningSeats++
			out.RunningHour += terms.Hour()
		}
	}
	for _, p := range byUser {
		out.Participants = append(out.Participants, *p)
	}
	sort.Slice(out.Participants, func(i, j int) bool {
		a, b := out.Participants[i], out.Participants[j]
		return a.Spent > b.Spent || a.Spent == b.Spent && a.Email < b.Email
	})
	if !chart {
		return out, nil, nil
	}
	return out, chartSpend(sessions, rate, seatCap, now, out), nil
}

// meterKeptWork adds what the class's kept work costs, where it bills
// (GCE's work disks), to its spend: what it has cost, and until the
// class's work is deleted (its end and keep_work), what it will.
func (s *Server) meterKeptWork(ctx context.Context, class *cohort.Class, out *cohort.ClassCost) {
	storage, ok := s.work.(cohort.WorkStorage)
	if !ok {
		return
	}
	work, err := storage.KeptWork(ctx, class.ID)
	if err != nil {
		s.log.Warn("read the class's kept work for its spend", "class_id", class.ID, "error", err)
		return
	}
	perGB, err := s.prices.WorkMonth(class.Runtime.Zones)
	if err != nil {
		return // unpriced: the seats say so
	}
	until, _ := class.Policy.WorkExpires()
	spent, month, committed := cost.MeterWork(work, perGB, s.now(), until)
	out.KeptWork, out.KeptWorkMonth = len(work), month
	for _, w := range work {
		out.KeptWorkGB += w.GB
	}
	out.Spent += spent
	out.Committed += committed
}

// sessionCost is what one session has cost so far, for its participant;
// "" if its class's seats have no price.
func (s *Server) sessionCost(sess *cohort.Session, class *cohort.Class) string {
	rate, err := s.prices.Rate(s.driver, class.Runtime)
	if err != nil && sess.BillCap == 0 {
		return ""
	}
	terms, _ := cost.Terms(sess, rate, cost.SeatCap(class.Policy, s.driver))
	spent := cost.Money(cost.Meter(sess, terms, s.now()).Amount, s.prices.Currency)
	if sess.State.WantsRunning() {
		return spent + " so far, " + cost.Money(terms.Hour(), s.prices.Currency) + " an hour while it runs"
	}
	return spent
}

func seatsFitting(left, seat float64) int {
	if seat <= 0 || left <= 0 {
		return 0
	}
	return int(left / seat)
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// unclaimedLabel stands for the warm pool where a class's costs list
// its participants: what its seats cost while nobody had them.
const unclaimedLabel = "(warm seats, unclaimed)"

// emailsOf finds the owners' emails of sessions: one by one for a few,
// all users at once for many (a class of hundreds).
func (s *Server) emailsOf(ctx context.Context, sessions []*cohort.Session) (map[string]string, error) {
	emails := map[string]string{}
	for _, sess := range sessions {
		emails[sess.UserID] = ""
	}
	if len(emails) > 50 {
		users, err := s.store.ListUsers(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if _, ok := emails[u.ID]; ok {
				emails[u.ID] = u.Email
			}
		}
	} else {
		for id := range emails {
			if id == cohort.PoolUserID {
				continue
			}
			u, err := s.store.GetUser(ctx, id)
			if err != nil {
				return nil, err
			}
			emails[id] = u.Email
		}
	}
	if _, ok := emails[cohort.PoolUserID]; ok {
		emails[cohort.PoolUserID] = unclaimedLabel
	}
	return emails, nil
}

// getClassCost answers GET /v1/classes/:class/cost, for its instructors.
func (s *Server) getClassCost(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	out, _, err := s.classCostOf(c.Request.Context(), a.class, false)
	if err != nil {
		s.fail(c, err)
		return
	}
	if c.Query("format") == "csv" {
		c.Header("Content-Disposition", `attachment; filename="`+a.class.ID+`-cost.csv"`)
		c.Header("Content-Type", "text/csv; charset=utf-8")
		w := csv.NewWriter(c.Writer)
		w.Write([]string{"email", "sessions", "hours", "spent_" + strings.ToLower(out.Currency)})
		for _, p := range out.Participants {
			w.Write([]string{csvSafe(p.Email), fmt.Sprint(p.Sessions), fmt.Sprintf("%.3f", p.Hours), fmt.Sprintf("%.2f", p.Spent)})
		}
		w.Flush()
		return
	}
	c.JSON(http.StatusOK, out)
}

// spendChart is a class's spend over time, drawn as an SVG polyline
// against its budget and what it has committed.
type spendChart struct {
	Width, Height int
	// Points is the polyline of spend; BudgetY and CommittedY the
	// heights of those lines (-1: none); Top the amount at the top.
	Points              string
	BudgetY, CommittedY float64
	Top                 float64
	From, To            time.Time
}

// chartSpend samples what the class had spent at 48 moments from its
// first session to now.
func chartSpend(sessions []*cohort.Session, rate cost.Rate, seatCap time.Duration, now time.Time, cc *cohort.ClassCost) *spendChart {
	if len(sessions) == 0 {
		return nil
	}
	from := now
	for _, s := range sessions {
		if s.CreatedAt.Before(from) {
			from = s.CreatedAt
		}
	}
	ch := &spendChart{Width: 600, Height: 160, From: from, To: now, BudgetY: -1, CommittedY: -1}
	ch.Top = max(cc.Spent, cc.Committed, cc.Budget) * 1.1
	if ch.Top <= 0 {
		ch.Top = 1
	}
	y := func(v float64) float64 { return float64(ch.Height) * (1 - v/ch.Top) }
	const samples = 48
	var pts []string
	for i := range samples + 1 {
		t := from.Add(time.Duration(float64(now.Sub(from)) * float64(i) / samples))
		spent := 0.0
		for _, s := range sessions {
			if s.CreatedAt.After(t) {
				continue
			}
			terms, _ := cost.Terms(s, rate, seatCap)
			if s.EndedAt != nil && s.EndedAt.After(t) {
				at := *s // still running at t
				at.EndedAt = nil
				s = &at
			}
			spent += cost.Meter(s, terms, t).Amount
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", float64(ch.Width)*float64(i)/samples, y(spent)))
	}
	ch.Points = strings.Join(pts, " ")
	if cc.Budget > 0 {
		ch.BudgetY = y(cc.Budget)
	}
	if cc.Committed > 0 {
		ch.CommittedY = y(cc.Committed)
	}
	return ch
}
