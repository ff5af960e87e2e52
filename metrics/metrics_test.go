package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/metrics"
)

// scrape returns what Prometheus would read.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(slog.Default()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape = %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestDashboardReadsWhatIsCounted: every cohort_ metric the Grafana
// dashboard in docs/ queries is one cohort exports.
func TestDashboardReadsWhatIsCounted(t *testing.T) {
	m := metrics.New()
	m.CountSessions(func(context.Context) ([]cohort.SessionCount, error) {
		return []cohort.SessionCount{{State: cohort.StateReady, Driver: "gce", N: 3}}, nil
	})
	m.QueueDepth(func(context.Context) (int, error) { return 2, nil })
	m.SessionReady("gce", 90*time.Second)
	m.SessionStopped("gce", 20*time.Second)
	m.EngineRun("up", time.Minute, nil)
	m.EngineRun("destroy", time.Minute, errors.New("quota"))
	m.ProxyRequest(true)
	m.WebSocketOpen(1)
	m.ProxyBytes(10, 20)
	m.SignIn("cli", metrics.SignInOK)
	got := scrape(t, m)
	for _, want := range []string{
		`cohort_sessions{driver="gce",state="ready"} 3`,
		`cohort_queue_reconcile_jobs 2`,
		`cohort_session_start_seconds_count{driver="gce"} 1`,
		`cohort_engine_runs_total{operation="destroy",result="failed"} 1`,
		`cohort_proxy_websockets 1`,
		`cohort_proxy_bytes_total{direction="to_notebook"} 20`,
		`cohort_signins_total{method="cli",result="ok"} 1`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	dashboard, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`cohort_[a-z_]+`).FindAllString(string(dashboard), -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count")
		if !strings.Contains(got, "# TYPE "+base+" ") {
			t.Errorf("the dashboard queries %s, which cohort does not export", name)
		}
	}
}

// TestNilCountsNothing: parts of cohort run without metrics (tests, the
// token command); a nil *Metrics takes every call.
func TestNilCountsNothing(t *testing.T) {
	var m *metrics.Metrics
	m.SessionReady("local", time.Second)
	m.SessionStopped("local", time.Second)
	m.EngineRun("up", time.Second, nil)
	m.ProxyRequest(false)
	m.WebSocketOpen(-1)
	m.ProxyBytes(1, 1)
	m.SignIn("browser", metrics.SignInFailed)
}

// TestScrapeSurvivesTheDatabase: a gauge the database cannot answer is
// left out and counted as an error; the rest is still served.
func TestScrapeSurvivesTheDatabase(t *testing.T) {
	m := metrics.New()
	m.CountSessions(func(context.Context) ([]cohort.SessionCount, error) { return nil, errors.New("database is locked") })
	first := scrape(t, m)
	// Collectors are read at once: the error is counted by the next scrape.
	second := scrape(t, m)
	if strings.Contains(first, "cohort_sessions{") || strings.Contains(second, "cohort_metrics_scrape_errors_total 0\n") ||
		!strings.Contains(second, "cohort_metrics_scrape_errors_total") {
		t.Fatalf("with the database down the scrapes read:\n%s\n\nthen:\n%s", first, second)
	}
}
