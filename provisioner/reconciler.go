package provisioner

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
	"github.com/cohortdev/cohort/metrics"
)

// Options configure a Reconciler.
type Options struct {
	Store  cohort.Store
	Driver cohort.Driver
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// Timing; StartTimeout defaults to 3 minutes, Poll to 250ms.
	Timing Timing
	Logger *slog.Logger
	// Metrics hears how long starts and stops took (nil: not counted).
	Metrics *metrics.Metrics
	// Materials gives a starting session its class's materials (nil:
	// none are delivered).
	Materials Materials
}

// Materials gives the version of a class's materials that a session
// starting now gets (materials.Library): when the newest cannot be had,
// the one last had, with the error.
type Materials interface {
	Snapshot(ctx context.Context, m *cohort.Materials) (*cohort.Snapshot, *cohort.Materials, error)
}

// Reconciler applies Plan to sessions.
type Reconciler struct {
	store     cohort.Store
	driver    cohort.Driver
	now       func() time.Time
	timing    Timing
	log       *slog.Logger
	metrics   *metrics.Metrics
	materials Materials

	mu       sync.Mutex
	progress map[string]string // the last progress recorded, by provisioning session
}

// New returns a Reconciler with defaults filled in.
func New(opts Options) *Reconciler {
	r := &Reconciler{store: opts.Store, driver: opts.Driver, now: opts.Now, timing: opts.Timing, log: opts.Logger,
		metrics: opts.Metrics, materials: opts.Materials, progress: map[string]string{}}
	if r.now == nil {
		r.now = time.Now
	}
	if r.timing.StartTimeout == 0 {
		r.timing.StartTimeout = 3 * time.Minute
	}
	if r.timing.Poll == 0 {
		r.timing.Poll = 250 * time.Millisecond
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Result says when to reconcile the session again.
type Result struct {
	// Requeue asks for another pass right away (the session changed
	// under us); RequeueAfter for one after a while.
	Requeue      bool
	RequeueAfter time.Duration
}

// Reconcile takes one step for the session towards its desired state.
func (r *Reconciler) Reconcile(ctx context.Context, sessionID string) (Result, error) {
	s, err := r.store.GetSession(ctx, sessionID)
	if cohort.ErrorCode(err) == cohort.ENOTFOUND {
		return Result{}, nil // deleted with its class; nothing to do
	}
	if err != nil {
		return Result{}, err
	}
	spec, class, err := r.spec(ctx, s)
	if err != nil {
		return Result{}, err
	}
	in, err := r.driver.Inspect(ctx, spec)
	if err != nil {
		return Result{}, fmt.Errorf("inspect session %s: %w", s.ID, err)
	}
	step := Plan(s, in, r.now(), r.timing)
	log := r.log.With("session_id", s.ID, "state", s.State, "observed", in.State)
	if r.newProgress(s, in) {
		err := r.store.AppendEvent(ctx, &cohort.Event{SessionID: s.ID, Time: r.now().UTC(), State: s.State, Message: in.Progress})
		if err != nil {
			log.Error("record progress", "error", err)
		}
	}

	// Stop before recording: a crash in between leaves a state that says
	// "stop" again. Start after recording: a crash in between leaves
	// "provisioning" with nothing running, which Plan starts again.
	if step.Action == ActStop {
		if err := r.driver.Stop(ctx, s.ID); err != nil {
			return Result{}, fmt.Errorf("stop session %s: %w", s.ID, err)
		}
	}
	if step.State != "" {
		if err := r.record(ctx, s, step); err != nil {
			if cohort.ErrorCode(err) == cohort.ECONFLICT {
				return Result{Requeue: true}, nil
			}
			return Result{}, err
		}
		log.Info("session state changed", "to", step.State, "reason", step.Reason)
	}
	if step.Action == ActStart {
		spec.Progress = func(msg string) {
			err := r.store.AppendEvent(ctx, &cohort.Event{SessionID: s.ID, Time: r.now().UTC(), State: s.State, Message: msg})
			if err != nil {
				log.Error("record progress", "error", err)
			}
		}
		spec.Materials = r.snapshot(ctx, class, s, spec.Progress)
		if err := r.driver.Start(ctx, spec); err != nil {
			log.Error("start notebook", "error", err)
			reason := "the notebook could not be started; an administrator can find the cause in cohort's log"
			if cohort.ErrorCode(err) != cohort.EINTERNAL {
				reason = "the notebook could not be started: " + cohort.ErrorMessage(err)
			}
			return r.fail(ctx, s, reason)
		}
	}
	return Result{RequeueAfter: step.RequeueAfter}, nil
}

// newProgress says whether the driver reports a step of a start the
// participant has not been told yet (a VM's boot, say).
func (r *Reconciler) newProgress(s *cohort.Session, in cohort.Instance) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.State != cohort.StateProvisioning {
		delete(r.progress, s.ID)
		return false
	}
	if in.Progress == "" || in.Progress == r.progress[s.ID] {
		return false
	}
	r.progress[s.ID] = in.Progress
	return true
}

// snapshot returns the version of the class's materials a starting
// session gets, if the class has materials. One that cannot be fetched
// does not keep the participant from their work: the session starts with
// the version last had, or none, and says so.
func (r *Reconciler) snapshot(ctx context.Context, c *cohort.Class, s *cohort.Session, progress func(string)) *cohort.Snapshot {
	if c.Materials == nil || r.materials == nil || s.Warm() {
		return nil
	}
	snap, now, err := r.materials.Snapshot(ctx, c.Materials)
	// The class shows the version sessions get (a branch moved on) and
	// why a lookup failed, for its instructors: a token that expired
	// mid-course is theirs to replace.
	next := *c.Materials
	if err == nil {
		next.Version, next.Files, next.Bytes, next.Problem = now.Version, now.Files, now.Bytes, ""
	} else if p, ok := lookupProblem(next.Repo, err); ok {
		next.Problem = p
	}
	if next != *c.Materials {
		// An instructor's change meanwhile wins (ECONFLICT, left alone).
		if err := r.store.SwapMaterials(ctx, c.ID, c.Materials, &next); err != nil && cohort.ErrorCode(err) != cohort.ECONFLICT {
			r.log.Warn("record the class's materials as a session found them", "class_id", c.ID, "error", err)
		}
	}
	switch {
	case err == nil:
	case snap != nil:
		r.log.Warn("class materials not updated", "session_id", s.ID, "class_id", c.ID, "error", err)
		progress("the class's materials could not be updated (" + cohort.ErrorMessage(err) + "): you get the version last fetched")
	default:
		r.log.Error("class materials", "session_id", s.ID, "class_id", c.ID, "error", err)
		progress("the class's materials could not be fetched: " + cohort.ErrorMessage(err))
	}
	return snap
}

// lookupProblem is what a class shows of its repository's failed lookup:
// what its instructors can act on (a token refused, a ref gone), worded
// alike each time, so that a failing repository costs the class one
// write when it begins to fail and one when it recovers, not one per
// session. false: nothing to show (an archive; an internal error).
func lookupProblem(repo string, err error) (string, bool) {
	if repo == "" {
		return "", false
	}
	switch cohort.ErrorCode(err) {
	case cohort.EINVALID:
		return cohort.ErrorMessage(err), true
	case cohort.EUNAVAILABLE:
		return repo + " could not be reached from the server, or did not answer in time", true
	}
	return "", false
}

func (r *Reconciler) spec(ctx context.Context, s *cohort.Session) (cohort.NotebookSpec, *cohort.Class, error) {
	c, err := r.store.GetClass(ctx, s.ClassID)
	if err != nil {
		return cohort.NotebookSpec{}, nil, fmt.Errorf("class of session %s: %w", s.ID, err)
	}
	u, err := r.store.GetUser(ctx, s.UserID)
	if err != nil {
		return cohort.NotebookSpec{}, nil, fmt.Errorf("owner of session %s: %w", s.ID, err)
	}
	life := cost.RunLeft(s, r.now()) // as admitted, which its budget counted
	if life == 0 {
		life = c.Policy.MaxLifetime.D() + c.Policy.MaxExtension.D()
	}
	return cohort.NotebookSpec{
		SessionID: s.ID, ClassID: s.ClassID, UserID: s.UserID, UserEmail: u.Email,
		Token: s.NotebookToken, BasePath: s.BasePath(), Runtime: c.Runtime,
		MaxLifetime: life,
		Deadline:    r.deadline(s, c.Policy),
	}, c, nil
}

// deadline is the session's hard deadline if it is ready, else the
// latest it can be: ready within the start timeout from now. An
// unclaimed warm seat's is the end of its class's warm window: the
// driver's backstop stops it there even if cohort is down (a claim moves
// the backstop, cohort.Claimer).
func (r *Reconciler) deadline(s *cohort.Session, p cohort.Policy) time.Time {
	if _, until, ok := p.WarmWindow(); ok && s.Warm() {
		return until
	}
	if s.HardDeadline != nil {
		return *s.HardDeadline
	}
	life := p.MaxLifetime.D() + s.Extension.D()
	if admitted := cost.Life(s); admitted > 0 {
		life = min(life, admitted)
	}
	return r.now().Add(r.timing.StartTimeout + life)
}

// record writes the step's state change and its event in one update.
func (r *Reconciler) record(ctx context.Context, s *cohort.Session, step Step) error {
	now := r.now().UTC()
	was, since := s.State, s.StateChangedAt
	if step.State != s.State {
		s.StateChangedAt = now
	}
	s.State, s.Reason = step.State, step.Reason
	if step.Address != "" {
		s.Address = step.Address
	}
	msg := step.Message
	switch step.State {
	case cohort.StateFailed:
		s.EndCause = cohort.CauseFailure
		msg += ". " + r.driver.FilesNote()
	case cohort.StateStopped:
		msg += ". " + r.driver.FilesNote()
	}
	switch step.State {
	case cohort.StateReady:
		if s.ReadyAt == nil {
			s.ReadyAt = &now
		}
	case cohort.StateStopped, cohort.StateFailed:
		s.EndedAt = &now
	}
	if s.State != cohort.StateProvisioning {
		r.mu.Lock()
		delete(r.progress, s.ID)
		r.mu.Unlock()
	}
	firstReady := step.State == cohort.StateReady && was != cohort.StateReady
	if err := r.store.UpdateSession(ctx, s, &cohort.Event{Time: now, State: s.State, Message: msg}); err != nil {
		return err
	}
	switch {
	case firstReady:
		r.metrics.SessionReady(r.driver.Name(), now.Sub(s.CreatedAt))
	case step.State == cohort.StateStopped && was == cohort.StateStopping:
		r.metrics.SessionStopped(r.driver.Name(), now.Sub(since))
	}
	return nil
}

// fail stops whatever the session started and marks it failed.
func (r *Reconciler) fail(ctx context.Context, s *cohort.Session, reason string) (Result, error) {
	if err := r.driver.Stop(ctx, s.ID); err != nil {
		return Result{}, fmt.Errorf("clean up failed session %s: %w", s.ID, err)
	}
	err := r.record(ctx, s, Step{State: cohort.StateFailed, Reason: reason, Message: reason})
	if cohort.ErrorCode(err) == cohort.ECONFLICT {
		return Result{Requeue: true}, nil
	}
	return Result{}, err
}

// Pending returns the sessions that need a look: every session that is
// not at rest, and ended sessions the driver still runs something for.
// Processes of sessions the store does not know at all are stopped here.
func (r *Reconciler) Pending(ctx context.Context) ([]string, error) {
	active, err := r.store.ListSessions(ctx, cohort.SessionFilter{States: []cohort.SessionState{
		cohort.StateRequested, cohort.StateProvisioning, cohort.StateReady, cohort.StateStopping,
	}})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range active {
		ids = append(ids, s.ID)
	}
	running, err := r.driver.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list driver instances: %w", err)
	}
	for _, id := range running {
		if slices.Contains(ids, id) {
			continue
		}
		_, err := r.store.GetSession(ctx, id)
		switch cohort.ErrorCode(err) {
		case "":
			ids = append(ids, id) // ended, yet something runs: Plan stops it
		case cohort.ENOTFOUND:
			r.log.Warn("stopping a notebook no session owns", "session_id", id)
			if err := r.driver.Stop(ctx, id); err != nil {
				return nil, fmt.Errorf("stop orphan %s: %w", id, err)
			}
		default:
			return nil, err
		}
	}
	return ids, nil
}
