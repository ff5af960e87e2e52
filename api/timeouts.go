package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/timeouts"
)

// Sweeper enforces deadlines; Cloud Scheduler jobs call it through the
// scheduler endpoints.
type Sweeper interface {
	Sweep(ctx context.Context) (timeouts.Stats, error)
	ExpireIfDue(ctx context.Context, sessionID string) (bool, error)
	// Reschedule passes a session's later hard deadline on to the
	// driver's own backstop, if it has one.
	Reschedule(ctx context.Context, sessionID string, deadline time.Time)
}

// CallerVerifier checks a machine caller's OIDC ID token.
type CallerVerifier interface {
	Verify(ctx context.Context, rawToken string) error
}

// withDeadlines fills a view with the session's deadlines under the
// class's current policy (computed now, so a policy change shows at once).
func (s *Server) withDeadlines(v *sessionView, p cohort.Policy) {
	d, ok := timeouts.Compute(v.Session, p)
	if !ok || !v.State.WantsRunning() {
		return
	}
	cp := *v.Session
	cp.IdleDeadline, cp.HardDeadline = &d.Idle, &d.Hard
	v.Session = &cp
	next, cause := d.Next()
	v.StopsAt, v.StopCause, v.Warning = &next, cause, d.Warning(s.now())
}

// refreshDeadlines recomputes and stores a ready session's deadlines after
// its activity, extension or policy changed; a deadline that moved out of
// the warning window clears the warning.
func (s *Server) refreshDeadlines(ctx context.Context, sess *cohort.Session, p cohort.Policy) error {
	d, ok := timeouts.Compute(sess, p)
	if !ok {
		return nil
	}
	warned := sess.WarnedAt
	if d.Warning(s.now()) == "" {
		warned = nil
	}
	return s.store.SetDeadlines(ctx, sess.ID, d.Stored(warned))
}

// retimed stores a session's deadlines after one of their inputs changed
// and returns its view with them.
func (s *Server) retimed(c *gin.Context, sess *cohort.Session, p cohort.Policy) (sessionView, error) {
	if err := s.refreshDeadlines(c.Request.Context(), sess, p); err != nil {
		return sessionView{}, err
	}
	v := s.view(sess)
	s.withDeadlines(&v, p)
	return v, nil
}

