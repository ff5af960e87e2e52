// Package metrics is what cohort counts for Prometheus: sessions by state
// and driver, how long starts and stops take, the GCE driver's engine
// runs, the job queue, the notebook proxy, and sign-ins. The API serves
// it at /metrics to admins; docs/grafana-dashboard.json shows it.
//
// Every method is safe on a nil *Metrics, which counts nothing: parts of
// cohort take one without caring whether anyone reads it.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cohortdev/cohort"
)

// Metrics holds cohort's collectors in a registry of its own.
type Metrics struct {
	reg          *prometheus.Registry
	start, stop  *prometheus.HistogramVec
	engineRuns   *prometheus.CounterVec
	engineTime   *prometheus.HistogramVec
	proxyReqs    *prometheus.CounterVec
	proxyOpen    prometheus.Gauge
	proxyBytes   *prometheus.CounterVec
	signIns      *prometheus.CounterVec
	scrapeErrors prometheus.Counter
}

// New makes the collectors, with Go's and the process's own.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.start = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cohort_session_start_seconds", Help: "From a session's request to its notebook answering.",
		// Local notebooks take seconds, GCE VMs with GPUs minutes.
		Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 900},
	}, []string{"driver"})
	m.stop = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cohort_session_stop_seconds", Help: "From a session's stop request to nothing of it running.",
		Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300},
	}, []string{"driver"})
	m.engineRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cohort_engine_runs_total", Help: "Pulumi engine runs of the GCE driver, by operation and result.",
	}, []string{"operation", "result"})
	m.engineTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cohort_engine_run_seconds", Help: "How long the GCE driver's engine runs take.",
		Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200},
	}, []string{"operation"})
	m.proxyReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cohort_proxy_requests_total", Help: "Requests the notebook proxy passed on, by kind (http, websocket).",
	}, []string{"kind"})
	m.proxyOpen = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cohort_proxy_websockets", Help: "Notebook WebSockets (kernels, terminals) open through the proxy.",
	})
	m.proxyBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cohort_proxy_bytes_total", Help: "Bytes the notebook proxy carried, by direction (to_client, to_notebook).",
	}, []string{"direction"})
	m.signIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cohort_signins_total", Help: "Sign-ins, by method (browser, cli) and result (ok, refused, failed).",
	}, []string{"method", "result"})
	m.scrapeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cohort_metrics_scrape_errors_total", Help: "Gauges that could not be read at a scrape (the database did not answer); counted by the next scrape.",
	})
	m.reg.MustRegister(m.start, m.stop, m.engineRuns, m.engineTime, m.proxyReqs, m.proxyOpen, m.proxyBytes, m.signIns,
		m.scrapeErrors, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{log}})
}

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("serve metrics", "error", v) }

// CountSessions reports, at each scrape, the sessions by state and driver
// that count returns.
func (m *Metrics) CountSessions(count func(context.Context) ([]cohort.SessionCount, error)) {
	m.reg.MustRegister(&sessionCollector{m: m, count: count, desc: prometheus.NewDesc(
		"cohort_sessions", "Sessions by state and driver (ended ones too: stopped, failed).", []string{"state", "driver"}, nil)})
}

type sessionCollector struct {
	m     *Metrics
	count func(context.Context) ([]cohort.SessionCount, error)
	desc  *prometheus.Desc
}

func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		c.m.scrapeErrors.Inc()
		return
	}
	for _, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n.N), string(n.State), n.Driver)
	}
}

// QueueDepth reports, at each scrape, the reconcile jobs that will still
// run, as depth returns them.
func (m *Metrics) QueueDepth(depth func(context.Context) (int, error)) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cohort_queue_reconcile_jobs", Help: "Reconcile jobs waiting or running (-1: the database did not answer).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := depth(ctx)
		if err != nil {
			m.scrapeErrors.Inc()
			return -1
		}
		return float64(n)
	}))
}

// SessionReady records a start that took took.
func (m *Metrics) SessionReady(driver string, took time.Duration) {
	if m != nil {
		m.start.WithLabelValues(driver).Observe(took.Seconds())
	}
}

// SessionStopped records a stop that took took.
func (m *Metrics) SessionStopped(driver string, took time.Duration) {
	if m != nil {
		m.stop.WithLabelValues(driver).Observe(took.Seconds())
	}
}

// EngineRun records one Pulumi engine run (operation: up, refresh,
// destroy, ...) and whether it failed.
func (m *Metrics) EngineRun(operation string, took time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.engineRuns.WithLabelValues(operation, result).Inc()
	m.engineTime.WithLabelValues(operation).Observe(took.Seconds())
}

// ProxyRequest records a request the proxy passes on.
func (m *Metrics) ProxyRequest(websocket bool) {
	if m == nil {
		return
	}
	kind := "http"
	if websocket {
		kind = "websocket"
	}
	m.proxyReqs.WithLabelValues(kind).Inc()
}

// WebSocketOpen records a WebSocket opening (+1) or closing (-1).
func (m *Metrics) WebSocketOpen(delta int) {
	if m != nil {
		m.proxyOpen.Add(float64(delta))
	}
}

// ProxyBytes records bytes carried to the client and to the notebook.
func (m *Metrics) ProxyBytes(toClient, toNotebook int) {
	if m == nil {
		return
	}
	if toClient > 0 {
		m.proxyBytes.WithLabelValues("to_client").Add(float64(toClient))
	}
	if toNotebook > 0 {
		m.proxyBytes.WithLabelValues("to_notebook").Add(float64(toNotebook))
	}
}

// The results of a sign-in.
const (
	SignInOK      = "ok"      // signed in
	SignInRefused = "refused" // the person may not (domain, unknown email, denied)
	SignInFailed  = "failed"  // it broke (a bad or expired state, the issuer's error)
)

// SignIn records a sign-in by method ("browser", "cli") and result.
func (m *Metrics) SignIn(method, result string) {
	if m != nil {
		m.signIns.WithLabelValues(method, result).Inc()
	}
}
