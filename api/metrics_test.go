package api_test

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// TestMetrics: /metrics is for admins (a scraper holds an admin's token),
// and counts what the proxy carried and who signed in.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBackend(t)
	s := readySession(t, e, b)
	for range 3 {
		if r := e.do("alice", "GET", e.nb(s.ID, "/tree"), ""); r.status != http.StatusOK {
			t.Fatalf("through the proxy: %d %s", r.status, r.body)
		}
	}
	signIn(t, e, newBrowser(t), "alice@example.com", "/")

	for _, who := range []string{"", "alice", "teacher"} {
		if r := e.do(who, "GET", "/metrics", ""); r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
			t.Errorf("/metrics for %q = %d, want refused", who, r.status)
		}
	}
	r := e.do("admin", "GET", "/metrics", "")
	if r.status != http.StatusOK {
		t.Fatalf("/metrics for an admin = %d %s", r.status, r.body)
	}
	for metric, least := range map[string]float64{
		`cohort_proxy_requests_total{kind="http"}`:           3,
		`cohort_proxy_bytes_total{direction="to_client"}`:    1,
		`cohort_signins_total{method="browser",result="ok"}`: 1,
		`go_goroutines`: 1,
	} {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metric) + ` (\S+)$`).FindStringSubmatch(string(r.body))
		if m == nil {
			t.Errorf("/metrics has no %s:\n%s", metric, r.body)
			continue
		}
		if v, _ := strconv.ParseFloat(m[1], 64); v < least {
			t.Errorf("%s = %v, want at least %v", metric, v, least)
		}
	}
}
