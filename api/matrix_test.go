package api_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
)

// The authorisation matrix: every registered route, of the app and of the
// notebook origins, with every kind of caller, allowed or denied, each
// with an API token and again with a browser cookie (plus the CSRF token
// where one is needed). A route nobody classified here fails the test.
//
// Callers: anonymous; alice, participant of class A with a ready session;
// bob, participant of class B; teacher, who created class A; cotutor, a
// co-instructor of class A; teacher2, instructor of class B; removed, a
// participant taken off class A's roster, with a session still running
// there; demoted, a co-instructor of class A made a participant of it (and
// no longer an instructor of cohort); admin. Paths name class A, alice's session in it,
// alice's token, an invite of class A.

var callers = []string{"", "alice", "bob", "teacher", "cotutor", "teacher2", "removed", "demoted", "admin"}

type rule struct {
	// public routes answer anonymous callers (their own checks, if any,
	// are tested elsewhere); browser routes are pages, which send the
	// anonymous to sign in and take only cookies; scheduler routes take
	// only Cloud Scheduler's OIDC tokens: every user's token is refused.
	public, browser, scheduler bool
	allow                      []string
	body                       string
}

var (
	everyone     = []string{"alice", "bob", "teacher", "cotutor", "teacher2", "removed", "demoted", "admin"}
	creators     = []string{"teacher", "cotutor", "teacher2", "admin"}
	classMembers = []string{"alice", "teacher", "cotutor", "demoted", "admin"}
	classTeach   = []string{"teacher", "cotutor", "admin"}
	sessionSeers = []string{"alice", "teacher", "cotutor", "admin"}
)

