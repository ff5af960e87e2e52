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
	"github.com/cohortdev/cohort/jupyter"
)

// PoolEnqueuer asks for a look at a class's warm seats at a time (zero:
// soon) (jobs.Queue). Without one, the server tends the pool itself
// after each change, and only then.
type PoolEnqueuer interface {
	EnqueuePool(ctx context.Context, classID string, at time.Time) error
}

// running are the states of a seat that runs or starts.
var running = []cohort.SessionState{cohort.StateRequested, cohort.StateProvisioning, cohort.StateReady}

// claimWarm gives a user one of the class's warm seats, if they have no
// seat of the class and it has one: a ready one first (the oldest), else
// the one nearest to ready. A ready seat's notebook gets a new token
// before it is theirs, and only if nobody has used it (no kernel, no
// connection: nobody can open an unclaimed seat, this checks it); one
// that fails is stopped, and no other ready seat is tried for this
// Start, so that a fault of every seat (an image without cohort's
// extension) cannot burn the pool in one click. A seat set to stop for
// the budget, or whose admitted life would end before the participant's
// lifetime, is left to the pool. nil when there is none to take. Call
// under the class's admission lock, which every claim and every change
// of the pool takes: the store's claim is atomic on its own as well.
func (s *Server) claimWarm(ctx context.Context, class *cohort.Class, userID string) (*cohort.Session, error) {
	// Once a notebook has the new token, the claim must be recorded even
	// if the participant's request goes away.
	ctx = context.WithoutCancel(ctx)
	mine, err := s.fresh.ListSessions(ctx, cohort.SessionFilter{ClassID: class.ID, UserID: userID, States: cohort.ActiveStates})
	if err != nil || len(mine) > 0 {
		return nil, err
	}
	pool, err := s.fresh.ListSessions(ctx, cohort.SessionFilter{ClassID: class.ID, UserID: cohort.PoolUserID, States: running})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(pool, nearestReady)
	fits := func(string) bool { return true }
	if f, ok := s.claimer.(cohort.SeatFilter); ok && len(pool) > 0 {
		if fits, err = f.ClaimFilter(ctx, class.ID, userID); err != nil {
			// A seat of its own: its start says what is wrong.
			s.log.Warn("no warm seat: cannot tell which fit the participant", "class_id", class.ID, "user_id", userID, "error", err)
			return nil, nil
		}
	}
	now, handedOver := s.now(), false
	for _, w := range pool {
		life := cost.Life(w)
		if w.BudgetStopAt != nil || life > 0 && w.CreatedAt.Add(life).Before(now.Add(class.Policy.MaxLifetime.D())) || !fits(w.ID) {
			continue
		}
		token := w.NotebookToken
		if w.State == cohort.StateReady {
			if handedOver {
				continue
			}
			handedOver, token = true, cohort.NewSecret("")
			if err := s.handOver(ctx, w, token); err != nil {
				s.log.Warn("a warm seat could not be handed over; stopping it", "session_id", w.ID, "error", err)
				if _, _, err := s.stopWith(ctx, w, cohort.CauseFailure, "stopped: the warm seat could not be handed over", "the warm seat did not take a new token"); err != nil {
					return nil, err
				}
				continue
			}
		}
		sess, err := s.store.ClaimSession(ctx, w.ID, userID, token, now.UTC())
		if cohort.ErrorCode(err) == cohort.ECONFLICT {
			continue // it stopped meanwhile
		}
		if err != nil {
			return nil, err
		}
		s.log.Info("warm seat claimed", "session_id", sess.ID, "class_id", class.ID, "user_id", userID, "state", sess.State)
		s.claimed(ctx, class, sess)
		return sess, nil
	}
	return nil, nil
}

