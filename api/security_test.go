package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/auth"
	"github.com/cohortdev/cohort/auth/localissuer"
)

// TestAppHeaders: the app's pages run only cohort's script, are never
// framed, and leak no URL to other sites; forms may send the browser on
// to a notebook origin, nowhere else.
func TestAppHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("", "GET", "/", "")
	csp := r.header.Get("Content-Security-Policy")
	u, _ := url.Parse(e.http.URL)
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "form-action 'self' http://*.localhost:" + u.Port()} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if hsts := r.header.Get("Strict-Transport-Security"); hsts != "" {
		t.Errorf("HSTS over plain http: %q", hsts)
	}
}

// TestRedirectTargetsStayLocal: whatever `next` says, sign-in returns to a
// path of cohort's own.
func TestRedirectTargetsStayLocal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for next, want := range map[string]string{
		"/classes/new":          "/classes/new",
		"/v1/me?x=1":            "/v1/me?x=1",
		"//evil.example/":       "/",
		"/\\evil.example":       "/",
		"\\\\evil.example":      "/",
		"/\t/evil.example":      "/",
		"/%0a/evil":             "/%0a/evil", // an escaped newline is just a path
		"https://evil.example/": "/",
		"javascript:alert(1)":   "/",
		"evil.example":          "/",
		"/%2F%2Fevil.example":   "/",
		"":                      "/",
	} {
		b := newBrowser(t)
		resp, _ := signIn(t, e, b, "ada@example.com", next)
		got := resp.Request.URL.RequestURI()
		if resp.Request.URL.Host != strings.TrimPrefix(e.http.URL, "http://") || got != want {
			t.Errorf("next=%q: ended at %s, want %s on cohort", next, resp.Request.URL, want)
		}
	}
}

// TestAuditRecordsAddresses: every audit row says where the request came
// from; X-Forwarded-For counts only from a trusted proxy; and anonymous
// requests cannot fill the log.
func TestAuditRecordsAddresses(t *testing.T) {
	t.Parallel()
	for _, trusted := range []bool{false, true} {
		e := newEnv(t, func(o *api.Options) {
			if trusted {
				o.TrustedProxies = []string{"127.0.0.1"}
			}
		})
		req, _ := http.NewRequest("POST", e.http.URL+"/v1/tokens", strings.NewReader(`{"name": "x"}`))
		req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		audit, _ := e.store.ListAudit(context.Background(), cohort.AuditFilter{Limit: 1})
		want := "127.0.0.1"
		if trusted {
			want = "203.0.113.7"
		}
		if len(audit) != 1 || audit[0].Action != cohort.AuditTokenCreated || audit[0].ClientAddr != want {
			t.Fatalf("trusted proxy %v: audit row %+v, want client address %s", trusted, audit, want)
		}
	}

	e := newEnv(t)
	for range 100 { // failed sign-ins: anonymous, each an audit row
		newBrowser(t).get(e.http.URL + "/auth/callback?code=x&state=y")
	}
	audit, _ := e.store.ListAudit(context.Background(), cohort.AuditFilter{Limit: 1000})
	if len(audit) == 0 || len(audit) > 30 {
		t.Fatalf("100 anonymous failures from one address left %d audit rows, want between 1 and 30", len(audit))
	}
	// Signed-in actions are never dropped.
	for range 40 {
		e.do("alice", "POST", "/v1/tokens", `{"name": "x"}`)
	}
	after, _ := e.store.ListAudit(context.Background(), cohort.AuditFilter{Limit: 1000})
	if len(after)-len(audit) != 40 {
		t.Fatalf("40 token creations recorded %d rows", len(after)-len(audit))
	}
}

// TestEventStreamsAreBounded: one user cannot hold connections and store
// polls without limit.
func TestEventStreamsAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.createClass("teacher", `{"name": "NLP"}`)
	s, _ := e.startSession("alice", c.ID)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() int {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/v1/sessions/"+s.ID+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
		}
		return resp.StatusCode
	}
	opened := 0
	for opened < 50 && open() == http.StatusOK {
		opened++
	}
	if opened == 50 {
		t.Fatal("50 event streams of one user were all accepted")
	}
	if got := open(); got != http.StatusTooManyRequests {
		t.Fatalf("one stream too many = %d, want 429", got)
	}
	// Another user is not held back by alice's streams.
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/v1/sessions/"+s.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["teacher"])
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the instructor's stream = %v %v", resp.StatusCode, err)
	}
}

