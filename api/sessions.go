package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
)

// sessionView is a session as clients see it: no address, no token.
type sessionView struct {
	*cohort.Session
	// URL opens the notebook, on its own origin, once the session is ready:
	// a browser without its cookie is sent through the app to get one.
	URL string `json:"url,omitempty"`
	// StopsAt is the next stop and StopCause its reason; Warning is set
	// (to the cause) once the stop is within the class's warn_before.
	StopsAt   *time.Time      `json:"stops_at,omitempty"`
	StopCause cohort.EndCause `json:"stop_cause,omitempty"`
	Warning   cohort.EndCause `json:"warning,omitempty"`
}

func (s *Server) view(sess *cohort.Session) sessionView {
	v := sessionView{Session: sess}
	if sess.State == cohort.StateReady {
		v.URL = s.origins.origin(sess.ID) + "/tree"
	}
	return v
}

func (s *Server) startSession(c *gin.Context) {
	ctx := c.Request.Context()
	u := currentUser(c)
	a, err := s.classFor(c, c.Param("class"))
	if err != nil {
		s.fail(c, err)
		return
	}
	class := a.class
	if err := classOpen(class, s.now(), a.teaches()); err != nil {
		s.fail(c, err)
		return
	}
	sess, created, err := s.startSeat(ctx, class.ID, u.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if sess.State == cohort.StateStopping {
		s.fail(c, cohort.Errorf(cohort.ECONFLICT, "your previous session %s is still stopping; start again in a moment", sess.ID))
		return
	}
	// Queue even on reconnect: it costs little and heals a session whose
	// job was lost.
	if err := s.enqueuer.Enqueue(ctx, sess.ID); err != nil {
		// The session is recorded; the periodic resync will pick it up.
		s.log.Error("enqueue session", "session_id", sess.ID, "error", err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.log.Info("session requested", "session_id", sess.ID, "class_id", class.ID, "user_id", u.ID)
	}
	if created && sess.ClaimedAt != nil {
		s.poolChanged(ctx, class) // refill
	}
	c.Header("Location", "/v1/sessions/"+sess.ID)
	c.JSON(status, s.view(sess))
}

// session loads the session named in the path for the current user.
func (s *Server) session(c *gin.Context) (sessionAccess, error) {
	return s.sessionFor(c.Request.Context(), currentUser(c), c.Param("session"))
}

func (s *Server) getSession(c *gin.Context) {
	a, err := s.session(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	class, err := s.store.GetClass(c.Request.Context(), a.session.ClassID)
	if err != nil {
		s.fail(c, err)
		return
	}
	v := s.view(a.session)
	s.withDeadlines(&v, class.Policy)
	c.JSON(http.StatusOK, v)
}

// listSessions lists the caller's sessions; with class_id, an instructor
// of the class (or an admin) gets every session of the class; with
// all=true, an admin gets everyone's.
func (s *Server) listSessions(c *gin.Context) {
	u := currentUser(c)
	f := cohort.SessionFilter{ClassID: c.Query("class_id"), UserID: u.ID}
	switch {
	case u.Role == cohort.RoleAdmin && (c.Query("all") == "true" || f.ClassID != ""):
		f.UserID = ""
	case f.ClassID != "":
		role, err := s.store.MemberRole(c.Request.Context(), f.ClassID, u.Email)
		if err != nil {
			s.fail(c, err)
			return
		}
		if role == cohort.MemberInstructor {
			f.UserID = ""
		}
	}
	if st := c.Query("state"); st != "" {
		switch state := cohort.SessionState(st); state {
		case cohort.StateRequested, cohort.StateProvisioning, cohort.StateReady, cohort.StateStopping, cohort.StateStopped, cohort.StateFailed:
			f.States = []cohort.SessionState{state}
		default:
			s.fail(c, cohort.Invalid("state", "unknown state %q", st))
			return
		}
	}
	list, err := s.store.ListSessions(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	views := make([]sessionView, len(list))
	classes := map[string]*cohort.Class{}
	for i, sess := range list {
		views[i] = s.view(sess)
		class, ok := classes[sess.ClassID]
		if !ok {
			if class, err = s.store.GetClass(c.Request.Context(), sess.ClassID); err != nil {
				s.fail(c, err)
				return
			}
			classes[sess.ClassID] = class
		}
		s.withDeadlines(&views[i], class.Policy)
	}
	c.JSON(http.StatusOK, gin.H{"sessions": views})
}

func (s *Server) stopSession(c *gin.Context) {
	a, err := s.session(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	sess, stopped, err := s.stop(c.Request.Context(), currentUser(c), a)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusOK // already stopping or ended
	if stopped {
		status = http.StatusAccepted
	}
	c.JSON(status, s.view(sess))
}

// stop asks for a session to stop on behalf of u. It reports whether it
// did (false: the session was already stopping or ended).
func (s *Server) stop(ctx context.Context, u *cohort.User, a sessionAccess) (*cohort.Session, bool, error) {
	who, cause := u.Email, cohort.CauseUser
	if !a.owner {
		who, cause = "instructor "+u.Email, cohort.CauseInstructor
	}
	sess, stopped, err := s.stopWith(ctx, a.session, cause, "stopped by "+who, "stop requested by "+who)
	if !stopped {
		return sess, false, err
	}
	if !a.owner {
		s.audit(ctx, u, cohort.AuditEvent{Action: cohort.AuditSessionStopped, ClassID: sess.ClassID, SessionID: sess.ID, Subject: sess.UserID})
	}
	s.log.Info("session stop requested", "session_id", sess.ID, "user_id", u.ID)
	return sess, true, nil
}

// stopWith asks for a session's stop for a cause, with the reason it
// records and the event its participant sees; false if it was not
// running.
func (s *Server) stopWith(ctx context.Context, sess *cohort.Session, cause cohort.EndCause, reason, event string) (*cohort.Session, bool, error) {
	for range 5 { // a concurrent reconcile step may win the version race
		now := s.now().UTC()
		if !sess.RequestStop(now, cause, reason) {
			return sess, false, nil
		}
		err := s.store.UpdateSession(ctx, sess, &cohort.Event{Time: now, State: sess.State, Message: event})
		if cohort.ErrorCode(err) == cohort.ECONFLICT {
			if sess, err = s.store.GetSession(ctx, sess.ID); err != nil {
				return nil, false, err
			}
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if err := s.enqueuer.Enqueue(ctx, sess.ID); err != nil {
			s.log.Error("enqueue session", "session_id", sess.ID, "error", err)
		}
		return sess, true, nil
	}
	return nil, false, cohort.Errorf(cohort.ECONFLICT, "the session is changing too fast; try again")
}

// classOpen says whether a seat may start in class at now: never once the class
// has ended; before it opens, only by its instructors (to check the
// runtime, or to start every seat ahead of the class).
func classOpen(class *cohort.Class, now time.Time, teaches bool) error {
	if end := class.Policy.EndsAt; end != nil && !now.Before(*end) {
		return cohort.Errorf(cohort.ECONFLICT, "class %q ended at %s", class.Name, end.Format(time.RFC3339))
	}
	if begin := class.Policy.StartsAt; begin != nil && now.Before(*begin) && !teaches {
		return cohort.Errorf(cohort.ECONFLICT, "class %q opens at %s", class.Name, begin.Format(time.RFC3339))
	}
	return nil
}

// errOverBudget marks a start the class's budget refused.
var errOverBudget = errors.New("over budget")

// startSeat records a user's seat in a class, or finds the one they
// have: a warm seat if the class has one, else a new seat within the
// class's seats and budget. The class is read again under the class's
// admission lock: a budget, runtime or policy changed since the caller
// read it applies.
func (s *Server) startSeat(ctx context.Context, classID, userID string) (*cohort.Session, bool, error) {
	release, err := s.holdClass(ctx, classID)
	if err != nil {
		return nil, false, err
	}
	defer release()
	class, err := s.fresh.GetClass(ctx, classID)
	if err != nil {
		return nil, false, err
	}
	// As read under the lock: the class may have ended meanwhile.
	if err := classOpen(class, s.now(), true); err != nil {
		return nil, false, err
	}
	if sess, err := s.claimWarm(ctx, class, userID); err != nil || sess != nil {
		return sess, sess != nil, err
	}
	return s.newSeat(ctx, class, userID, cost.SeatCap(class.Policy, s.driver))
}

// newSeat records a new seat for a user (or the pool) that can bill for
// capacity, if the class's seats and budgets allow it. Its billing terms
// (rate and cap) are fixed now, so that later changes to the class do not
// change what it counts against the budget. Call under the class's
// admission lock.
func (s *Server) newSeat(ctx context.Context, class *cohort.Class, userID string, capacity time.Duration) (*cohort.Session, bool, error) {
	if err := s.admitSeat(ctx, class, userID, capacity); err != nil {
		return nil, false, err
	}
	// The installation's monthly budget, if it has one: one lock for all
	// classes, taken after the class's (always in that order).
	set, err := s.store.GetSettings(ctx)
	if err != nil {
		return nil, false, err
	}
	if set.MonthlyBudget > 0 {
		releaseAll, err := s.holdClass(ctx, "")
		if err != nil {
			return nil, false, err
		}
		defer releaseAll()
		if err := s.admitMonthly(ctx, class, userID, set.MonthlyBudget, capacity); err != nil {
			return nil, false, err
		}
	}
	sess := &cohort.Session{ID: cohort.NewID("ses"), ClassID: class.ID, UserID: userID, State: cohort.StateRequested,
		Driver: s.driver, NotebookToken: cohort.NewSecret("")}
	if rate, err := s.prices.Rate(s.driver, class.Runtime); err == nil {
		sess.BillVM, sess.BillDisk, sess.BillCap = rate.VM, rate.Disk, cohort.Duration(capacity)
	}
	return s.store.StartSession(ctx, sess, class.Policy.Seats)
}

// stopAll stops every running session of a class (its instructors, admins).
func (s *Server) stopAll(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	running, err := s.store.ListSessions(ctx, cohort.SessionFilter{ClassID: a.class.ID,
		States: []cohort.SessionState{cohort.StateRequested, cohort.StateProvisioning, cohort.StateReady}})
	if err != nil {
		s.fail(c, err)
		return
	}
	u, n := currentUser(c), 0
	for _, sess := range running {
		_, stopped, err := s.stop(ctx, u, sessionAccess{session: sess, owner: sess.UserID == u.ID})
		if err != nil {
			s.fail(c, err)
			return
		}
		if stopped {
			n++
		}
	}
	c.JSON(http.StatusOK, gin.H{"stopped": n})
}

// startAll starts a session for every participant on the class's roster
// who has none, before class, so that 9:00 is not a stampede. Seats count
// as usual; the idle timeout of early seats counts from the class's start.
func (s *Server) startAll(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	// Seats started after the class ended would only be stopped again.
	if err := classOpen(a.class, s.now(), true); err != nil {
		s.fail(c, err)
		return
	}
	members, err := s.store.ListMembers(ctx, a.class.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	started, running, full, overBudget := 0, 0, 0, 0
	for _, m := range members {
		if m.Role != cohort.MemberParticipant {
			continue
		}
		u, err := s.store.EnsureUser(ctx, m.Email, cohort.RoleParticipant)
		if err != nil {
			s.fail(c, err)
			return
		}
		sess, created, err := s.startSeat(ctx, a.class.ID, u.ID)
		switch {
		case errors.Is(err, errOverBudget):
			overBudget++
			continue
		case cohort.ErrorCode(err) == cohort.ECONFLICT:
			full++
			continue
		case err != nil:
			s.fail(c, err)
			return
		case !created:
			running++
			continue
		}
		started++
		if err := s.enqueuer.Enqueue(ctx, sess.ID); err != nil {
			s.log.Error("enqueue session", "session_id", sess.ID, "error", err)
		}
	}
	if started > 0 && a.class.Policy.Warm != nil {
		s.poolChanged(ctx, a.class) // seats taken from the pool, and fewer left to arrive
	}
	s.audit(ctx, currentUser(c), cohort.AuditEvent{Action: cohort.AuditSessionsStarted, ClassID: a.class.ID,
		Detail: fmt.Sprintf("%d started, %d already running, %d without a seat, %d over the budget", started, running, full, overBudget)})
	c.JSON(http.StatusOK, gin.H{"started": started, "running": running, "no_seat": full, "over_budget": overBudget})
}
