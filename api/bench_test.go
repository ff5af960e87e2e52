package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/client"
)

// The API under load, as a class uses it: many clients at once over
// loopback HTTP, against the real server and a real SQLite store. Each
// benchmark reports requests per second and latency percentiles:
//
//	go test -run XXX -bench API -benchtime 10000x ./api/

// clients is how many requests are in flight at once (wrk's -c50).
const clients = 50

// load sends b.N requests from clients goroutines and reports req/s, p50
// and p99.
func load(b *testing.B, newRequest func() *http.Request) { loadWith(b, clients, newRequest) }

// loadWith is load with n clients at once.
func loadWith(b *testing.B, n int, newRequest func() *http.Request) {
	b.Helper()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DialContext: client.DialContext}}
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism((n + 1) / 2)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			resp, err := hc.Do(newRequest())
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		all = append(all, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}

func BenchmarkAPIGetSession(b *testing.B) {
	e := newEnv(b)
	s := readySession(b, e, newBackend(b))
	url := e.http.URL + "/v1/sessions/" + s.ID
	load(b, func() *http.Request {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
		return req
	})
}

// BenchmarkAPIListClass lists the sessions of a class of 100, as an
// instructor's seat table does (every 4 s), from 50 clients at once and
// from 4 (a class's instructors).
func BenchmarkAPIListClass(b *testing.B) {
	for _, n := range []int{clients, 4} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { listClass(b, n) })
	}
}

func listClass(b *testing.B, n int) {
	e := newEnv(b)
	ctx := context.Background()
	c := e.createClass("teacher", `{"name": "Big", "policy": {"seats": 100}}`)
	bk := newBackend(b)
	for i := range 100 {
		u, err := e.store.EnsureUser(ctx, fmt.Sprintf("p%d@example.com", i), cohort.RoleParticipant)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.store.AddMembers(ctx, c.ID, []string{u.Email}, cohort.MemberParticipant, "t"); err != nil {
			b.Fatal(err)
		}
		s, _, err := e.store.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: c.ID, UserID: u.ID,
			State: cohort.StateRequested, Driver: "local", NotebookToken: "t"}, 100)
		if err != nil {
			b.Fatal(err)
		}
		ready := time.Now()
		s.State, s.Address, s.ReadyAt = cohort.StateReady, bk.URL, &ready
		if err := e.store.UpdateSession(ctx, s, nil); err != nil {
			b.Fatal(err)
		}
	}
	url := e.http.URL + "/v1/sessions?class_id=" + c.ID
	loadWith(b, n, func() *http.Request {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["teacher"])
		return req
	})
}

// BenchmarkAPIClassCost: a class's cost (GET /v1/classes/:class/cost)
// over 500 participants with 10 sessions each, metered from the store,
// one instructor asking at a time.
func BenchmarkAPIClassCost(b *testing.B) {
	e := newEnv(b, func(o *api.Options) { o.Driver = "gce" })
	ctx := context.Background()
	c := e.createClass("teacher", `{"name": "Huge", "policy": {"seats": 1000, "budget": 100000}}`)
	const participants, each = 500, 10
	for i := range participants {
		u, err := e.store.EnsureUser(ctx, fmt.Sprintf("p%d@example.com", i), cohort.RoleParticipant)
		if err != nil {
			b.Fatal(err)
		}
		for j := range each {
			s, _, err := e.store.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: c.ID, UserID: u.ID,
				State: cohort.StateRequested, Driver: "gce", NotebookToken: "t"}, 1000)
			if err != nil {
				b.Fatal(err)
			}
			if j == each-1 {
				break // the last one runs
			}
			ended := time.Now()
			s.State, s.EndedAt = cohort.StateStopped, &ended
			if err := e.store.UpdateSession(ctx, s, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	url := e.http.URL + "/v1/classes/" + c.ID + "/cost"
	loadWith(b, 1, func() *http.Request {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["teacher"])
		return req
	})
}

// BenchmarkProxySmallFile: a small file through the notebook proxy (the
// notebook here is an in-process stand-in; cmd/cohort-bench measures
// against real Jupyter).
func BenchmarkProxySmallFile(b *testing.B) {
	e := newEnv(b)
	s := readySession(b, e, newBackend(b))
	url := e.nb(s.ID, "/static/logo.png")
	load(b, func() *http.Request {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
		return req
	})
}

// BenchmarkProxyWebSocketOpen opens kernel WebSockets through the proxy,
// clients at a time (the in-process notebook stand-in echoes).
func BenchmarkProxyWebSocketOpen(b *testing.B) {
	e := newEnv(b)
	s := readySession(b, e, newBackend(b))
	url := "ws" + strings.TrimPrefix(e.nb(s.ID, "/api/kernels/k/channels"), "http")
	h := http.Header{"Authorization": {"Bearer " + e.tokens["alice"]}}
	hc := client.HTTPClient()
	b.SetParallelism((clients + 1) / 2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, _, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{HTTPHeader: h, HTTPClient: hc})
			if err != nil {
				b.Error(err)
				return
			}
			c.CloseNow()
		}
	})
}
