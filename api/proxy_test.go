package api_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
)

// backend stands in for a notebook server: it records what reached it
// (the first 16 requests), echoes WebSocket messages, and at /evil
// answers as a hostile notebook would.
type backend struct {
	*httptest.Server
	got chan *http.Request
}

func newBackend(t testing.TB) *backend {
	b := &backend{got: make(chan *http.Request, 16)}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case b.got <- r.Clone(context.Background()):
		default: // nobody is looking at requests this far in
		}
		if r.URL.Path == "/slow" { // a long computation: the client gives up first
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		if r.URL.Path == "/evil" {
			// A hostile notebook server: it answers for every origin and
			// sets cookies for the parent domain and under cohort's names.
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Set-Cookie", "_xsrf=fine; Path=/")
			h.Add("Set-Cookie", "tossed=1; Domain=localhost; Path=/")
			h.Add("Set-Cookie", "cohort_nb=planted; Path=/")
			h.Add("Set-Cookie", "__Host-cohort_session=planted; Path=/; Secure")
			h.Set("Clear-Site-Data", `"cookies"`)
			h.Set("Referrer-Policy", "unsafe-url")
		}
		if strings.HasSuffix(r.URL.Path, "/channels") {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return
			}
			defer c.CloseNow()
			for { // echo until the other side goes
				typ, msg, err := c.Read(r.Context())
				if err != nil || c.Write(r.Context(), typ, append([]byte("echo:"), msg...)) != nil {
					return
				}
			}
		}
		w.Write([]byte("notebook page"))
	}))
	t.Cleanup(b.Close)
	return b
}

// readySession starts alice's session and marks it ready at the backend.
func readySession(t testing.TB, e *env, b *backend) *cohort.Session {
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
	req, _ := http.NewRequest("GET", e.nb(s.ID, "/tree?x=1"), nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
	req.AddCookie(&http.Cookie{Name: "cohort_session", Value: "secret-cookie"})
	req.AddCookie(&http.Cookie{Name: "cohort_nb", Value: "notebook-cookie"})
	req.AddCookie(&http.Cookie{Name: "_xsrf", Value: "jupyters-own"})
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("proxy = %d", resp.StatusCode)
	}
	got := <-b.got
	if got.URL.Path != "/tree" || got.URL.RawQuery != "x=1" {
		t.Errorf("notebook got %s, want the path and query unchanged", got.URL)
	}
	if h := got.Header.Get("Authorization"); h != "token "+s.NotebookToken {
		t.Errorf("notebook got Authorization %q, want its token", h)
	}
	if ck := got.Header.Get("Cookie"); strings.Contains(ck, "secret-cookie") || strings.Contains(ck, "notebook-cookie") || !strings.Contains(ck, "_xsrf=jupyters-own") {
		t.Errorf("notebook got cookies %q: cohort's must go, Jupyter's stay", ck)
	}
	if want := strings.TrimPrefix(e.nb(s.ID, ""), "http://"); got.Host != want {
		t.Errorf("notebook got Host %q, want its own origin's %q (Jupyter compares it with Origin)", got.Host, want)
	}
}

func TestProxyWebSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBackend(t)
	s := readySession(t, e, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(e.nb(s.ID, "/api/kernels/k1/channels"), "http")
	h := http.Header{"Authorization": {"Bearer " + e.tokens["alice"]}}
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h, HTTPClient: client.HTTPClient()})
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

	// A page of another origin must not reach the kernel with the
	// participant's browser cookie.
	browser := openedBy(t, e, "alice", s.ID)
	_, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: browser.client,
		HTTPHeader: http.Header{"Origin": {e.nb("ses_other", "")}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin WebSocket = %v, %v; want 403", resp, err)
	}
	c, _, err = websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: browser.client,
		HTTPHeader: http.Header{"Origin": {e.nb(s.ID, "")}}})
	if err != nil {
		t.Fatalf("the notebook's own page opening its kernel: %v", err)
	}
	c.CloseNow()
	if r := e.do("bob", "GET", e.nb(s.ID, "/api/kernels/k1/channels"), ""); r.status != http.StatusNotFound {
		t.Fatalf("bob through the proxy = %d", r.status)
	}
}