// keepAlive counts as use of the session: for a participant who got an
// idle warning while reading, not typing.
func (s *Server) keepAlive(c *gin.Context) {
	ctx := c.Request.Context()
	a, err := s.session(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	sess, u := a.session, currentUser(c)
	if sess.State != cohort.StateReady {
		s.fail(c, cohort.Errorf(cohort.ECONFLICT, "session %s is %s; only a ready session can be kept alive", sess.ID, sess.State))
		return
	}
	class, err := s.store.GetClass(ctx, sess.ClassID)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	if err := s.store.RecordActivity(ctx, sess.ID, now); err != nil {
		s.fail(c, err)
		return
	}
	sess.LastActivityAt = &now
	v, err := s.retimed(c, sess, class.Policy)
	if err != nil {
		s.fail(c, err)
		return
	}
	msg := "kept alive by " + u.Email
	if v.StopsAt != nil {
		msg += fmt.Sprintf("; it now stops at %s if unused", v.StopsAt.UTC().Format("15:04 UTC"))
	}
	s.sessionEvent(ctx, sess, msg)
	c.JSON(http.StatusOK, v)
}

// extendSession moves a session's hard deadline later, within the class's
// max_extension. Instructors of the class and admins only.
func (s *Server) extendSession(c *gin.Context) {
	ctx := c.Request.Context()
	a, err := s.session(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	sess, u := a.session, currentUser(c)
	role, err := s.store.MemberRole(ctx, sess.ClassID, u.Email)
	if err != nil {
		s.fail(c, err)
		return
	}
	if u.Role != cohort.RoleAdmin && role != cohort.MemberInstructor {
		s.fail(c, cohort.Errorf(cohort.EFORBIDDEN, "only instructors of the class can extend a session"))
		return
	}
	var in struct {
		By cohort.Duration `json:"by"`
	}
	if err := decode(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	class, err := s.store.GetClass(ctx, sess.ClassID)
	if err != nil {
		s.fail(c, err)
		return
	}
	p := class.Policy
	ext, err := timeouts.Extend(sess, p, in.By)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.store.SetExtension(ctx, sess.ID, ext); err != nil {
		s.fail(c, err)
		return
	}
	sess.Extension = ext
	v, err := s.retimed(c, sess, p)
	if err != nil {
		s.fail(c, err)
		return
	}
	if s.sweeper != nil && v.HardDeadline != nil {
		s.sweeper.Reschedule(ctx, sess.ID, *v.HardDeadline)
	}
	msg := fmt.Sprintf("%s extended this session by %s", u.Email, in.By)
	if v.HardDeadline != nil {
		msg += fmt.Sprintf("; it now stops at %s at the latest", v.HardDeadline.UTC().Format("15:04 UTC"))
	}
	s.sessionEvent(ctx, sess, msg)
	s.audit(ctx, u, cohort.AuditEvent{Action: cohort.AuditSessionExtended, ClassID: sess.ClassID, SessionID: sess.ID, Subject: sess.UserID, Detail: "by " + in.By.String()})
	c.JSON(http.StatusOK, v)
}

// sessionEvent tells the session's participant something in its events.
func (s *Server) sessionEvent(ctx context.Context, sess *cohort.Session, msg string) {
	err := s.store.AppendEvent(context.WithoutCancel(ctx), &cohort.Event{SessionID: sess.ID, Time: s.now().UTC(), State: sess.State, Message: msg})
	if err != nil {
		s.log.Error("record session event", "session_id", sess.ID, "error", err)
	}
}

// applyPolicy brings the deadlines of a class's running sessions in line
// with a changed policy, and tells their participants.
func (s *Server) applyPolicy(ctx context.Context, class *cohort.Class, old cohort.Policy) error {
	p := class.Policy
	if old.IdleTimeout == p.IdleTimeout && old.MaxLifetime == p.MaxLifetime && old.WarnBefore == p.WarnBefore &&
		old.IgnoreBusyKernels == p.IgnoreBusyKernels && equalTime(old.EndsAt, p.EndsAt) {
		return nil
	}
	running, err := s.store.ListSessions(ctx, cohort.SessionFilter{ClassID: class.ID, States: []cohort.SessionState{cohort.StateReady}})
	if err != nil {
		return err
	}
	for _, sess := range running {
		if err := s.refreshDeadlines(ctx, sess, p); err != nil {
			return err
		}
		if d, ok := timeouts.Compute(sess, p); ok {
			next, cause := d.Next()
			s.sessionEvent(ctx, sess, fmt.Sprintf("the instructor changed the class's time limits: this session now stops at %s (%s) unless used",
				next.UTC().Format("15:04 UTC"), cause))
		}
	}
	return nil
}

func equalTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// schedulerAuth admits only the configured Cloud Scheduler service account.
func (s *Server) schedulerAuth(c *gin.Context) {
	if s.scheduler == nil {
		s.fail(c, cohort.Errorf(cohort.EUNAUTHORIZED, "scheduler calls are not configured on this server"))
		return
	}
	tok := bearer(c.Request)
	if tok == "" {
		s.fail(c, cohort.Errorf(cohort.EUNAUTHORIZED, "a scheduler call needs an OIDC ID token as \"Authorization: Bearer TOKEN\""))
		return
	}
	if err := s.scheduler.Verify(c.Request.Context(), tok); err != nil {
		s.log.Warn("scheduler call refused", "path", c.Request.URL.Path, "error", err)
		s.fail(c, err)
		return
	}
	c.Next()
}

// schedulerSweep runs a sweep now (Cloud Scheduler's periodic backstop).
func (s *Server) schedulerSweep(c *gin.Context) {
	st, err := s.sweeper.Sweep(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"checked": st.Checked, "warned": st.Warned, "expired": st.Expired})
}

// schedulerExpire stops one session if its deadline passed. Delivery is
// at least once and may be late: a repeated or early call stops nothing
// (an early one moves the job to the session's deadline).
func (s *Server) schedulerExpire(c *gin.Context) {
	expired, err := s.sweeper.ExpireIfDue(c.Request.Context(), c.Param("session"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"expired": expired})
}