// TestExtensionCannotOverflow: a huge extension is refused, not wrapped
// into a negative one that passes the class's limit.
func TestExtensionCannotOverflow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := readySession(t, e, newBackend(t))
	if r := e.do("teacher", "POST", "/v1/sessions/"+s.ID+"/extend", `{"by": "1h"}`); r.status != http.StatusOK {
		t.Fatalf("extend by 1h = %d %s", r.status, r.body)
	}
	for _, by := range []string{`"2562047h"`, `"2562048h"`, `1e300`, `9223372036`} {
		r := e.do("teacher", "POST", "/v1/sessions/"+s.ID+"/extend", `{"by": `+by+`}`)
		if r.status != http.StatusBadRequest {
			t.Errorf("extend by %s = %d %s, want 400", by, r.status, r.body)
		}
	}
	got, _ := e.store.GetSession(context.Background(), s.ID)
	if got.Extension.D().Hours() != 1 {
		t.Fatalf("extension after the refused ones = %s, want 1h", got.Extension)
	}
}

// TestOnlyItsOwnHostsAreServed: a name that is neither the app's nor a
// notebook's (a rebinding DNS name, another subdomain) gets nothing but
// health checks, which load balancers send with any Host.
func TestOnlyItsOwnHostsAreServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, _ := url.Parse(e.http.URL)
	for _, host := range []string{"evil.example:" + u.Port(), "www.localhost:" + u.Port(), "ses-x.localhost.:" + u.Port(), "127.0.0.1"} {
		req, _ := http.NewRequest("GET", e.http.URL+"/v1/me", nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("Host %s = %d, want 421", host, resp.StatusCode)
		}
		req, _ = http.NewRequest("GET", e.http.URL+"/healthz", nil)
		req.Host = host
		if resp, err := noRedirects.Do(req); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("health check with Host %s = %v %v", host, resp.StatusCode, err)
		}
	}
}

// TestCookiesAreHostPrefixedOverHTTPS: over https every cookie of cohort
// carries __Host-, which no notebook of the same site can plant (a planted
// sign-in state would sign the victim in as someone else).
func TestCookiesAreHostPrefixedOverHTTPS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv, _ := serve(t, func(u string) api.Options {
		// As behind a TLS proxy: browsers see https, cohort plain http.
		return api.Options{Store: e.store, Enqueuer: e.queue, PublicURL: strings.Replace(u, "http://", "https://", 1),
			Auth: auth.New(auth.Options{Issuer: e.issuer.URL(), ClientID: localissuer.ClientID, Endpoints: e.issuer.Endpoints()})}
	})
	resp, err := noRedirects.Get(srv.URL + "/auth/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 || cookies[0].Name != "__Host-cohort_login" || !cookies[0].Secure || cookies[0].Path != "/" {
		t.Fatalf("sign-in state cookie over https: %v", resp.Header.Values("Set-Cookie"))
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts == "" {
		t.Error("no HSTS over https")
	}
}

// TestCachesHonourRevokeAndStop: the store's cache keeps who holds a token
// and what a session is, yet a revoked token is refused, and a stopped
// session's notebook closed, on the very next request.
func TestCachesHonourRevokeAndStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := readySession(t, e, newBackend(t))
	for range 3 { // the answers are in the cache now
		if r := e.do("alice", "GET", e.nb(s.ID, "/api/status"), ""); r.status != http.StatusOK {
			t.Fatalf("alice into her notebook = %d", r.status)
		}
	}
	var created struct{ Token, ID string }
	e.do("alice", "POST", "/v1/tokens", `{"name": "script"}`).json(t, &created)
	e.tokens["script"] = created.Token
	if r := e.do("script", "GET", e.nb(s.ID, "/api/status"), ""); r.status != http.StatusOK {
		t.Fatalf("the script's token = %d", r.status)
	}
	if r := e.do("alice", "DELETE", "/v1/tokens/"+created.ID, ""); r.status >= 300 {
		t.Fatalf("revoke = %d %s", r.status, r.body)
	}
	if r := e.do("script", "GET", e.nb(s.ID, "/api/status"), ""); r.status != http.StatusUnauthorized {
		t.Fatalf("the revoked token, next request = %d, want 401", r.status)
	}
	if r := e.do("alice", "POST", "/v1/sessions/"+s.ID+"/stop", ""); r.status != http.StatusAccepted {
		t.Fatalf("stop = %d %s", r.status, r.body)
	}
	if r := e.do("alice", "GET", e.nb(s.ID, "/api/status"), ""); r.status == http.StatusOK {
		t.Fatal("the stopped session's notebook still answers on the next request")
	}
}

// TestClientThatLeavesIsNoNotebookFailure: a browser that cancels a
// request (or a load test that ends) is not a dead notebook: nothing is
// logged above debug, and the session is not queued for a check.
func TestClientThatLeavesIsNoNotebookFailure(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	e := newEnv(t, func(o *api.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	s := readySession(t, e, newBackend(t))
	before := e.queue.count(s.ID)
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, "GET", e.nb(s.ID, "/slow"), nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
		if resp, err := noRedirects.Do(req); err == nil {
			resp.Body.Close()
		}
		cancel()
	}
	time.Sleep(200 * time.Millisecond) // let the proxy see the cancellations
	if n := e.queue.count(s.ID); n != before {
		t.Errorf("clients that left queued the session %d times", n-before)
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("clients that left were logged as failures:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