// nearestReady orders warm seats by how soon they can serve: ready ones
// (the oldest first), then those being made, then those asked for.
func nearestReady(a, b *cohort.Session) int {
	rank := func(s *cohort.Session) int {
		switch s.State {
		case cohort.StateReady:
			return 0
		case cohort.StateProvisioning:
			return 1
		}
		return 2
	}
	return cmp.Or(cmp.Compare(rank(a), rank(b)), a.StateChangedAt.Compare(b.StateChangedAt))
}

// handOver replaces a ready warm seat's notebook token, once it has seen
// that nobody used the notebook.
func (s *Server) handOver(ctx context.Context, w *cohort.Session, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: s.proxy.transport}
	st, err := jupyter.GetStatus(ctx, client, w.Address, w.BasePath(), w.NotebookToken)
	switch {
	case err != nil:
		return err
	case st.Kernels > 0 || st.Connections > 0:
		return fmt.Errorf("the notebook was used: %d kernels, %d connections", st.Kernels, st.Connections)
	}
	return jupyter.Claim(ctx, client, w.Address, w.BasePath(), w.NotebookToken, token)
}

// claimed tells the driver whose a claimed seat is now (GCE: its VM's
// labels and metadata, and its backstop's time), and asks for its first
// deadlines and a refill of the pool. The seat is the participant's
// whatever these say: they are logged.
func (s *Server) claimed(ctx context.Context, class *cohort.Class, sess *cohort.Session) {
	if s.claimer != nil {
		u, err := s.store.GetUser(ctx, sess.UserID)
		if err == nil {
			life := class.Policy.MaxLifetime.D() + sess.Extension.D()
			if sess.ReadyAt == nil {
				life += cohort.GCEStartTimeout
			}
			err = s.claimer.Claimed(ctx, cohort.NotebookSpec{SessionID: sess.ID, ClassID: sess.ClassID, UserID: u.ID, UserEmail: u.Email,
				Token: sess.NotebookToken, BasePath: sess.BasePath(), Runtime: class.Runtime, Deadline: s.now().Add(life),
				Materials: s.snapshot(class)})
		}
		if err != nil {
			s.log.Error("tell the driver of a claimed seat", "session_id", sess.ID, "error", err)
		}
	}
	if err := s.enqueuer.Enqueue(ctx, sess.ID); err != nil {
		s.log.Error("enqueue session", "session_id", sess.ID, "error", err)
	}
}

// poolChanged asks for a look at a class's warm seats now, and when its
// warm window opens if that is later: through the queue when there is
// one, else at once (call it without the class's admission lock).
func (s *Server) poolChanged(ctx context.Context, class *cohort.Class) {
	q, ok := s.enqueuer.(PoolEnqueuer)
	if !ok {
		if err := s.TendPool(ctx, class.ID); err != nil {
			s.log.Error("tend the warm seats", "class_id", class.ID, "error", err)
		}
		return
	}
	times := []time.Time{{}}
	if from, _, ok := class.Policy.WarmWindow(); ok && from.After(s.now()) {
		times = append(times, from)
	}
	for _, at := range times {
		if err := q.EnqueuePool(ctx, class.ID, at); err != nil {
			s.log.Error("enqueue a look at the warm seats", "class_id", class.ID, "error", err)
		}
	}
}

// failedWarmBackoff: while this many of a class's warm seats failed in
// warmFailWindow, no new one starts; a class whose seats cannot start
// (quota, stockout) must not pay for a stream of failed VMs.
const (
	failedWarmBackoff = 3
	warmFailWindow    = 10 * time.Minute
)

