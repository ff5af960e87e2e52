package cohort

import "time"

// SessionState is where a session is in its life. The state also carries
// intent: requested, provisioning and ready want a running notebook;
// stopping wants none; stopped and failed are at rest.
type SessionState string

// The states of a session.
const (
	StateRequested    SessionState = "requested"
	StateProvisioning SessionState = "provisioning"
	StateReady        SessionState = "ready"
	StateStopping     SessionState = "stopping"
	StateStopped      SessionState = "stopped"
	StateFailed       SessionState = "failed"
)

// Active reports whether the session holds (or will hold) a notebook: the
// one active session a participant may have in a class.
func (s SessionState) Active() bool {
	return s != StateStopped && s != StateFailed
}

// ActiveStates are the states that are Active.
var ActiveStates = []SessionState{StateRequested, StateProvisioning, StateReady, StateStopping}

// WantsRunning reports whether the session should have a running notebook.
func (s SessionState) WantsRunning() bool {
	return s == StateRequested || s == StateProvisioning || s == StateReady
}

// RequestStop makes s a request to stop, for cause, at now, with the
// reason it records; false if s is not running (already stopping, or
// ended), and then s is unchanged. Every stop starts here: the
// participant's, an instructor's, the sweeper's. The caller writes s and
// queues it for the provisioner.
func (s *Session) RequestStop(now time.Time, cause EndCause, reason string) bool {
	if !s.State.WantsRunning() {
		return false
	}
	s.State, s.StateChangedAt, s.Reason, s.EndCause = StateStopping, now, reason, cause
	return true
}

// Session is one participant's notebook runtime in one class.
type Session struct {
	ID      string       `json:"id"`
	ClassID string       `json:"class_id"`
	UserID  string       `json:"user_id"`
	State   SessionState `json:"state"`
	// Reason says why the session is in its state (why it failed or stopped).
	Reason string `json:"reason,omitempty"`
	// Driver is the provisioner driver that runs the notebook.
	Driver string `json:"driver"`
	// Address is where the driver's notebook listens (scheme://host:port),
	// reached only by cohort's proxy.
	Address string `json:"-"`
	// NotebookToken is the Jupyter token cohort's proxy adds to every
	// request. It never leaves the server.
	NotebookToken string `json:"-"`

	// EndCause says, as a stable code, why an ended session ended.
	EndCause EndCause `json:"end_cause,omitempty"`

	CreatedAt      time.Time  `json:"created_at"`
	StateChangedAt time.Time  `json:"state_changed_at"`
	ReadyAt        *time.Time `json:"ready_at,omitempty"`
	// ClaimedAt is when a participant took the session as a warm seat
	// (nil: it was started for them).
	ClaimedAt *time.Time `json:"claimed_at,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`

	// Timeouts (package timeouts keeps them): the last use seen, the
	// instructor's extension of the maximum lifetime, the deadlines they
	// give under the class's policy, and when the participant was warned.
	LastActivityAt *time.Time `json:"last_activity_at,omitempty"`
	Extension      Duration   `json:"extension,omitempty"`
	IdleDeadline   *time.Time `json:"idle_deadline,omitempty"`
	HardDeadline   *time.Time `json:"hard_deadline,omitempty"`
	CheckAt        *time.Time `json:"-"`
	WarnedAt       *time.Time `json:"warned_at,omitempty"`
	// BudgetStopAt is when the session stops because its class's budget
	// was lowered below what its seats could cost (nil: it does not).
	BudgetStopAt *time.Time `json:"budget_stop_at,omitempty"`
	// BillVM and BillDisk are the session's hourly rates and BillCap the
	// longest it can bill, fixed when it was admitted (package cost): a
	// later change of its class's runtime or lifetime does not change
	// what its VM costs or when GCE stops it. Zero for sessions made
	// before cohort recorded them.
	BillVM   float64  `json:"-"`
	BillDisk float64  `json:"-"`
	BillCap  Duration `json:"-"`
	// Version increases with every change; updates compare it to catch
	// concurrent writers.
	Version int64 `json:"-"`
}

// SessionDeadlines are the timeout columns of a session that the timeouts
// package writes: its deadlines, when to look at it next (the next deadline
// less the warning time), and when its participant was warned (nil: not).
type SessionDeadlines struct {
	Idle, Hard, CheckAt, WarnedAt *time.Time
}

// Deadlines returns the session's stored timeout columns.
func (s *Session) Deadlines() SessionDeadlines {
	return SessionDeadlines{Idle: s.IdleDeadline, Hard: s.HardDeadline, CheckAt: s.CheckAt, WarnedAt: s.WarnedAt}
}

// Equal reports whether two sets of deadlines are the same.
func (d SessionDeadlines) Equal(o SessionDeadlines) bool {
	eq := func(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
	return eq(d.Idle, o.Idle) && eq(d.Hard, o.Hard) && eq(d.CheckAt, o.CheckAt) && eq(d.WarnedAt, o.WarnedAt)
}

// EndCause is why a session ended, as a stable code.
type EndCause string

// The causes of a session's end.
const (
	CauseUser        EndCause = "user"         // its participant stopped it
	CauseInstructor  EndCause = "instructor"   // an instructor or admin stopped it
	CauseIdle        EndCause = "idle"         // idle timeout
	CauseMaxLifetime EndCause = "max_lifetime" // maximum lifetime reached
	CauseClassEnded  EndCause = "class_ended"  // the class window closed
	CauseBudget      EndCause = "budget"       // the class's budget ran out
	CauseFailure     EndCause = "failure"      // the notebook failed
	CauseUnclaimed   EndCause = "unclaimed"    // a warm seat nobody took before its window ended
)

// BasePath is the path under which the session's notebook is served: the
// root, since every session has an origin of its own.
func (s *Session) BasePath() string { return "/" }

// Event is one step in a session's progress, as shown to its participant.
type Event struct {
	ID        int64        `json:"id"`
	SessionID string       `json:"session_id"`
	Time      time.Time    `json:"time"`
	State     SessionState `json:"state"`
	Message   string       `json:"message"`
}

// SessionCount is how many sessions are in a state on a driver.
type SessionCount struct {
	State  SessionState
	Driver string
	N      int
}

// SessionFilter selects sessions in ListSessions. Empty fields match all.
type SessionFilter struct {
	ClassID string
	UserID  string
	// States, if set, keeps only sessions in one of them.
	States []SessionState
}
