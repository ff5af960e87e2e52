package timeouts_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/timeouts"
)

// TestExtend: the rules of an instructor's extension, which the API
// applies (api/timeouts.go) and this states once.
func TestExtend(t *testing.T) {
	t.Parallel()
	p := cohort.DefaultClass().Policy
	p.MaxLifetime, p.MaxExtension = cohort.Duration(12*time.Hour), cohort.Duration(4*time.Hour)
	ready := func(mod func(*cohort.Session)) *cohort.Session {
		s := &cohort.Session{ID: "ses_e", State: cohort.StateReady, Driver: "local", ReadyAt: ptr(t0), Extension: cohort.Duration(time.Hour)}
		if mod != nil {
			mod(s)
		}
		return s
	}
	ends, stop := t0.Add(5*time.Hour), t0.Add(2*time.Hour)
	classEnds := p
	classEnds.EndsAt = &ends
	for _, tt := range []struct {
		name string
		s    *cohort.Session
		p    cohort.Policy
		by   time.Duration
		want time.Duration // the new extension; 0: refused
		code string
		says string
	}{
		{"within the class's limit", ready(nil), p, 2 * time.Hour, 3 * time.Hour, "", ""},
		{"to the limit", ready(nil), p, 3 * time.Hour, 4 * time.Hour, "", ""},
		{"past the limit", ready(nil), p, 3*time.Hour + time.Minute, 0, cohort.EINVALID, "this one has 3h left"},
		{"a huge by does not wrap", ready(nil), p, time.Duration(1<<63 - 1), 0, cohort.EINVALID, "in all"},
		{"not positive", ready(nil), p, 0, 0, cohort.EINVALID, "positive"},
		{"ended", ready(func(s *cohort.Session) { s.State = cohort.StateStopped }), p, time.Hour, 0, cohort.ECONFLICT, "has ended"},
		{"past the admitted lifetime", ready(func(s *cohort.Session) { s.BillCap = cohort.Duration(14 * time.Hour) }), p, 2 * time.Hour, 0, cohort.EINVALID, "extended by 1h more"},
		{"the class ends first", ready(nil), classEnds, time.Hour, 0, cohort.ECONFLICT, "when the class ends"},
		{"the budget stops it first", ready(func(s *cohort.Session) { s.BudgetStopAt = &stop }), p, time.Hour, 0, cohort.ECONFLICT, "for the class's budget"},
	} {
		got, err := timeouts.Extend(tt.s, tt.p, cohort.Duration(tt.by))
		switch {
		case tt.code == "" && (err != nil || got.D() != tt.want):
			t.Errorf("%s: Extend = %s, %v; want %s", tt.name, got, err, tt.want)
		case tt.code != "" && (cohort.ErrorCode(err) != tt.code || !strings.Contains(cohort.ErrorMessage(err), tt.says)):
			t.Errorf("%s: Extend = %s, %v; want %s saying %q", tt.name, got, err, tt.code, tt.says)
		}
	}
}
