package timeouts

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cohortdev/cohort"
)

// Enqueuer asks the provisioner to act on a session soon.
type Enqueuer interface {
	Enqueue(ctx context.Context, sessionID string) error
}

// Options configure a Sweeper.
type Options struct {
	Store    cohort.Store
	Driver   cohort.Driver
	Enqueuer Enqueuer
	// Materials, if set, is pruned of what no class needs (work.go).
	Materials Pruner
	// Now returns the current time; time.Now if nil.
	Now    func() time.Time
	Logger *slog.Logger
}

// Sweeper warns and stops sessions whose deadlines come or came.
type Sweeper struct {
	store     cohort.Store
	driver    cohort.Driver
	enqueuer  Enqueuer
	now       func() time.Time
	log       *slog.Logger
	materials Pruner

	// When the slower parts of a sweep last ran (work.go): sweeps may
	// overlap (a periodic job and the scheduler's endpoint).
	mu       sync.Mutex
	workAt   time.Time // the last look for expired work
	prunedAt time.Time // the last prune of materials
}

// due says whether a part of the sweep last run at *last is due again
// at now, every apart, and if so marks it run.
func (s *Sweeper) due(last *time.Time, every time.Duration, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(*last) < every {
		return false
	}
	*last = now
	return true
}

// New returns a Sweeper.
func New(opts Options) *Sweeper {
	s := &Sweeper{store: opts.Store, driver: opts.Driver, enqueuer: opts.Enqueuer, materials: opts.Materials, now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Stats count what a sweep did.
type Stats struct {
	Checked, Warned, Expired, Revived int
	// WorkDeleted lists the classes whose participants' work was deleted.
	WorkDeleted []string
	// VersionsPruned counts the materials versions deleted.
	VersionsPruned int
}

// Sweep looks at every ready session whose deadline is within its warning
// time (or not computed yet), and warns or stops it as its deadlines say.
// It is safe to run at any time, twice, or late: every decision is
// re-derived from the stored state.
func (s *Sweeper) Sweep(ctx context.Context) (Stats, error) {
	var st Stats
	now := s.now()
	due, err := s.store.DueSessions(ctx, now)
	if err != nil {
		return st, err
	}
	classes := map[string]*cohort.Class{}
	for _, sess := range due {
		class, ok := classes[sess.ClassID]
		if !ok {
			if class, err = s.store.GetClass(ctx, sess.ClassID); err != nil {
				return st, fmt.Errorf("class of session %s: %w", sess.ID, err)
			}
			classes[sess.ClassID] = class
		}
		st.Checked++
		outcome, err := s.check(ctx, sess, class, now)
		if err != nil {
			return st, err
		}
		switch outcome {
		case warned:
			st.Warned++
		case expired:
			st.Expired++
		case revived:
			st.Revived++
		}
	}
	st.WorkDeleted, err = s.expireWork(ctx, now)
	st.VersionsPruned = s.pruneMaterials(ctx, now)
	return st, err
}

// ExpireIfDue stops one session if a deadline of it has passed, and does
// nothing otherwise: for callers that may be late or repeat themselves
// (Cloud Scheduler delivers at least once). It reports whether it stopped it.
func (s *Sweeper) ExpireIfDue(ctx context.Context, sessionID string) (bool, error) {
	sess, err := s.store.GetSession(ctx, sessionID)
	if err != nil {
		return false, err
	}
	if sess.State != cohort.StateReady {
		return false, nil // not running, or already being stopped
	}
	class, err := s.store.GetClass(ctx, sess.ClassID)
	if err != nil {
		return false, err
	}
	outcome, err := s.check(ctx, sess, class, s.now())
	if err == nil && outcome != expired {
		// Called early: the backstop was set before a deadline it did
		// not hear of.
		if d, ok := Compute(sess, class.Policy); ok {
			s.Reschedule(ctx, sess.ID, d.Hard)
		}
	}
	return outcome == expired, err
}

// Reschedule passes a session's later hard deadline on to a driver with
// a backstop of its own (cohort.Rescheduler). A failure is logged: the
// sweep still stops the session in time, and the driver's last layer
// (GCE's max run duration) holds in any case.
func (s *Sweeper) Reschedule(ctx context.Context, sessionID string, deadline time.Time) {
	r, ok := s.driver.(cohort.Rescheduler)
	if !ok {
		return
	}
	if err := r.Reschedule(context.WithoutCancel(ctx), sessionID, deadline); err != nil {
		s.log.Error("move the session's backstop to its deadline", "session_id", sessionID, "error", err)
	}
}

type outcome int

const (
	unchanged outcome = iota
	warned
	expired
	revived // a near stop was called off: kernels were in use
)

func (s *Sweeper) check(ctx context.Context, sess *cohort.Session, class *cohort.Class, now time.Time) (outcome, error) {
	d, ok := Compute(sess, class.Policy)
	if !ok {
		return unchanged, nil
	}
	result := unchanged
	kernelsKnown := true
	if d.Warning(now) == cohort.CauseIdle {
		// About to warn or stop for idleness: ask the kernels first, so
		// that a training run with no browser open keeps its session.
		moved, known, err := s.kernelActivity(ctx, sess, class, now, d)
		if err != nil {
			return unchanged, err
		}
		kernelsKnown = known
		if moved {
			d, _ = Compute(sess, class.Policy)
			if d.Warning(now) == "" {
				result = revived
			}
		}
	}
	next, cause := d.Next()
	warnedAt := sess.WarnedAt
	switch {
	case !now.Before(next) && cause == cohort.CauseIdle && !kernelsKnown && now.Before(next.Add(UnknownGrace)):
		// A notebook too busy to answer may be training: give it a while
		// rather than stop it on no news.
		s.log.Warn("idle stop postponed: kernels did not answer", "session_id", sess.ID)
	case !now.Before(next):
		return expired, s.expire(ctx, sess, cause, class.Policy)
	case d.Warning(now) != "" && (warnedAt == nil || warnedAt.Before(d.WarnAt())):
		if err := s.warn(ctx, sess, cause, next, now); err != nil {
			return unchanged, err
		}
		warnedAt, result = &now, warned
	case d.Warning(now) == "":
		warnedAt = nil // the deadline moved away: warn again next time
	}
	if sess.Warm() {
		// Not stored: a claim may land meanwhile, and a warm seat's
		// deadlines would then hold back its participant's checks. Its
		// check_at stays empty, so each sweep computes them (no I/O).
		return result, nil
	}
	if stored := d.Stored(warnedAt); !stored.Equal(sess.Deadlines()) {
		return result, s.store.SetDeadlines(ctx, sess.ID, stored)
	}
	return result, nil
}

// UnknownGrace is how long past its idle deadline a session whose kernels
// cannot be asked is kept (the hard deadline still applies).
const UnknownGrace = 15 * time.Minute

// kernelActivity records use the kernels report. It reports whether the
// session's last activity moved, and whether the kernels could be asked.
func (s *Sweeper) kernelActivity(ctx context.Context, sess *cohort.Session, class *cohort.Class, now time.Time, d Deadlines) (moved, known bool, err error) {
	in, err := s.driver.Inspect(ctx, cohort.NotebookSpec{
		SessionID: sess.ID, ClassID: sess.ClassID, Token: sess.NotebookToken, BasePath: sess.BasePath(), Runtime: class.Runtime,
	})
	if err != nil || in.State != cohort.InstanceReady || !in.KernelActivityKnown {
		s.log.Warn("kernel activity unknown", "session_id", sess.ID, "error", err, "observed", in.State)
		if in.State == cohort.InstanceExited || in.State == cohort.InstanceAbsent || in.State == cohort.InstanceInterrupted {
			return false, true, nil // gone: nothing is training there; the reconciler ends it
		}
		return false, false, nil
	}
	seen := in.LastKernelActivity
	if in.KernelBusy && !class.Policy.IgnoreBusyKernels {
		seen = now
	}
	if !seen.After(d.LastActivity) {
		return false, true, nil
	}
	if err := s.store.RecordActivity(ctx, sess.ID, seen); err != nil {
		return false, true, err
	}
	sess.LastActivityAt = &seen
	return true, true, nil
}

func (s *Sweeper) warn(ctx context.Context, sess *cohort.Session, cause cohort.EndCause, at, now time.Time) error {
	msg := fmt.Sprintf("this session will stop at %s (in %s) %s", at.UTC().Format("15:04 UTC"), cohort.Duration(at.Sub(now).Round(time.Minute)), Why(cause))
	switch cause {
	case cohort.CauseIdle:
		msg += "; use the notebook, or keep it alive (`cohort session keepalive`), to keep going"
	case cohort.CauseMaxLifetime:
		msg += "; download your work now (an instructor can extend the session)"
	default:
		msg += "; download your work now"
	}
	s.log.Info("session warned", "session_id", sess.ID, "cause", cause, "at", at)
	return s.store.AppendEvent(ctx, &cohort.Event{SessionID: sess.ID, Time: now.UTC(), State: sess.State, Message: msg})
}

// Why says in words why a session stops for cause.
func Why(cause cohort.EndCause) string {
	switch cause {
	case cohort.CauseIdle:
		return "because nobody has used it"
	case cohort.CauseMaxLifetime:
		return "because it reaches the class's maximum session length"
	case cohort.CauseClassEnded:
		return "because the class ends"
	case cohort.CauseBudget:
		return "because the class's budget was lowered below what its seats can cost"
	case cohort.CauseUnclaimed:
		return "because nobody took this warm seat before its window ended"
	}
	return ""
}

func (s *Sweeper) expire(ctx context.Context, sess *cohort.Session, cause cohort.EndCause, p cohort.Policy) error {
	now := s.now().UTC()
	var reason string
	switch cause {
	case cohort.CauseIdle:
		reason = fmt.Sprintf("stopped after %s without use (idle timeout)", p.IdleTimeout)
	case cohort.CauseMaxLifetime:
		reason = "stopped at the class's maximum session length"
	case cohort.CauseClassEnded:
		reason = "stopped because the class ended"
	case cohort.CauseBudget:
		reason = "stopped because the class's budget was lowered below what its seats could cost"
	case cohort.CauseUnclaimed:
		reason = "stopped: a warm seat nobody took before its window ended"
	}
	if !sess.RequestStop(now, cause, reason) {
		return nil // it stopped meanwhile
	}
	err := s.store.UpdateSession(ctx, sess, &cohort.Event{Time: now, State: sess.State, Message: reason + ". " + s.driver.FilesNote()})
	if cohort.ErrorCode(err) == cohort.ECONFLICT {
		return nil // it changed meanwhile (stopped, used): the next sweep decides again
	}
	if err != nil {
		return err
	}
	s.log.Info("session expired", "session_id", sess.ID, "cause", cause)
	if err := s.enqueuer.Enqueue(ctx, sess.ID); err != nil {
		s.log.Error("enqueue expired session", "session_id", sess.ID, "error", err)
	}
	return nil
}