var matrix = map[string]rule{
	"GET /healthz":                                     {public: true},
	"GET /readyz":                                      {public: true},
	"GET /v1/openapi.json":                             {public: true},
	"GET /metrics":                                     {allow: []string{"admin"}},
	"GET /":                                            {public: true},
	"GET /assets/*file":                                {public: true},
	"GET /classes/new":                                 {browser: true, allow: creators},
	"GET /classes/:class/manage":                       {browser: true, allow: classTeach},
	"GET /admin":                                       {browser: true, allow: []string{"admin"}},
	"POST /v1/classes/:class/stop-all":                 {allow: classTeach},
	"POST /v1/classes/:class/start-all":                {allow: classTeach},
	"GET /v1/classes/:class/warm":                      {allow: classTeach},
	"GET /v1/classes/:class/materials":                 {allow: classTeach},
	"PUT /v1/classes/:class/materials":                 {allow: classTeach, body: `{"repo":"ftp://example.org/x.git"}`},
	"PUT /v1/classes/:class/materials/archive":         {allow: classTeach, body: "not an archive"},
	"DELETE /v1/classes/:class/materials":              {allow: classTeach},
	"GET /v1/classes/:class/work":                      {allow: classMembers},
	"GET /v1/classes/:class/collect":                   {allow: classTeach},
	"POST /v1/classes/:class/warm":                     {allow: classTeach},
	"DELETE /v1/classes/:class/warm":                   {allow: classTeach},
	"GET /auth/login":                                  {public: true},
	"GET /auth/callback":                               {public: true},
	"POST /auth/logout":                                {public: true},
	"GET /auth/device":                                 {browser: true, allow: everyone},
	"POST /auth/device":                                {browser: true, allow: everyone},
	"GET /join/:code":                                  {browser: true, allow: everyone},
	"POST /join/:code":                                 {browser: true, allow: everyone},
	"GET /sessions/:session/open":                      {browser: true, allow: sessionSeers},
	"POST /sessions/:session/open":                     {browser: true, allow: sessionSeers},
	"GET /local-oidc/.well-known/openid-configuration": {public: true},
	"GET /local-oidc/jwks":                             {public: true},
	"GET /local-oidc/link":                             {public: true},
	"GET /local-oidc/authorize":                        {public: true},
	"POST /local-oidc/authorize":                       {public: true},
	"POST /local-oidc/token":                           {public: true},
	"POST /v1/auth/device":                             {public: true},
	"POST /v1/auth/device/token":                       {public: true, body: `{"device_code": "nope"}`},
	"GET /v1/me":                                       {allow: everyone},
	"GET /v1/users":                                    {allow: []string{"admin"}},
	"PUT /v1/users/:user/role":                         {allow: []string{"admin"}, body: `{"role": "instructor"}`},
	"POST /v1/users/:user/revoke":                      {allow: []string{"admin"}},
	"GET /v1/tokens":                                   {allow: everyone},
	"POST /v1/tokens":                                  {allow: everyone, body: `{"name": "laptop"}`},
	"DELETE /v1/tokens/:token":                         {allow: []string{"alice", "admin"}},
	"GET /v1/audit":                                    {allow: []string{"admin"}},
	"GET /v1/spend":                                    {allow: []string{"admin"}},
	"GET /v1/settings":                                 {allow: []string{"admin"}},
	"PUT /v1/settings":                                 {allow: []string{"admin"}, body: `{"monthly_budget": 100}`},
	"POST /v1/join":                                    {allow: everyone, body: `{"code": "CODE"}`},
	"POST /v1/classes":                                 {allow: creators, body: `{"name": "New"}`},
	"GET /v1/classes":                                  {allow: everyone},
	"GET /v1/classes/:class":                           {allow: classMembers},
	"PATCH /v1/classes/:class":                         {allow: classTeach, body: `{"name": "Renamed"}`},
	"DELETE /v1/classes/:class":                        {allow: classTeach},
	"GET /v1/classes/:class/members":                   {allow: classTeach},
	"POST /v1/classes/:class/members":                  {allow: classTeach, body: `{"emails": ["carol@example.com"]}`},
	"DELETE /v1/classes/:class/members/:email":         {allow: classTeach},
	"GET /v1/classes/:class/invites":                   {allow: classTeach},
	"POST /v1/classes/:class/invites":                  {allow: classTeach, body: `{}`},
	"DELETE /v1/classes/:class/invites/:invite":        {allow: classTeach},
	"GET /v1/classes/:class/audit":                     {allow: classTeach},
	"GET /v1/classes/:class/cost":                      {allow: classTeach},
	"POST /v1/classes/:class/sessions":                 {allow: classMembers},
	"GET /v1/sessions":                                 {allow: everyone},
	"GET /v1/sessions/:session":                        {allow: sessionSeers},
	"POST /v1/sessions/:session/stop":                  {allow: sessionSeers},
	"POST /v1/sessions/:session/open":                  {allow: sessionSeers},
	"POST /v1/sessions/:session/keepalive":             {allow: sessionSeers},
	"POST /v1/sessions/:session/materials":             {allow: sessionSeers},
	"POST /v1/sessions/:session/extend":                {allow: classTeach, body: `{"by": "30m"}`},
	"POST /v1/scheduler/sweep":                         {scheduler: true},
	"POST /v1/scheduler/sessions/:session/expire":      {scheduler: true},
	"GET /v1/sessions/:session/events":                 {allow: sessionSeers},
	// Notebook origins: the one-time code is the credential of /_cohort/open
	// (tested in notebook_test.go); everything else goes to the notebook.
	"notebook GET /_cohort/open":  {public: true},
	"notebook POST /_cohort/open": {public: true},
	"notebook ANY /*path":         {allow: sessionSeers},
}

// fixture builds the world of the matrix in a fresh environment.
type fixture struct {
	*env
	params  map[string]string
	session string
	// anyMethod is what an ANY route is asked with.
	anyMethod string
	// Each caller's browser cookies: the app's (with its CSRF token) and
	// one for alice's notebook origin.
	appCookie, csrf, nbCookie map[string]string
}