func TestProxyStates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.createClass("teacher", `{"name": "NLP"}`)
	s, _ := e.startSession("alice", c.ID)
	r := e.do("alice", "GET", e.nb(s.ID, "/tree"), "")
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
	if r := e.do("alice", "GET", e.nb(s.ID, "/tree"), ""); r.status != http.StatusServiceUnavailable {
		t.Fatalf("proxy to a dead notebook = %d %s", r.status, r.body)
	}
	if e.queue.count(s.ID) != before+1 {
		t.Fatal("a dead notebook did not queue the session for a look")
	}
	markEnded(t, e, s.ID)
	if r := e.do("alice", "GET", e.nb(s.ID, "/tree"), ""); r.status != http.StatusConflict {
		t.Fatalf("proxy to an ended session = %d", r.status)
	}
}

// openedBy returns a browser that followed user's open link of a session:
// it holds that notebook origin's cookie and nothing of the app.
func openedBy(t *testing.T, e *env, user, sessionID string) *browser {
	t.Helper()
	var link struct{ URL string }
	r := e.do(user, "POST", "/v1/sessions/"+sessionID+"/open", "")
	r.json(t, &link)
	if r.status != http.StatusCreated {
		t.Fatalf("open = %d %s", r.status, r.body)
	}
	b := newBrowser(t)
	if resp, body := b.get(link.URL); resp.StatusCode != http.StatusOK {
		t.Fatalf("following the open link = %d %s", resp.StatusCode, body)
	}
	return b
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
	if r.status != http.StatusCreated || !strings.HasPrefix(link.URL, e.nb(s.ID, "/_cohort/open?code=")) {
		t.Fatalf("open = %d %s, want a link on the notebook's own origin", r.status, r.body)
	}
	browser := newBrowser(t)
	resp, _ := browser.get(link.URL)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != e.nb(s.ID, "/tree") {
		t.Fatalf("following the link = %d at %s, want the notebook's tree without the code", resp.StatusCode, resp.Request.URL)
	}
	nbCookie := browser.cookie(e.nb(s.ID, "/"), "cohort_nb")
	if nbCookie == "" || browser.cookie(e.http.URL, "cohort_nb") != "" || browser.cookie(e.http.URL, "cohort_session") != "" {
		t.Fatalf("cookies after the link: the notebook origin's alone must be set")
	}
	if other := browser.cookie(e.nb("ses_aaaaaaaaaaaaaaaa", "/"), "cohort_nb"); other != "" {
		t.Fatal("the notebook cookie reaches another notebook's origin")
	}
	// The cookie alone now opens the notebook; the link is spent.
	if resp, _ := browser.get(e.nb(s.ID, "/api/status")); resp.StatusCode != http.StatusOK {
		t.Fatalf("with the cookie = %d", resp.StatusCode)
	}
	if resp, _ := newBrowser(t).get(link.URL); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reusing the link = %d, want 401", resp.StatusCode)
	}
	// The notebook's cookie is nothing to the app, whatever it is called.
	for _, name := range []string{"cohort_session", "cohort_nb"} {
		req, _ := http.NewRequest("GET", e.http.URL+"/v1/me", nil)
		req.AddCookie(&http.Cookie{Name: name, Value: nbCookie})
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the notebook cookie as %s on the app = %d, want 401", name, resp.StatusCode)
		}
	}
	// A link of one session does not open another, and is not used up by
	// trying.
	other := e.createClass("teacher", `{"name": "Other"}`)
	s2, _ := e.startSession("alice", other.ID)
	e.do("alice", "POST", "/v1/sessions/"+s.ID+"/open", "").json(t, &link)
	u, _ := url.Parse(link.URL)
	u.Host = strings.Replace(u.Host, strings.ReplaceAll(s.ID, "_", "-"), strings.ReplaceAll(s2.ID, "_", "-"), 1)
	if resp, _ := newBrowser(t).get(u.String()); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a link used on another session = %d, want 401", resp.StatusCode)
	}
	if resp, _ := newBrowser(t).get(link.URL); resp.StatusCode != http.StatusOK {
		t.Fatalf("the link on its own session after a wrong use = %d, want 200", resp.StatusCode)
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
