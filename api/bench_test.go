package api_test

import (
	"context"
	"database/sql"
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
	"github.com/cohortdev/cohort/cost"
	"github.com/cohortdev/cohort/store/sqlite"
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
	c := e.createClass("teacher", `{"name": "Huge", "policy": {"seats": 1000, "budget": 100000}}`)
	fillClass(b, e, c.ID, true)
	url := e.http.URL + "/v1/classes/" + c.ID + "/cost"
	coldThenWarm(b, func() *http.Request {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["teacher"])
		return req
	})
}

// coldThenWarm times one request on a server that has not answered it
// yet (cold-ms: the cache empty, as after a restart), then one client's
// requests in a row.
func coldThenWarm(b *testing.B, newRequest func() *http.Request) {
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(newRequest())
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cold := time.Since(t0)
	loadWith(b, 1, newRequest)
	b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
}

// BenchmarkAPIMonthSpend: the admin's month (GET /v1/spend) of 50 classes
// like the one above: 250,000 sessions. "ended": every class over, the
// month's spend all in the rollup; "one live": one class running its
// 500 seats; "all live": 25,000 seats running at once, the worst case.
func BenchmarkAPIMonthSpend(b *testing.B) {
	for _, shape := range []struct {
		name string
		live int
	}{{"ended", 0}, {"one live", 1}, {"all live", 50}} {
		b.Run(shape.name, func(b *testing.B) {
			e := newEnv(b, func(o *api.Options) { o.Driver = "gce" })
			for i := range 50 {
				c := e.createClass("teacher", fmt.Sprintf(`{"name": "Class %d", "policy": {"seats": 1000}}`, i))
				fillClass(b, e, c.ID, i < shape.live)
			}
			coldThenWarm(b, func() *http.Request {
				req, _ := http.NewRequest("GET", e.http.URL+"/v1/spend", nil)
				req.Header.Set("Authorization", "Bearer "+e.tokens["admin"])
				return req
			})
		})
	}
}

// fillClass gives a class 500 participants with 10 sessions each of an
// hour, a day apart, ended but for each one's last if live. It writes the
// database in one transaction, as the store would have over the class's
// life: the sessions, and what the ended ones cost to the monthly rollup
// (the store's own rollup is tested in store/storetest).
func fillClass(b *testing.B, e *env, classID string, live bool) {
	ctx := context.Background()
	const participants, each = 500, 10
	users := make([]string, participants)
	for i := range participants {
		u, err := e.store.EnsureUser(ctx, fmt.Sprintf("p%d@example.com", i), cohort.RoleParticipant)
		if err != nil {
			b.Fatal(err)
		}
		users[i] = u.ID
	}
	db, err := sql.Open("sqlite", sqlite.DSN(e.dbPath))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	insert, err := tx.Prepare(`INSERT INTO sessions (id, class_id, user_id, state, driver, notebook_token, created_at, state_changed_at,
		ready_at, ended_at, bill_vm, bill_disk, bill_cap_us) VALUES (?, ?, ?, ?, 'gce', 't', ?, ?, ?, ?, 0.54, 0.0137, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	spend, count := map[cost.Month]float64{}, map[cost.Month]int{}
	for _, user := range users {
		for j := range each {
			s := &cohort.Session{ID: cohort.NewID("ses"), State: cohort.StateStopped, Driver: "gce", BillVM: 0.54, BillDisk: 0.0137, BillCap: cohort.Duration(17 * time.Hour),
				CreatedAt: now.Add(-time.Duration(each-j) * 24 * time.Hour)}
			end := s.CreatedAt.Add(time.Hour)
			s.EndedAt = &end
			if live && j == each-1 {
				s.State, s.CreatedAt, s.EndedAt = cohort.StateReady, now.Add(-time.Hour), nil
			}
			var ended any
			if s.EndedAt != nil {
				ended = s.EndedAt.UnixMicro()
				for m, v := range cost.ByMonth(s, cost.Rate{VM: s.BillVM, Disk: s.BillDisk}, end) {
					spend[m] += v
					count[m]++
				}
			}
			at := s.CreatedAt.UnixMicro()
			if _, err := insert.Exec(s.ID, classID, user, s.State, at, at, at, ended, s.BillCap.D().Microseconds()); err != nil {
				b.Fatal(err)
			}
		}
	}
	for m, v := range spend {
		if _, err := tx.Exec(`INSERT INTO spend (month, class_id, class_name, amount, sessions) VALUES (?, ?, '', ?, ?)`, string(m), classID, v, count[m]); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
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
