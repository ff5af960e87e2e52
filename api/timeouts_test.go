package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-jose/go-jose/v4"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/auth"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/store/sqlite"
	"github.com/cohortdev/cohort/timeouts"
)

// touches records what the proxy counts as use.
type touches struct {
	mu sync.Mutex
	n  map[string]int
}

func (t *touches) Touch(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n[id]++
}

func (t *touches) count(id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[id]
}

func TestProxyCountsUseNotPolling(t *testing.T) {
	t.Parallel()
	tr := &touches{n: map[string]int{}}
	e := newEnv(t, func(o *api.Options) { o.Tracker = tr })
	b := newBackend(t)
	s := readySession(t, e, b)
	for _, tt := range []struct {
		method, path string
		use          bool
	}{
		{"GET", "api/kernels", false},
		{"GET", "api/contents?type=directory", false},
		{"GET", "static/base/images/logo.png", false},
		{"GET", "tree", true},
		{"GET", "notebooks/train.ipynb", true},
		{"PUT", "api/contents/train.ipynb", true},
		{"POST", "api/kernels", true},
	} {
		before := tr.count(s.ID)
		e.do("alice", tt.method, e.nb(s.ID, "/"+tt.path), "{}")
		if got := tr.count(s.ID) > before; got != tt.use {
			t.Errorf("%s %s counted as use: %v, want %v", tt.method, tt.path, got, tt.use)
		}
	}

	// A WebSocket: pings do not count, messages do.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{"Authorization": {"Bearer " + e.tokens["alice"]}}
	before := tr.count(s.ID)
	wsURL := "ws" + strings.TrimPrefix(e.nb(s.ID, "/api/kernels/k/channels"), "http")
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h, HTTPClient: client.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	go c.CloseRead(ctx) // answer pings; no data expected yet
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if tr.count(s.ID) != before {
		t.Fatalf("a WebSocket handshake and ping counted as use (%d)", tr.count(s.ID)-before)
	}
	c2, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h, HTTPClient: client.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	if err := c2.Write(ctx, websocket.MessageText, []byte(`{"msg_type": "execute_request"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c2.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if tr.count(s.ID) == before {
		t.Fatal("a WebSocket message did not count as use")
	}
}

func TestSessionDeadlinesInAPI(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, func(o *api.Options) { o.Now = func() time.Time { return clock } })
	c := e.createClass("teacher", `{"name": "NLP", "policy": {"max_extension": "1h"}}`)
	started, _ := e.startSession("alice", c.ID)
	s, _ := e.store.GetSession(context.Background(), started.ID)
	ready := clock
	s.State, s.ReadyAt = cohort.StateReady, &ready
	if err := e.store.UpdateSession(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	type view struct {
		cohort.Session
		StopsAt   *time.Time `json:"stops_at"`
		StopCause string     `json:"stop_cause"`
		Warning   string     `json:"warning"`
	}
	get := func(who string) view {
		var v view
		e.do(who, "GET", "/v1/sessions/"+s.ID, "").json(t, &v)
		return v
	}
	v := get("alice")
	if !v.IdleDeadline.Equal(clock.Add(90*time.Minute)) || !v.HardDeadline.Equal(clock.Add(12*time.Hour)) || v.StopCause != "idle" || v.Warning != "" {
		t.Fatalf("fresh session: idle %s hard %s cause %s warning %q", v.IdleDeadline, v.HardDeadline, v.StopCause, v.Warning)
	}
	clock = clock.Add(85 * time.Minute)
	if v := get("alice"); v.Warning != "idle" {
		t.Fatalf("at 85m warning = %q", v.Warning)
	}
	r := e.do("alice", "POST", "/v1/sessions/"+s.ID+"/keepalive", "")
	var kept view
	r.json(t, &kept)
	if r.status != 200 || kept.Warning != "" || !kept.IdleDeadline.Equal(clock.Add(90*time.Minute)) {
		t.Fatalf("keepalive = %d %s", r.status, r.body)
	}
	// Extension: instructors only, within max_extension.
	if r := e.do("alice", "POST", "/v1/sessions/"+s.ID+"/extend", `{"by": "30m"}`); r.status != http.StatusForbidden {
		t.Fatalf("participant extending = %d", r.status)
	}
	if r := e.do("teacher", "POST", "/v1/sessions/"+s.ID+"/extend", `{"by": "-1h"}`); r.status != 400 {
		t.Fatalf("negative extension = %d", r.status)
	}
	r = e.do("teacher", "POST", "/v1/sessions/"+s.ID+"/extend", `{"by": "45m"}`)
	var ext view
	r.json(t, &ext)
	if r.status != 200 || !ext.HardDeadline.Equal(ready.Add(12*time.Hour+45*time.Minute)) {
		t.Fatalf("extend 45m = %d %s", r.status, r.body)
	}
	r = e.do("teacher", "POST", "/v1/sessions/"+s.ID+"/extend", `{"by": "30m"}`)
	if _, field, msg := r.errorCode(); r.status != 400 || field != "by" || !strings.Contains(msg, "15m left") {
		t.Fatalf("extension past the limit = %d %s", r.status, r.body)
	}
	// A policy change reaches the running session, and its participant hears of it.
	if r := e.do("teacher", "PATCH", "/v1/classes/"+c.ID, `{"policy": {"idle_timeout": "30m", "warn_before": "5m"}}`); r.status != 200 {
		t.Fatalf("policy change = %d %s", r.status, r.body)
	}
	if v := get("alice"); !v.IdleDeadline.Equal(clock.Add(30 * time.Minute)) {
		t.Fatalf("idle deadline after the policy change = %s, want keep-alive + 30m", v.IdleDeadline)
	}
	stored, _ := e.store.GetSession(context.Background(), s.ID)
	if !stored.IdleDeadline.Equal(clock.Add(30 * time.Minute)) {
		t.Fatalf("stored idle deadline = %s: the sweep would act late", stored.IdleDeadline)
	}
	var events struct{ Events []cohort.Event }
	e.do("alice", "GET", "/v1/sessions/"+s.ID+"/events", "").json(t, &events)
	msgs := []string{}
	for _, ev := range events.Events {
		msgs = append(msgs, ev.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"kept alive by alice@example.com", "teacher@example.com extended this session by 45m", "changed the class's time limits"} {
		if !strings.Contains(all, want) {
			t.Errorf("participant's events lack %q:\n%s", want, all)
		}
	}
	// The class window caps extensions.
	ends := clock.Add(time.Hour).Format(time.RFC3339)
	e.do("teacher", "PATCH", "/v1/classes/"+c.ID, `{"policy": {"ends_at": "`+ends+`"}}`)
	r = e.do("teacher", "POST", "/v1/sessions/"+s.ID+"/extend", `{"by": "10m"}`)
	if _, _, msg := r.errorCode(); r.status != http.StatusConflict || !strings.Contains(msg, "class ends") {
		t.Fatalf("extension past the class end = %d %s", r.status, r.body)
	}
}

func TestSchedulerEndpoints(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t, "", "")
	store, err := sqlite.Open(context.Background(), freshDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const account = "cohort-scheduler@project.iam.gserviceaccount.com"
	sweeper := timeouts.New(timeouts.Options{Store: store, Enqueuer: &recorder{}})
	srv, _ := serve(t, func(string) api.Options {
		return api.Options{Store: store, Enqueuer: &recorder{}, Sweeper: sweeper,
			Scheduler: auth.NewCallerVerifier(auth.CallerOptions{Issuer: ti.URL, Audience: "https://cohort.example.org", Email: account})}
	})
	mint := func(email, aud string, key bool, exp time.Duration) string {
		k := ti.key
		if !key {
			k = ti.otherKey
		}
		claims := map[string]any{"iss": ti.URL, "aud": aud, "sub": "1", "email": email, "email_verified": true,
			"iat": time.Now().Unix(), "exp": time.Now().Add(exp).Unix()}
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		jws, _ := signer.Sign(must(json.Marshal(claims)))
		return must(jws.CompactSerialize())
	}
	call := func(path, token string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	good := mint(account, "https://cohort.example.org", true, 5*time.Minute)
	for _, tt := range []struct {
		name, token string
		status      int
	}{
		{"missing", "", 401},
		{"valid", good, 200},
		{"bad signature", mint(account, "https://cohort.example.org", false, 5*time.Minute), 401},
		{"wrong audience", mint(account, "https://other.example.org", true, 5*time.Minute), 401},
		{"expired", mint(account, "https://cohort.example.org", true, -5*time.Minute), 401},
		{"another account", mint("intruder@project.iam.gserviceaccount.com", "https://cohort.example.org", true, 5*time.Minute), 401},
		{"an API token", cohort.NewSecret(cohort.TokenPrefix), 401},
	} {
		if status, body := call("/v1/scheduler/sweep", tt.token); status != tt.status {
			t.Errorf("%s: sweep = %d %s, want %d", tt.name, status, body, tt.status)
		}
	}
	if status, body := call("/v1/scheduler/sessions/ses_missing/expire", good); status != 404 {
		t.Errorf("expire of an unknown session = %d %s", status, body)
	}
	// Not configured: refused, whatever the token.
	bare, _ := serve(t, func(string) api.Options { return api.Options{Store: store, Enqueuer: &recorder{}, Sweeper: sweeper} })
	req, _ := http.NewRequest("POST", bare.URL+"/v1/scheduler/sweep", nil)
	req.Header.Set("Authorization", "Bearer "+good)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unconfigured scheduler endpoint = %d", resp.StatusCode)
	}
}

func TestStartAllSeats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.createClass("teacher", `{"name": "NLP", "policy": {"seats": 2}}`) // alice and bob enrolled
	e.do("teacher", "POST", "/v1/classes/"+c.ID+"/members", `{"emails": ["carol@example.com"]}`)
	if _, status := e.startSession("alice", c.ID); status != http.StatusCreated {
		t.Fatal("alice's own start failed")
	}
	if r := e.do("alice", "POST", "/v1/classes/"+c.ID+"/start-all", ""); r.status != http.StatusForbidden {
		t.Fatalf("participant start-all = %d", r.status)
	}
	var got struct {
		Started, Running int
		NoSeat           int `json:"no_seat"`
	}
	r := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/start-all", "")
	r.json(t, &got)
	if r.status != 200 || got.Started != 1 || got.Running != 1 || got.NoSeat != 1 {
		t.Fatalf("start-all = %d %s, want 1 started (bob), 1 running (alice), 1 without a seat (carol)", r.status, r.body)
	}
	var mine struct{ Sessions []cohort.Session }
	e.do("bob", "GET", "/v1/sessions", "").json(t, &mine)
	if len(mine.Sessions) != 1 || mine.Sessions[0].UserID != e.users["bob"].ID {
		t.Fatalf("bob's pre-started session: %+v", mine.Sessions)
	}
}
