package api_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/client"
)

// noRedirectsWith is the browser's client, not following redirects.
func noRedirectsWith(b *browser) *http.Client {
	c := *b.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// request sends a request with the browser's cookies and extra headers,
// without following redirects.
func (b *browser) request(method, u string, header http.Header) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noRedirectsWith(b).Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestNotebookTakesOnlyItsOwnPages: with the visitor's notebook cookie, a
// request that changes something, or reads as a subresource, must come
// from the notebook's own pages. Another notebook of the same site (its
// pages controlled by another participant) and any other site get
// nothing done; a link from elsewhere still opens the notebook.
func TestNotebookTakesOnlyItsOwnPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := readySession(t, e, newBackend(t))
	b := openedBy(t, e, "alice", s.ID)
	own, other := e.nb(s.ID, ""), e.nb("ses_bbbbbbbbbbbbbbbb", "")
	for _, tt := range []struct {
		name, method string
		header       http.Header
		ok           bool
	}{
		{"its own page posts", "POST", http.Header{"Origin": {own}, "Sec-Fetch-Site": {"same-origin"}}, true},
		{"its own page, an older browser", "POST", http.Header{"Origin": {own}}, true},
		{"another notebook posts", "POST", http.Header{"Origin": {other}, "Sec-Fetch-Site": {"same-site"}}, false},
		{"another site posts", "POST", http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}, false},
		{"a post that says nothing of where it is from", "POST", http.Header{}, false},
		{"a form posted from the address bar", "POST", http.Header{"Sec-Fetch-Site": {"none"}}, false},
		{"another notebook reads it as a script", "GET", http.Header{"Sec-Fetch-Site": {"same-site"}, "Sec-Fetch-Mode": {"no-cors"}, "Sec-Fetch-Dest": {"script"}}, false},
		{"another notebook fetches it", "GET", http.Header{"Sec-Fetch-Site": {"same-site"}, "Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Dest": {"empty"}}, false},
		{"another site frames it", "GET", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"iframe"}}, false},

		{"typed in the address bar", "GET", http.Header{"Sec-Fetch-Site": {"none"}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}}, true},
		{"its own page reads", "GET", http.Header{"Sec-Fetch-Site": {"same-origin"}, "Sec-Fetch-Mode": {"cors"}}, true},
	} {
		resp := b.request(tt.method, e.nb(s.ID, "/api/contents"), tt.header)
		if got := resp.StatusCode == http.StatusOK; got != tt.ok {
			t.Errorf("%s: %d, want allowed %v", tt.name, resp.StatusCode, tt.ok)
		}
	}
	// A link from another site opens the notebook, at its file list only:
	// a GET can act in Jupyter (start a kernel; an extension's pull).
	link := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}}
	if resp := b.request("GET", e.nb(s.ID, "/tree"), link); resp.StatusCode != http.StatusOK {
		t.Errorf("a link from another site to the file list = %d", resp.StatusCode)
	}
	for _, path := range []string{"/api/contents", "/git-pull?repo=https://evil.example/x", "/tree?x=1", "/notebooks/a.ipynb"} {
		resp := b.request("GET", e.nb(s.ID, path), link)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tree" {
			t.Errorf("a link from another site to %s = %d to %q, want a landing on /tree", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// No service worker: it would see the codes of later visitors.
	if resp := b.request("GET", e.nb(s.ID, "/files/sw.js"), http.Header{"Service-Worker": {"script"}, "Sec-Fetch-Site": {"same-origin"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a service worker's script = %d, want 403", resp.StatusCode)
	}
	// The "continue as" form takes a small urlencoded form, nothing else.
	for _, ct := range []string{"multipart/form-data; boundary=x", "application/json"} {
		resp := b.request("POST", e.nb(s.ID, "/_cohort/open"), http.Header{"Content-Type": {ct}, "Origin": {own}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST /_cohort/open as %s = %d, want 400", ct, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("POST", e.nb(s.ID, "/_cohort/open"), strings.NewReader("code="+strings.Repeat("x", 1<<20)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", own)
	if resp, err := noRedirects.Do(req); err != nil || resp.StatusCode < 400 {
		t.Errorf("a megabyte form to /_cohort/open = %v %v, want refused", resp.StatusCode, err)
	}
	// A script with an API token is not a browser: no Origin needed.
	if r := e.do("alice", "POST", e.nb(s.ID, "/api/kernels"), "{}"); r.status != http.StatusOK {
		t.Fatalf("a token's POST = %d", r.status)
	}
}

// TestNotebookAnswersOnlyForItself: whatever the notebook server answers
// (it runs the participant's code), no other origin may read it with the
// visitor's cookie (CORS) and it sets no cookie beyond its own host.
func TestNotebookAnswersOnlyForItself(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := readySession(t, e, newBackend(t)) // the backend answers /evil as a hostile notebook would
	resp := openedBy(t, e, "alice", s.ID).request("GET", e.nb(s.ID, "/evil"), nil)
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") || k == "Clear-Site-Data" {
			t.Errorf("the notebook's %s reached the browser", k)
		}
	}
	if rp := resp.Header.Get("Referrer-Policy"); rp != "same-origin" {
		t.Errorf("Referrer-Policy %q: the notebook's URL would leak to other sites", rp)
	}
	var kept []string
	for _, ck := range resp.Cookies() {
		kept = append(kept, ck.Name)
		if ck.Domain != "" || strings.HasPrefix(strings.TrimPrefix(ck.Name, "__Host-"), "cohort_") {
			t.Errorf("the notebook set cookie %s (domain %q)", ck.Name, ck.Domain)
		}
	}
	if len(kept) != 1 || kept[0] != "_xsrf" {
		t.Errorf("cookies kept = %v, want Jupyter's own host-only _xsrf", kept)
	}
}

// TestNotebookOriginIsNotTheApp: the app answers no notebook path, a
// notebook origin answers none of the app's (it forwards them to the
// notebook), and the app's cookie is nothing on a notebook origin.
func TestNotebookOriginIsNotTheApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bk := newBackend(t)
	s := readySession(t, e, bk)
	if r := e.do("alice", "GET", "/s/"+s.ID+"/tree", ""); r.status != http.StatusNotFound {
		t.Fatalf("a notebook path on the app = %d, want 404", r.status)
	}
	if r := e.do("alice", "GET", e.nb(s.ID, "/v1/me"), ""); r.status != http.StatusOK || string(r.body) != "notebook page" {
		t.Fatalf("/v1/me on a notebook origin = %d %s, want the notebook's own answer", r.status, r.body)
	}
	if got := <-bk.got; got.URL.Path != "/v1/me" {
		t.Fatalf("the notebook got %s", got.URL.Path)
	}
	b := newBrowser(t)
	signIn(t, e, b, "alice@example.com", "/")
	app := b.cookie(e.http.URL, "cohort_session")
	for _, name := range []string{"cohort_session", "cohort_nb"} {
		req, _ := http.NewRequest("GET", e.nb(s.ID, "/api/status"), nil)
		req.AddCookie(&http.Cookie{Name: name, Value: app})
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the app's cookie as %s on a notebook origin = %d, want 401", name, resp.StatusCode)
		}
	}
	// The notebook domain itself is no notebook: on to the app.
	u, _ := url.Parse(e.http.URL)
	req, _ := http.NewRequest("GET", "http://localhost:"+u.Port()+"/", nil)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != e.http.URL+"/" {
		t.Fatalf("the bare notebook domain = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestBrowserReachesNotebookThroughTheApp: a signed-in browser that opens
// a notebook URL without its cookie is sent to the app, which mints a code
// and sends it back; it lands where it meant to go.
func TestBrowserReachesNotebookThroughTheApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := readySession(t, e, newBackend(t))
	navigate := func(b *browser, u string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Accept", "text/html,application/xhtml+xml") // as a browser's navigation
		req.Header.Set("Sec-Fetch-Site", "none")                    // typed in the address bar
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	b := newBrowser(t)
	signIn(t, e, b, "alice@example.com", "/")
	// The browser comes back with its cookie to a page of cohort's on the
	// notebook origin that moves on to where it meant to go (a redirect
	// would count as a navigation from the app's site, and land on /tree).
	resp, body := navigate(b, e.nb(s.ID, "/notebooks/train.ipynb?kernel=1"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `http-equiv="refresh" content="0;url=/notebooks/train.ipynb?kernel=1"`) {
		t.Fatalf("opening the notebook URL = %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	if b.cookie(e.nb(s.ID, "/"), "cohort_nb") == "" {
		t.Fatal("no notebook cookie after the way through the app")
	}
	// A link from another site does not choose where in the notebook the
	// app sends the visitor: to the file list.
	req, _ := http.NewRequest("GET", e.http.URL+"/sessions/"+s.ID+"/open?next=/git-pull%3Frepo%3Dx", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := noRedirectsWith(b).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "next=%2Ftree") {
		t.Fatalf("the app's open page, from another site, sends the visitor to %s", loc)
	}
	// Without a sign-in to the app, the app asks for one.
	resp, _ = navigate(newBrowser(t), e.nb(s.ID, "/tree"))
	if !strings.Contains(resp.Request.URL.Path, "/local-oidc/") {
		t.Fatalf("an anonymous browser ended at %s, want the sign-in", resp.Request.URL)
	}
	// A script (no page wanted) gets a plain 401.
	if r := e.do("", "GET", e.nb(s.ID, "/api/status"), ""); r.status != http.StatusUnauthorized {
		t.Fatalf("anonymous API call on a notebook origin = %d", r.status)
	}
}

// TestOpeningSomeoneElsesNotebookIsExplicit: an instructor's browser goes
// into a participant's notebook only after a page says whose it is, and
// the opening is audited.
func TestOpeningSomeoneElsesNotebookIsExplicit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := readySession(t, e, newBackend(t))
	teacher := newBrowser(t)
	signIn(t, e, teacher, "teacher@example.com", "/")
	resp := teacher.request("GET", e.http.URL+"/sessions/"+s.ID+"/open", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("an instructor opening alice's notebook = %d (Location %q), want a confirmation page", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := teacher.get(e.http.URL + "/sessions/" + s.ID + "/open")
	if !strings.Contains(page, "alice@example.com") || !strings.Contains(page, "audit log") {
		t.Fatalf("the confirmation page does not say whose notebook or that it is recorded: %s", page)
	}
	// A cross-site form cannot confirm: it has no CSRF token.
	resp, _ = teacher.postForm(e.http.URL+"/sessions/"+s.ID+"/open", url.Values{"next": {"/tree"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("confirming without the CSRF token = %d", resp.StatusCode)
	}
	resp, body := teacher.postForm(e.http.URL+"/sessions/"+s.ID+"/open", url.Values{"next": {"/tree"}, "csrf_token": {csrfOf(t, e, teacher)}})
	if resp.StatusCode != http.StatusOK || body != "notebook page" || !strings.HasPrefix(resp.Request.URL.String(), e.nb(s.ID, "/tree")) {
		t.Fatalf("confirmed = %d at %s", resp.StatusCode, resp.Request.URL)
	}
	audit, _ := e.store.ListAudit(context.Background(), cohort.AuditFilter{ClassID: s.ClassID})
	opened := 0
	for _, a := range audit {
		if a.Action == cohort.AuditSessionOpened && a.ActorEmail == "teacher@example.com" && a.SessionID == s.ID {
			opened++
		}
	}
	if opened != 1 {
		t.Fatalf("%d session_opened rows, want 1: %+v", opened, audit)
	}
	// The notebook cookie ends with the sign-in that led to it: signing out
	// (or its end) leaves nothing open on a shared computer.
	nb, _ := e.store.GetBrowserSession(context.Background(), cohort.HashSecret(teacher.cookie(e.nb(s.ID, "/"), "cohort_nb")))
	app, _ := e.store.GetBrowserSession(context.Background(), cohort.HashSecret(teacher.cookie(e.http.URL, "cohort_session")))
	if nb == nil || app == nil || nb.ExpiresAt.After(app.ExpiresAt) {
		t.Fatalf("the notebook cookie outlives the sign-in that minted it: %+v, %+v", nb, app)
	}
	// The participant's own notebook opens at once.
	alice := newBrowser(t)
	signIn(t, e, alice, "alice@example.com", "/")
	if resp := alice.request("GET", e.http.URL+"/sessions/"+s.ID+"/open", nil); resp.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(resp.Header.Get("Location"), e.nb(s.ID, "/_cohort/open?")) {
		t.Fatalf("alice opening her notebook = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestOpenAsSomeoneElseAsks: a browser signed in to a notebook as one
// person that follows a link minted for another is asked, never switched
// silently, and the code stays good until it answers.
func TestOpenAsSomeoneElseAsks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := readySession(t, e, newBackend(t))
	b := openedBy(t, e, "alice", s.ID)
	var link struct{ URL string }
	e.do("teacher", "POST", "/v1/sessions/"+s.ID+"/open", "").json(t, &link)
	before := b.cookie(e.nb(s.ID, "/"), "cohort_nb")
	resp, page := b.get(link.URL)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "signed in to this notebook as <strong>alice@example.com</strong>") ||
		!strings.Contains(page, "Continue as teacher@example.com") {
		t.Fatalf("a link for someone else = %d %s", resp.StatusCode, page)
	}
	if strings.Contains(page, "<script") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("cohort's page on a notebook origin runs script or lacks its CSP: %q", resp.Header.Get("Content-Security-Policy"))
	}
	if b.cookie(e.nb(s.ID, "/"), "cohort_nb") != before {
		t.Fatal("the cookie changed before the visitor answered")
	}
	u, _ := url.Parse(link.URL)
	form := url.Values{"code": {u.Query().Get("code")}, "next": {"/tree"}}
	// Another notebook's page cannot answer for the visitor.
	req, _ := http.NewRequest("POST", e.nb(s.ID, "/_cohort/open"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.nb("ses_bbbbbbbbbbbbbbbb", ""))
	if resp, err := b.client.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-origin answer = %v %v, want 403", resp.StatusCode, err)
	}
	req, _ = http.NewRequest("POST", e.nb(s.ID, "/_cohort/open"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.nb(s.ID, ""))
	resp, err := b.client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("continue as teacher = %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if b.cookie(e.nb(s.ID, "/"), "cohort_nb") == before {
		t.Fatal("continuing did not switch the notebook cookie")
	}
}

// TestRosterRemovalEndsNotebookAccess: off the roster means out of the
// class's notebooks, at once; and a co-instructor cannot remove the
// class's creator.
func TestRosterRemovalEndsNotebookAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := readySession(t, e, newBackend(t))
	b := openedBy(t, e, "alice", s.ID)
	if r := e.do("teacher", "POST", "/v1/classes/"+s.ClassID+"/members", `{"emails": ["teacher2@example.com"], "role": "instructor"}`); r.status != http.StatusOK {
		t.Fatalf("add co-instructor = %d %s", r.status, r.body)
	}
	if r := e.do("teacher2", "DELETE", "/v1/classes/"+s.ClassID+"/members/teacher@example.com", ""); r.status != http.StatusForbidden {
		t.Fatalf("a co-instructor removing the class's creator = %d %s, want 403", r.status, r.body)
	}
	if r := e.do("teacher2", "DELETE", "/v1/classes/"+s.ClassID+"/members/alice@example.com", ""); r.status != http.StatusNoContent {
		t.Fatalf("remove alice = %d %s", r.status, r.body)
	}
	if resp, _ := b.get(e.nb(s.ID, "/api/status")); resp.StatusCode == http.StatusOK {
		t.Fatal("alice's browser still reaches her notebook after her removal")
	}
	if r := e.do("alice", "GET", e.nb(s.ID, "/api/status"), ""); r.status == http.StatusOK {
		t.Fatal("alice's token still reaches her notebook after her removal")
	}
	got, _ := e.store.GetSession(context.Background(), s.ID)
	if got.State != cohort.StateStopping || got.EndCause != cohort.CauseInstructor {
		t.Fatalf("alice's session after her removal: %s (%s)", got.State, got.EndCause)
	}
	// Even a session left running (a start that raced the removal) is out
	// of reach for its participant once they are off the roster.
	bob := readySession(t, e, newBackend(t))
	bob2, _, err := e.store.StartSession(context.Background(), &cohort.Session{ID: cohort.NewID("ses"), ClassID: bob.ClassID,
		UserID: e.users["bob"].ID, State: cohort.StateReady, Driver: "local", NotebookToken: "t", Address: bob.Address}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.do("bob", "GET", e.nb(bob2.ID, "/api/status"), ""); r.status != http.StatusOK {
		t.Fatalf("bob into his notebook = %d", r.status)
	}
	if err := e.store.RemoveMember(context.Background(), bob.ClassID, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if r := e.do("bob", "GET", e.nb(bob2.ID, "/api/status"), ""); r.status != http.StatusNotFound {
		t.Fatalf("bob off the roster into his still running notebook = %d, want 404", r.status)
	}
	// A co-instructor taken off the roster loses the class's notebooks too.
	s2 := readySession(t, e, newBackend(t))
	e.do("teacher", "POST", "/v1/classes/"+s2.ClassID+"/members", `{"emails": ["teacher2@example.com"], "role": "instructor"}`)
	if r := e.do("teacher2", "GET", e.nb(s2.ID, "/api/status"), ""); r.status != http.StatusOK {
		t.Fatalf("co-instructor into a participant's notebook = %d", r.status)
	}
	e.do("teacher", "DELETE", "/v1/classes/"+s2.ClassID+"/members/teacher2@example.com", "")
	if r := e.do("teacher2", "GET", e.nb(s2.ID, "/api/status"), ""); r.status != http.StatusNotFound {
		t.Fatalf("removed co-instructor into the notebook = %d, want 404", r.status)
	}
}

// TestOpenConnectionsEndWithTheirAccess: a kernel's WebSocket lasts for
// hours; it must not outlive the access that let it in: a removal from
// the roster, a revoked credential, a sign-out.
func TestOpenConnectionsEndWithTheirAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *api.Options) { o.Recheck = 50 * time.Millisecond })
	s := readySession(t, e, newBackend(t))
	e.do("teacher", "POST", "/v1/classes/"+s.ClassID+"/members", `{"emails": ["teacher2@example.com"], "role": "instructor"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(e.nb(s.ID, "/api/kernels/k/channels"), "http")
	dial := func(opts *websocket.DialOptions) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, wsURL, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatalf("the connection does not work to begin with: %v", err)
		}
		return c
	}
	// closed waits (within 5 s, a hundred rechecks) for the connection to
	// stop relaying.
	closed := func(c *websocket.Conn, what string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if c.Write(ctx, websocket.MessageText, []byte("still there?")) != nil {
				return
			}
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
		t.Fatalf("5 s after %s the connection still relays", what)
	}

	byToken := dial(&websocket.DialOptions{HTTPClient: client.HTTPClient(), HTTPHeader: http.Header{"Authorization": {"Bearer " + e.tokens["teacher2"]}}})
	e.do("teacher", "DELETE", "/v1/classes/"+s.ClassID+"/members/teacher2@example.com", "")
	closed(byToken, "the co-instructor's removal")

	browser := openedBy(t, e, "alice", s.ID)
	byCookie := dial(&websocket.DialOptions{HTTPClient: browser.client, HTTPHeader: http.Header{"Origin": {e.nb(s.ID, "")}}})
	e.do("admin", "POST", "/v1/users/"+e.users["alice"].ID+"/revoke", "")
	closed(byCookie, "an admin's revoke of alice's credentials")
}
