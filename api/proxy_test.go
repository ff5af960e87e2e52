package api_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cohortdev/cohort"
)

// backend stands in for a notebook server: it records what reached it and
// echoes WebSocket messages.
type backend struct {
	*httptest.Server
	got chan *http.Request
}

func newBackend(t *testing.T) *backend {
	b := &backend{got: make(chan *http.Request, 16)}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.got <- r.Clone(context.Background())
		if strings.HasSuffix(r.URL.Path, "/channels") {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return
			}
			defer c.CloseNow()
			typ, msg, err := c.Read(r.Context())
			if err == nil {
				c.Write(r.Context(), typ, append([]byte("echo:"), msg...))
			}
			return
		}
		w.Write([]byte("notebook page"))
	}))
	t.Cleanup(b.Close)
	return b
}

// readySession starts alice's session and marks it ready at the backend.
func readySession(t *testing.T, e *env, b *backend) *cohort.Session {
	t.Helper()
	c := e.createClass("teacher", `{"name": "NLP"}`)
	started, _ := e.startSession("alice", c.ID)
	s, err := e.store.GetSession(context.Background(), started.ID)
	if err != nil {
		t.Fatal(err)
	}
	s.State, s.Address = cohort.StateReady, b.URL
	if err := e.store.UpdateSession(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProxyAddsTokenAndStripsCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBackend(t)
	s := readySession(t, e, b)
	req, _ := http.NewRequest("GET", e.http.URL+"/s/"+s.ID+"/tree?x=1", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
	req.AddCookie(&http.Cookie{Name: "cohort_session", Value: "secret-cookie"})
	req.AddCookie(&http.Cookie{Name: "_xsrf", Value: "jupyters-own"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("proxy = %d", resp.StatusCode)
	}
	got := <-b.got
	if got.URL.Path != "/s/"+s.ID+"/tree" || got.URL.RawQuery != "x=1" {
		t.Errorf("notebook got %s, want the path and query unchanged", got.URL)
	}
	if h := got.Header.Get("Authorization"); h != "token "+s.NotebookToken {
		t.Errorf("notebook got Authorization %q, want its token", h)
	}
	if ck := got.Header.Get("Cookie"); strings.Contains(ck, "secret-cookie") || !strings.Contains(ck, "_xsrf=jupyters-own") {
		t.Errorf("notebook got cookies %q: cohort's must go, Jupyter's stay", ck)
	}
	if got.Host != strings.TrimPrefix(e.http.URL, "http://") {
		t.Errorf("notebook got Host %q, want cohort's (Jupyter compares it with Origin)", got.Host)
	}
}

func TestProxyWebSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBackend(t)
	s := readySession(t, e, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(e.http.URL, "http") + "/s/" + s.ID + "/api/kernels/k1/channels"
	h := http.Header{"Authorization": {"Bearer " + e.tokens["alice"]}}
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != "echo:hello" {
		t.Fatalf("read = %q, %v", msg, err)
	}
	if got := <-b.got; got.Header.Get("Authorization") != "token "+s.NotebookToken {
		t.Fatalf("WebSocket upgrade reached the notebook without its token")
	}

	// A page on another site must not reach the kernel with the
	// participant's credentials.
	h.Set("Origin", "https://evil.example")
	_, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin WebSocket = %v, %v; want 403", resp, err)
	}
	if r := e.do("bob", "GET", "/s/"+s.ID+"/api/kernels/k1/channels", ""); r.status != http.StatusNotFound {
		t.Fatalf("bob through the proxy = %d", r.status)
	}
}

func TestProxyStates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.createClass("teacher", `{"name": "NLP"}`)
	s, _ := e.startSession("alice", c.ID)
	r := e.do("alice", "GET", "/s/"+s.ID+"/tree", "")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("proxy to a requested session = %d %s", r.status, r.body)
	}
	// A notebook that does not answer: 503, and the provisioner is asked
	// to look.
	stored, _ := e.store.GetSession(context.Background(), s.ID)
	stored.State, stored.Address = cohort.StateReady, "http://127.0.0.1:1"
	if err := e.store.UpdateSession(context.Background(), stored, nil); err != nil {
		t.Fatal(err)
	}
	before := e.queue.count(s.ID)
	if r := e.do("alice", "GET", "/s/"+s.ID+"/tree", ""); r.status != http.StatusServiceUnavailable {
		t.Fatalf("proxy to a dead notebook = %d %s", r.status, r.body)
	}
	if e.queue.count(s.ID) != before+1 {
		t.Fatal("a dead notebook did not queue the session for a look")
	}
	markEnded(t, e, s.ID)
	if r := e.do("alice", "GET", "/s/"+s.ID+"/tree", ""); r.status != http.StatusConflict {
		t.Fatalf("proxy to an ended session = %d", r.status)
	}
}

func TestOpenLinkSignsBrowserIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBackend(t)
	s := readySession(t, e, b)
	var link struct{ URL string }
	if r := e.do("bob", "POST", "/v1/sessions/"+s.ID+"/open", ""); r.status != http.StatusNotFound {
		t.Fatalf("bob asking for alice's link = %d", r.status)
	}
	r := e.do("alice", "POST", "/v1/sessions/"+s.ID+"/open", "")
	r.json(t, &link)
	if r.status != http.StatusCreated || !strings.Contains(link.URL, "cohort_code=") {
		t.Fatalf("open = %d %s", r.status, r.body)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(resp.Request.URL.RawQuery, "cohort_code") {
		t.Fatalf("following the link = %d at %s, want the page without the code in the URL", resp.StatusCode, resp.Request.URL)
	}
	u, _ := url.Parse(e.http.URL)
	cookies := jar.Cookies(u)
	if len(cookies) != 1 || cookies[0].Name != "cohort_session" {
		t.Fatalf("cookies after the link = %v", cookies)
	}
	// The cookie alone now opens the notebook; the link is spent.
	resp, err = browser.Get(e.http.URL + "/s/" + s.ID + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the cookie = %d", resp.StatusCode)
	}
	resp, err = http.Get(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reusing the link = %d, want 401", resp.StatusCode)
	}
	// On the API the cookie reads, but changes nothing without the CSRF token.
	req, _ := http.NewRequest("GET", e.http.URL+"/v1/me", nil)
	req.AddCookie(cookies[0])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cookie GET on the API = %d, want 200", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", e.http.URL+"/v1/sessions/"+s.ID+"/stop", nil)
	req.AddCookie(cookies[0])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cookie POST without CSRF token = %d, want 403", resp.StatusCode)
	}
	// A link of one session does not open another.
	other := e.createClass("teacher", `{"name": "Other"}`)
	s2, _ := e.startSession("alice", other.ID)
	e.do("alice", "POST", "/v1/sessions/"+s.ID+"/open", "").json(t, &link)
	resp, err = http.Get(strings.Replace(link.URL, s.ID, s2.ID, 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a link used on another session = %d, want 401", resp.StatusCode)
	}
}

func TestEventStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.createClass("teacher", `{"name": "NLP"}`)
	s, _ := e.startSession("alice", c.ID)
	var list struct{ Events []cohort.Event }
	e.do("alice", "GET", "/v1/sessions/"+s.ID+"/events", "").json(t, &list)
	if len(list.Events) != 1 || list.Events[0].Message != "session requested" {
		t.Fatalf("events = %+v", list.Events)
	}
	if r := e.do("alice", "GET", "/v1/sessions/"+s.ID+"/events?after=x", ""); r.status != http.StatusBadRequest {
		t.Fatalf("after=x = %d", r.status)
	}

	req, _ := http.NewRequest("GET", e.http.URL+"/v1/sessions/"+s.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(prefix string) string {
		t.Helper()
		for line := range lines {
			if strings.HasPrefix(line, prefix) {
				return line
			}
		}
		t.Fatalf("stream ended before a %q line", prefix)
		return ""
	}
	if l := next("data: "); !strings.Contains(l, "session requested") {
		t.Fatalf("first event %s", l)
	}
	// Events pushed later arrive on the open stream; the stream ends after
	// the session has ended.
	e.do("alice", "POST", "/v1/sessions/"+s.ID+"/stop", "")
	if l := next("data: "); !strings.Contains(l, "stop requested by alice@example.com") {
		t.Fatalf("second event %s", l)
	}
	markEnded(t, e, s.ID)
	if l := next("event: "); l != "event: stopped" {
		t.Fatalf("third event %s", l)
	}
	next("event: end")
	for range lines {
	}
}
