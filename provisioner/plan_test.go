package provisioner

import (
	"testing"
	"time"

	"github.com/cohortdev/cohort"
)

func TestPlan(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	timing := Timing{StartTimeout: time.Minute, Poll: time.Second}
	absent := cohort.Instance{State: cohort.InstanceAbsent}
	starting := cohort.Instance{State: cohort.InstanceStarting}
	ready := cohort.Instance{State: cohort.InstanceReady, Address: "http://127.0.0.1:1"}
	exited := cohort.Instance{State: cohort.InstanceExited, Reason: "boom"}
	interrupted := cohort.Instance{State: cohort.InstanceInterrupted}
	tests := []struct {
		name  string
		state cohort.SessionState
		in    cohort.Instance
		after time.Duration
		want  Step
	}{
		{"requested starts", cohort.StateRequested, absent, 0, Step{Action: ActStart, State: cohort.StateProvisioning, Message: "starting the notebook", RequeueAfter: time.Second}},
		{"provisioning waits", cohort.StateProvisioning, starting, 0, Step{RequeueAfter: time.Second}},
		{"provisioning becomes ready", cohort.StateProvisioning, ready, 0, Step{State: cohort.StateReady, Address: ready.Address, Message: "notebook ready"}},
		{"provisioning restarts a lost start", cohort.StateProvisioning, absent, 0, Step{Action: ActStart, RequeueAfter: time.Second}},
		{"provisioning restarts an interrupted start", cohort.StateProvisioning, interrupted, 0, Step{Action: ActStart, RequeueAfter: time.Second}},
		{"provisioning fails on exit", cohort.StateProvisioning, exited, 0, Step{Action: ActStop, State: cohort.StateFailed, Reason: "boom", Message: "the notebook could not start: boom"}},
		{"provisioning times out", cohort.StateProvisioning, starting, 2 * time.Minute, Step{Action: ActStop, State: cohort.StateFailed, Reason: "the notebook did not become ready within 1m0s", Message: "the notebook did not become ready within 1m0s"}},
		{"ready stays", cohort.StateReady, ready, 0, Step{}},
		{"ready unresponsive waits for the next look", cohort.StateReady, starting, 0, Step{}},
		{"ready dies", cohort.StateReady, exited, 0, Step{Action: ActStop, State: cohort.StateFailed, Reason: "boom", Message: "the notebook stopped unexpectedly: boom"}},
		{"ready vanishes", cohort.StateReady, absent, 0, Step{Action: ActStop, State: cohort.StateFailed, Reason: "the notebook is gone", Message: "the notebook stopped unexpectedly: the notebook is gone"}},
		{"stopping stops", cohort.StateStopping, ready, 0, Step{Action: ActStop, State: cohort.StateStopped, Reason: "by user", Message: "session stopped"}},
		{"stopped at rest", cohort.StateStopped, absent, 0, Step{}},
		{"stopped with a leftover", cohort.StateStopped, ready, 0, Step{Action: ActStop}},
		{"failed with a leftover", cohort.StateFailed, starting, 0, Step{Action: ActStop}},
		{"stopped with an interrupted start's leftovers", cohort.StateStopped, interrupted, 0, Step{Action: ActStop}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &cohort.Session{State: tt.state, StateChangedAt: start, Address: ready.Address, Reason: "by user"}
			if got := Plan(s, tt.in, start.Add(tt.after), timing); got != tt.want {
				t.Fatalf("Plan = %+v\n want %+v", got, tt.want)
			}
		})
	}
}