// TendPool brings a class's warm seats to what its schedule wants now:
// it starts the seats the pool lacks, within the class's seats and
// budgets, and stops those it no longer wants (outside the window, or
// more than participants are left to arrive). The newest stop first. It
// takes the class's admission lock, as claims do: a claim never gets a
// seat that is being stopped.
func (s *Server) TendPool(ctx context.Context, classID string) error {
	release, err := s.holdClass(ctx, classID)
	if err != nil {
		return err
	}
	defer release()
	class, err := s.fresh.GetClass(ctx, classID)
	if cohort.ErrorCode(err) == cohort.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	p, err := s.poolOf(ctx, class)
	if err != nil {
		return err
	}
	now := s.now()
	target := class.Policy.WarmTarget(now, p.left, class.Policy.Seats-p.taken)
	for i := len(p.warm) - 1; i >= target; i-- {
		w := p.warm[i]
		if _, _, err := s.stopWith(ctx, w, cohort.CauseUnclaimed, "stopped: the class needs fewer warm seats", "the warm seat is no longer needed"); err != nil {
			return err
		}
	}
	missing := target - len(p.warm)
	if missing > 0 && p.failed >= failedWarmBackoff {
		s.log.Warn("warm seats keep failing; not starting more for now", "class_id", class.ID, "failed", p.failed, "within", warmFailWindow)
		return nil
	}
	_, until, _ := class.Policy.WarmWindow()
	for range missing {
		w, _, err := s.newSeat(ctx, class, cohort.PoolUserID, cost.SeatCap(class.Policy, s.driver)+until.Sub(now))
		if errors.Is(err, errOverBudget) || cohort.ErrorCode(err) == cohort.ECONFLICT {
			s.log.Warn("a warm seat could not start", "class_id", class.ID, "error", cohort.ErrorMessage(err))
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.enqueuer.Enqueue(ctx, w.ID); err != nil {
			s.log.Error("enqueue session", "session_id", w.ID, "error", err)
		}
	}
	return nil
}

// pool is a class's seats as the warm pool sees them.
type pool struct {
	// warm are the unclaimed seats that run or start, ready ones first.
	warm []*cohort.Session
	// taken counts the seats that are not warm and running: participants'
	// and those stopping; left, the roster's participants without a seat.
	taken, left int
	// failed counts warm seats that failed within warmFailWindow.
	failed int
}

func (s *Server) poolOf(ctx context.Context, class *cohort.Class) (pool, error) {
	sessions, err := s.fresh.ListSessions(ctx, cohort.SessionFilter{ClassID: class.ID})
	if err != nil {
		return pool{}, err
	}
	members, err := s.store.ListMembers(ctx, class.ID)
	if err != nil {
		return pool{}, err
	}
	var p pool
	for _, m := range members {
		if m.Role == cohort.MemberParticipant {
			p.left++
		}
	}
	recent := s.now().Add(-warmFailWindow)
	for _, sess := range sessions {
		if sess.Warm() && (sess.State == cohort.StateFailed || sess.EndCause == cohort.CauseFailure) && sess.StateChangedAt.After(recent) {
			p.failed++ // did not start, or could not be handed over
		}
		switch {
		case sess.Warm() && sess.State.WantsRunning():
			p.warm = append(p.warm, sess)
		case sess.State.Active():
			p.taken++
			if !sess.Warm() {
				p.left--
			}
		}
	}
	p.left = max(p.left, 0)
	slices.SortStableFunc(p.warm, nearestReady)
	return p, nil
}

func (s *Server) poolView(ctx context.Context, class *cohort.Class) (cohort.WarmPool, error) {
	v := cohort.WarmPool{Currency: cmp.Or(s.prices.Currency, "USD")}
	p, err := s.poolOf(ctx, class)
	if err != nil {
		return v, err
	}
	now := s.now()
	from, until, ok := class.Policy.WarmWindow()
	if ok {
		v.From, v.Until = &from, &until
		v.Target = class.Policy.WarmTarget(now, p.left, class.Policy.Seats-p.taken)
	}
	for _, w := range p.warm {
		if w.State == cohort.StateReady {
			v.Ready++
		} else {
			v.Starting++
		}
	}
	sessions, err := s.fresh.ListSessions(ctx, cohort.SessionFilter{ClassID: class.ID})
	if err != nil {
		return v, err
	}
	rate, rateErr := s.prices.Rate(s.driver, class.Runtime)
	seatCap := cost.SeatCap(class.Policy, s.driver)
	for _, sess := range sessions {
		warmUntil := now // unclaimed: all of its life
		switch {
		case sess.ClaimedAt != nil:
			v.Claimed++
			warmUntil = *sess.ClaimedAt
		case !sess.Warm():
			if ok && !sess.CreatedAt.Before(from) {
				v.ColdStarts++
			}
			continue
		}
		if rateErr == nil {
			r, _ := cost.Terms(sess, rate, seatCap)
			v.Cost += cost.MeterWithin(sess, r, now, sess.CreatedAt, warmUntil).Amount
		}
	}
	return v, nil
}

func (s *Server) getPool(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	v, err := s.poolView(c.Request.Context(), a.class)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// warmInput warms a class's seats now: a number of seats, or one for each
// participant on the roster yet to start, until a time (by default the
// class's end, or an hour after it opens).
type warmInput struct {
	Seats  int        `json:"seats"`
	Roster bool       `json:"roster"`
	Until  *time.Time `json:"until"`
}

// warmNow starts warming a class's seats at once, whatever its schedule
// said: its warm window begins now.
func (s *Server) warmNow(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var in warmInput
	if err := decode(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if in.Seats == 0 && !in.Roster {
		s.fail(c, cohort.Invalid("seats", "name how many seats to warm (seats), or ask for one per participant yet to start (roster)"))
		return
	}
	now := s.now().UTC()
	w := &cohort.Warm{Seats: in.Seats, Roster: in.Roster, From: &now, Until: in.Until}
	p := a.class.Policy
	p.Warm = w
	if from, until, ok := p.WarmWindow(); ok && in.Until == nil && until.Sub(from) > cohort.MaxWarmWindow {
		s.fail(c, cohort.Invalid("until", "the class ends at %s, more than %s from now: say until when to keep seats warm",
			until.Format(time.RFC3339), cohort.Duration(cohort.MaxWarmWindow)))
		return
	}
	s.setWarm(c, a.class, w, fmt.Sprintf("warm now: %d seats, roster %t", in.Seats, in.Roster))
}

// drainPool stops a class's unclaimed warm seats and its warm schedule.
func (s *Server) drainPool(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.setWarm(c, a.class, nil, "drained")
}

// setWarm sets a class's warm setting, brings its pool to it at once and
// answers with the pool.
func (s *Server) setWarm(c *gin.Context, class *cohort.Class, w *cohort.Warm, detail string) {
	ctx := c.Request.Context()
	class.Policy.Warm = w
	// Removing the setting needs no check (nor the cloud's image
	// lookup): a drain must work whatever else is wrong.
	if w != nil {
		if err := s.validate(ctx, class); err != nil {
			s.fail(c, err)
			return
		}
	}
	if err := s.store.UpdateClass(ctx, class); err != nil {
		s.fail(c, err)
		return
	}
	s.audit(ctx, currentUser(c), cohort.AuditEvent{Action: cohort.AuditWarmChanged, ClassID: class.ID, Detail: detail})
	if err := s.TendPool(ctx, class.ID); err != nil {
		s.fail(c, err)
		return
	}
	v, err := s.poolView(ctx, class)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// warmTail is how long after a warm window closes its class is still
// looked at: its unclaimed seats stop then (the sweeper stops them too).
const warmTail = 10 * time.Minute

// WarmClasses returns the classes whose warm window is open, or opens
// within soon (with the time it opens), or closed within warmTail.
func (s *Server) WarmClasses(ctx context.Context, soon time.Duration) (map[string]time.Time, error) {
	classes, err := s.store.ListClasses(ctx)
	if err != nil {
		return nil, err
	}
	now, out := s.now(), map[string]time.Time{}
	for _, c := range classes {
		from, until, ok := c.Policy.WarmWindow()
		if !ok || from.After(now.Add(soon)) || now.After(until.Add(warmTail)) {
			continue
		}
		if !from.After(now) {
			from = time.Time{}
		}
		out[c.ID] = from
	}
	return out, nil
}