func newFixture(t *testing.T) *fixture {
	e := newEnv(t)
	ctx := context.Background()
	for name, role := range map[string]cohort.Role{"cotutor": cohort.RoleInstructor, "removed": cohort.RoleParticipant, "demoted": cohort.RoleInstructor} {
		u := must(e.store.EnsureUser(ctx, name+"@example.com", role))
		secret := cohort.NewSecret(cohort.TokenPrefix)
		if err := e.store.CreateToken(ctx, &cohort.Token{ID: cohort.NewID("tok"), UserID: u.ID, Name: "test"}, cohort.HashSecret(secret)); err != nil {
			t.Fatal(err)
		}
		e.tokens[name], e.users[name] = secret, u
	}
	if err := e.store.SetUserRole(ctx, e.users["demoted"].ID, cohort.RoleParticipant); err != nil {
		t.Fatal(err)
	}
	classA := &cohort.Class{Name: "A", OwnerID: e.users["teacher"].ID}
	classB := &cohort.Class{Name: "B", OwnerID: e.users["teacher2"].ID}
	for _, c := range []*cohort.Class{classA, classB} {
		def := cohort.DefaultClass()
		c.Runtime, c.Policy = def.Runtime, def.Policy
		if err := e.store.CreateClass(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	enroll := func(class, email string, role cohort.MemberRole) {
		if _, err := e.store.AddMembers(ctx, class, []string{email}, role, "t"); err != nil {
			t.Fatal(err)
		}
	}
	enroll(classA.ID, "alice@example.com", cohort.MemberParticipant)
	enroll(classA.ID, "cotutor@example.com", cohort.MemberInstructor)
	enroll(classA.ID, "removed@example.com", cohort.MemberParticipant)
	enroll(classA.ID, "demoted@example.com", cohort.MemberInstructor)
	enroll(classB.ID, "bob@example.com", cohort.MemberParticipant)
	b := newBackend(t)
	// removed had a session; the removal leaves it running (as a start
	// racing it could), and removed must still reach nothing.
	if _, _, err := e.store.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: classA.ID, UserID: e.users["removed"].ID,
		State: cohort.StateReady, Driver: "local", NotebookToken: "t", Address: b.URL}, 10); err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"removed@example.com", "demoted@example.com"} {
		if err := e.store.RemoveMember(ctx, classA.ID, email); err != nil {
			t.Fatal(err)
		}
	}
	enroll(classA.ID, "demoted@example.com", cohort.MemberParticipant)
	sess, _, err := e.store.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: classA.ID, UserID: e.users["alice"].ID,
		State: cohort.StateRequested, Driver: "local", NotebookToken: "nbtoken"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	sess.State, sess.Address = cohort.StateReady, b.URL
	if err := e.store.UpdateSession(ctx, sess, nil); err != nil {
		t.Fatal(err)
	}
	tokens, _ := e.store.ListTokens(ctx, e.users["alice"].ID)
	inv := &cohort.Invite{ID: cohort.NewID("inv"), ClassID: classA.ID, CreatedBy: "t", ExpiresAt: time.Now().Add(time.Hour)}
	if err := e.store.CreateInvite(ctx, inv, cohort.HashSecret("CODE")); err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: e, session: sess.ID, anyMethod: http.MethodPost, appCookie: map[string]string{}, csrf: map[string]string{}, nbCookie: map[string]string{},
		params: map[string]string{
			":class": classA.ID, ":session": sess.ID, ":user": e.users["alice"].ID, ":token": tokens[0].ID,
			":email": "alice@example.com", ":invite": inv.ID, ":code": "CODE", "*path": "api/status", "*file": "app.css",
		}}
	for name, u := range e.users {
		app, csrf, nb := cohort.NewSecret(""), cohort.NewSecret(""), cohort.NewSecret("")
		expires := time.Now().Add(time.Hour)
		if err := e.store.CreateBrowserSession(ctx, cohort.HashSecret(app), &cohort.BrowserSession{User: u, CSRFToken: csrf, ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.CreateBrowserSession(ctx, cohort.HashSecret(nb), &cohort.BrowserSession{User: u, SessionID: sess.ID, ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
		f.appCookie[name], f.csrf[name], f.nbCookie[name] = app, csrf, nb
	}
	return f
}

func (f *fixture) path(route string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		if v, ok := f.params[p]; ok {
			parts[i] = v
		}
	}
	return strings.Join(parts, "/")
}

// credential is how a matrix request proves who sends it.
type credential int

const (
	viaToken      credential = iota // Authorization: Bearer
	viaCookie                       // the browser's cookie, and the CSRF token
	viaBareCookie                   // the cookie without the CSRF token
)

// send makes one matrix request: to the app, or to alice's notebook
// origin, as caller with the given credential.
func (f *fixture) send(r api.Route, caller string, cred credential, body string) response {
	f.t.Helper()
	u := f.http.URL + f.path(r.Path)
	if r.Notebook {
		u = f.nb(f.session, f.path(r.Path))
	}
	method := r.Method
	if method == "ANY" {
		method = f.anyMethod
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, u, rd)
	switch {
	case caller == "":
	case cred == viaToken:
		req.Header.Set("Authorization", "Bearer "+f.tokens[caller])
	case r.Notebook:
		// The notebook's own page, as a browser sends it.
		req.AddCookie(&http.Cookie{Name: "cohort_nb", Value: f.nbCookie[caller]})
		req.Header.Set("Origin", f.nb(f.session, ""))
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	default:
		req.AddCookie(&http.Cookie{Name: "cohort_session", Value: f.appCookie[caller]})
		if cred == viaCookie {
			req.Header.Set("X-CSRF-Token", f.csrf[caller])
		}
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func denied(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	routes := newEnv(t).server.Routes()
	for _, r := range routes {
		key := r.Method + " " + r.Path
		if r.Notebook {
			key = "notebook " + key
		}
		rule, ok := matrix[key]
		if !ok {
			t.Errorf("route %s is not in the authorisation matrix: classify it", key)
			continue
		}
		for _, caller := range callers {
			name := caller
			if name == "" {
				name = "anonymous"
			}
			t.Run(key+"/"+name, func(t *testing.T) {
				t.Parallel()
				methods := []string{r.Method}
				if r.Method == "ANY" {
					methods = []string{http.MethodGet, http.MethodPost}
				}
				for _, m := range methods {
					var f *fixture
					for _, cred := range []credential{viaToken, viaCookie} {
						// A request that may change something gets a world of
						// its own; reads share one.
						if f == nil || (m != http.MethodGet && m != http.MethodHead) {
							f = newFixture(t)
							f.anyMethod = m
						}
						checkRule(t, f, r, key, rule, caller, cred)
					}
				}
			})
		}
		unsafe := r.Method != http.MethodGet && r.Method != http.MethodHead
		if !rule.public && !rule.scheduler && !r.Notebook && unsafe {
			// A cookie without its CSRF token changes nothing (notebook
			// origins check Origin instead; see notebook_test.go).
			t.Run(key+"/cookie without CSRF token", func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				for _, caller := range rule.allow {
					if resp := f.send(r, caller, viaBareCookie, rule.body); resp.status != http.StatusForbidden {
						t.Fatalf("%s as %s with a cookie and no CSRF token = %d %s, want 403", key, caller, resp.status, resp.body)
					}
				}
			})
		}
	}
	for key := range matrix {
		if !slices.ContainsFunc(routes, func(r api.Route) bool {
			k := r.Method + " " + r.Path
			if r.Notebook {
				k = "notebook " + k
			}
			return k == key
		}) {
			t.Errorf("the matrix classifies %s, which is not a route", key)
		}
	}
}

func checkRule(t *testing.T, f *fixture, r api.Route, key string, rule rule, caller string, cred credential) {
	t.Helper()
	how := map[credential]string{viaToken: "token", viaCookie: "cookie"}[cred]
	resp := f.send(r, caller, cred, rule.body)
	switch {
	case resp.status >= 500:
		t.Fatalf("%s as %s (%s) = %d %s", key, caller, how, resp.status, resp.body)
	case rule.public:
		return
	case rule.scheduler:
		if resp.status != http.StatusUnauthorized {
			t.Fatalf("%s as %s (%s) = %d, want 401", key, caller, how, resp.status)
		}
	case rule.browser && caller == "":
		if resp.status != http.StatusSeeOther || !strings.HasPrefix(resp.header.Get("Location"), "/auth/login") {
			t.Fatalf("%s anonymous = %d (Location %q), want a redirect to sign in", key, resp.status, resp.header.Get("Location"))
		}
	case rule.browser && cred == viaToken:
		// Pages are for browsers: an API token does not sign one in.
		if resp.status != http.StatusSeeOther || !strings.HasPrefix(resp.header.Get("Location"), "/auth/login") {
			t.Fatalf("%s as %s with a token = %d, want a redirect to sign in", key, caller, resp.status)
		}
	case caller == "":
		if resp.status != http.StatusUnauthorized {
			t.Fatalf("%s anonymous = %d, want 401", key, resp.status)
		}
	default:
		if want := slices.Contains(rule.allow, caller); want == denied(resp.status) {
			t.Fatalf("%s as %s (%s) = %d %s; allowed: %v", key, caller, how, resp.status, resp.body, want)
		}
	}
}
