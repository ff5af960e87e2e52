package cohort_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
)

func TestDurationJSON(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{`"90m"`, 90 * time.Minute, true},
		{`"12h"`, 12 * time.Hour, true},
		{`5400`, 90 * time.Minute, true},
		{`"soon"`, 0, false},
		{`true`, 0, false},
		// Beyond what a duration holds: refused, never wrapped around.
		{`1e300`, 0, false},
		{`-1e19`, 0, false},
		{`9300000000`, 0, false},
		{`"2562048h"`, 0, false},
		{`"9999999999999999999ns"`, 0, false},
	} {
		var d cohort.Duration
		err := json.Unmarshal([]byte(tt.in), &d)
		if (err == nil) != tt.ok || (tt.ok && d.D() != tt.want) {
			t.Errorf("Unmarshal(%s) = %s, %v; want %s (ok %v)", tt.in, d, err, tt.want, tt.ok)
		}
	}
	for d, want := range map[time.Duration]string{90 * time.Minute: `"1h30m"`, 12 * time.Hour: `"12h"`, 10 * time.Minute: `"10m"`,
		45 * time.Second: `"45s"`, time.Hour + 30*time.Second: `"1h0m30s"`, 0: `"0s"`} {
		b, _ := json.Marshal(cohort.Duration(d))
		var back cohort.Duration
		if string(b) != want || json.Unmarshal(b, &back) != nil || back.D() != d {
			t.Errorf("Marshal(%s) = %s, want %s (and back)", d, b, want)
		}
	}
}

func TestErrorsKeepInternalsInside(t *testing.T) {
	t.Parallel()
	user := fmt.Errorf("load: %w", cohort.Invalid("policy.seats", "seats must be at least 1"))
	if cohort.ErrorCode(user) != cohort.EINVALID || cohort.ErrorMessage(user) != "seats must be at least 1" || cohort.ErrorField(user) != "policy.seats" {
		t.Errorf("wrapped user error: %s %q %q", cohort.ErrorCode(user), cohort.ErrorMessage(user), cohort.ErrorField(user))
	}
	internal := errors.New("database is locked: /var/lib/cohort/cohort.db")
	if cohort.ErrorCode(internal) != cohort.EINTERNAL || cohort.ErrorMessage(internal) != "Internal error." {
		t.Errorf("internal error leaks: %s %q", cohort.ErrorCode(internal), cohort.ErrorMessage(internal))
	}
	if cohort.ErrorCode(nil) != "" {
		t.Error("nil has a code")
	}
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{" Ada@Example.ORG ": "ada@example.org", "a.b+c@x.io": "a.b+c@x.io"} {
		if got, err := cohort.NormalizeEmail("email", in); err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "ada", "Ada <ada@example.org>", "a@b@c"} {
		if _, err := cohort.NormalizeEmail("email", bad); cohort.ErrorCode(err) != cohort.EINVALID {
			t.Errorf("NormalizeEmail(%q) = %v, want invalid", bad, err)
		}
	}
}

func TestSessionStates(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s              cohort.SessionState
		active, wanted bool
	}{
		{cohort.StateRequested, true, true},
		{cohort.StateProvisioning, true, true},
		{cohort.StateReady, true, true},
		{cohort.StateStopping, true, false},
		{cohort.StateStopped, false, false},
		{cohort.StateFailed, false, false},
	} {
		if tt.s.Active() != tt.active || tt.s.WantsRunning() != tt.wanted {
			t.Errorf("%s: Active %v WantsRunning %v", tt.s, tt.s.Active(), tt.s.WantsRunning())
		}
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	a, b := cohort.NewSecret(cohort.TokenPrefix), cohort.NewSecret(cohort.TokenPrefix)
	if a == b || len(a) != len(cohort.TokenPrefix)+32 {
		t.Fatalf("secrets %q %q", a, b)
	}
	if h := cohort.HashSecret(a); h == a || len(h) != 64 || h != cohort.HashSecret(a) {
		t.Fatalf("hash %q", h)
	}
}

func TestZonesAreDeduplicatedAndBounded(t *testing.T) {
	t.Parallel()
	c := cohort.DefaultClass()
	c.Name = "NLP"
	c.Runtime.Zones = []string{"us-central1-a", " US-CENTRAL1-A", "us-central1-b", "us-central1-a"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.Runtime.Zones); got != "[us-central1-a us-central1-b]" {
		t.Fatalf("zones after validation = %s, want each once, in order", got)
	}
	c.Runtime.GPUType, c.Runtime.GPUCount = "", 0
	c.Runtime.Zones = nil
	for i := range cohort.MaxZones + 1 {
		c.Runtime.Zones = append(c.Runtime.Zones, fmt.Sprintf("us-central%d-a", i))
	}
	if err := c.Validate(); cohort.ErrorField(err) != "runtime.zones" {
		t.Fatalf("%d zones = %v, want refused", len(c.Runtime.Zones), err)
	}
}

// TestRequestStop: a running session becomes a stop request with its
// cause and reason; one already stopping or ended is left as it is.
func TestRequestStop(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	for _, state := range []cohort.SessionState{cohort.StateRequested, cohort.StateProvisioning, cohort.StateReady} {
		s := &cohort.Session{State: state}
		if !s.RequestStop(now, cohort.CauseIdle, "idle") || s.State != cohort.StateStopping || s.EndCause != cohort.CauseIdle ||
			s.Reason != "idle" || !s.StateChangedAt.Equal(now) {
			t.Errorf("stop of a %s session: %+v", state, s)
		}
	}
	for _, state := range []cohort.SessionState{cohort.StateStopping, cohort.StateStopped, cohort.StateFailed} {
		s := &cohort.Session{State: state, Reason: "before", EndCause: cohort.CauseUser}
		if s.RequestStop(now, cohort.CauseIdle, "idle") || s.State != state || s.Reason != "before" || s.EndCause != cohort.CauseUser {
			t.Errorf("stop of a %s session changed it: %+v", state, s)
		}
	}
}
