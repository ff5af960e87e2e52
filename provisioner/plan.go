// Package provisioner brings each session's notebook to the state the
// session asks for. It is level-triggered: Reconcile reads the session
// (desired) and asks the driver what runs (actual), Plan computes one step
// without I/O, and Reconcile applies and records it. Run it again at any
// time, after any crash, and it picks up where the world is.
package provisioner

import (
	"fmt"
	"time"

	"github.com/cohortdev/cohort"
)

// Action is what the driver must do in a step.
type Action int

// The driver actions.
const (
	ActNone Action = iota
	ActStart
	ActStop
)

// Step is the outcome of Plan: at most one driver action, then at most one
// state change, then when to look again.
type Step struct {
	Action Action
	// State is the session's next state; "" keeps it.
	State   cohort.SessionState
	Reason  string
	Message string
	// Address is the notebook's address once ready.
	Address string
	// RequeueAfter > 0 asks to reconcile again after that long; 0 means the
	// session is at rest until something changes.
	RequeueAfter time.Duration
}

// Timing is how patient Plan is.
type Timing struct {
	// StartTimeout bounds provisioning: a notebook not ready by then fails.
	StartTimeout time.Duration
	// Poll is how soon to look again while a notebook starts or stops.
	Poll time.Duration
}

// Plan returns the next step for session s given what the driver observes.
func Plan(s *cohort.Session, in cohort.Instance, now time.Time, t Timing) Step {
	switch s.State {
	case cohort.StateRequested:
		return Step{Action: ActStart, State: cohort.StateProvisioning, Message: "starting the notebook", RequeueAfter: t.Poll}
	case cohort.StateProvisioning:
		return planProvisioning(s, in, now, t)
	case cohort.StateReady:
		switch in.State {
		case cohort.InstanceExited, cohort.InstanceAbsent, cohort.InstanceInterrupted:
			reason := in.Reason
			if reason == "" {
				reason = "the notebook is gone"
			}
			return Step{Action: ActStop, State: cohort.StateFailed, Reason: reason,
				Message: "the notebook stopped unexpectedly: " + reason}
		case cohort.InstanceReady:
			if in.Address != s.Address {
				return Step{State: cohort.StateReady, Address: in.Address, Message: "notebook moved to a new address"}
			}
		}
		return Step{}
	case cohort.StateStopping:
		return Step{Action: ActStop, State: cohort.StateStopped, Reason: s.Reason, Message: "session stopped"}
	default: // stopped, failed: at rest, but nothing may be left running
		if in.State != cohort.InstanceAbsent {
			return Step{Action: ActStop}
		}
		return Step{}
	}
}

func planProvisioning(s *cohort.Session, in cohort.Instance, now time.Time, t Timing) Step {
	switch {
	case in.State == cohort.InstanceReady:
		return Step{State: cohort.StateReady, Address: in.Address, Message: "notebook ready"}
	case in.State == cohort.InstanceExited:
		return Step{Action: ActStop, State: cohort.StateFailed, Reason: in.Reason, Message: "the notebook could not start: " + in.Reason}
	case now.Sub(s.StateChangedAt) > t.StartTimeout:
		reason := fmt.Sprintf("the notebook did not become ready within %s", t.StartTimeout)
		return Step{Action: ActStop, State: cohort.StateFailed, Reason: reason, Message: reason}
	case in.State == cohort.InstanceAbsent, in.State == cohort.InstanceInterrupted:
		// Recorded as provisioning but never started, or its start cut
		// short (a crash in between): start it now.
		return Step{Action: ActStart, RequeueAfter: t.Poll}
	default:
		return Step{RequeueAfter: t.Poll}
	}
}
