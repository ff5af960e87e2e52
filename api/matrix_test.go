package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
)

// The authorisation matrix: every registered route, with every kind of
// caller, allowed or denied. A route nobody classified here fails the test.
//
// Callers: anonymous; alice, participant of class A; bob, participant of
// class B; teacher, instructor of class A; teacher2, instructor of class B;
// admin. Paths name class A, alice's session in it, alice's token, an
// invite of class A.

var callers = []string{"", "alice", "bob", "teacher", "teacher2", "admin"}

type rule struct {
	// public routes answer anonymous callers (their own checks, if any,
	// are tested elsewhere); browser pages send the anonymous to sign in;
	// scheduler routes take only Cloud Scheduler's OIDC tokens: every
	// user's API token is refused.
	public, browser, scheduler bool
	allow                      []string
	body                       string
}

var (
	everyone     = []string{"alice", "bob", "teacher", "teacher2", "admin"}
	classMembers = []string{"alice", "teacher", "admin"}
	classTeach   = []string{"teacher", "admin"}
	sessionSeers = []string{"alice", "teacher", "admin"}
)

var matrix = map[string]rule{
	"GET /healthz":                      {public: true},
	"GET /readyz":                       {public: true},
	"GET /v1/openapi.json":              {public: true},
	"GET /":                             {public: true},
	"GET /assets/*file":                 {public: true},
	"GET /classes/new":                  {browser: true},
	"GET /classes/:class/manage":        {browser: true},
	"GET /admin":                        {browser: true},
	"POST /v1/classes/:class/stop-all":  {allow: classTeach},
	"POST /v1/classes/:class/start-all": {allow: classTeach},
	"GET /auth/login":                   {public: true},
	"GET /auth/callback":                {public: true},
	"POST /auth/logout":                 {public: true},
	"GET /auth/device":                  {browser: true},
	"POST /auth/device":                 {browser: true},
	"GET /join/:code":                   {browser: true},
	"POST /join/:code":                  {browser: true},
	"GET /local-oidc/.well-known/openid-configuration": {public: true},
	"GET /local-oidc/jwks":                             {public: true},
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
	"POST /v1/join":                                    {allow: everyone, body: `{"code": "CODE"}`},
	"POST /v1/classes":                                 {allow: []string{"teacher", "teacher2", "admin"}, body: `{"name": "New"}`},
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
	"POST /v1/classes/:class/sessions":                 {allow: classMembers},
	"GET /v1/sessions":                                 {allow: everyone},
	"GET /v1/sessions/:session":                        {allow: sessionSeers},
	"POST /v1/sessions/:session/stop":                  {allow: sessionSeers},
	"POST /v1/sessions/:session/open":                  {allow: sessionSeers},
	"POST /v1/sessions/:session/keepalive":             {allow: sessionSeers},
	"POST /v1/sessions/:session/extend":                {allow: classTeach, body: `{"by": "30m"}`},
	"POST /v1/scheduler/sweep":                         {scheduler: true},
	"POST /v1/scheduler/sessions/:session/expire":      {scheduler: true},
	"GET /v1/sessions/:session/events":                 {allow: sessionSeers},
	"GET /s/:session/*path":                            {allow: sessionSeers},
	"HEAD /s/:session/*path":                           {allow: sessionSeers},
	"POST /s/:session/*path":                           {allow: sessionSeers},
	"PUT /s/:session/*path":                            {allow: sessionSeers},
	"PATCH /s/:session/*path":                          {allow: sessionSeers},
	"DELETE /s/:session/*path":                         {allow: sessionSeers},
	"OPTIONS /s/:session/*path":                        {allow: sessionSeers},
}

// fixture builds the world of the matrix in a fresh environment.
type fixture struct {
	*env
	params map[string]string
}

func newFixture(t *testing.T) *fixture {
	e := newEnv(t)
	ctx := context.Background()
	classA := &cohort.Class{Name: "A", OwnerID: e.users["teacher"].ID}
	classB := &cohort.Class{Name: "B", OwnerID: e.users["teacher2"].ID}
	for _, c := range []*cohort.Class{classA, classB} {
		def := cohort.DefaultClass()
		c.Runtime, c.Policy = def.Runtime, def.Policy
		if err := e.store.CreateClass(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.AddMembers(ctx, classA.ID, []string{"alice@example.com"}, cohort.MemberParticipant, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.AddMembers(ctx, classB.ID, []string{"bob@example.com"}, cohort.MemberParticipant, "t"); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t)
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
	return &fixture{env: e, params: map[string]string{
		":class": classA.ID, ":session": sess.ID, ":user": e.users["alice"].ID, ":token": tokens[0].ID,
		":email": "alice@example.com", ":invite": inv.ID, ":code": "CODE", "*path": "api/status", "*file": "app.css",
	}}
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

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	routes := newEnv(t).server.Routes()
	for _, r := range routes {
		key := r.Method + " " + r.Path
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
				f := newFixture(t)
				resp := f.do(caller, r.Method, f.path(r.Path), rule.body)
				switch {
				case resp.status >= 500:
					t.Fatalf("%s as %s = %d %s", key, name, resp.status, resp.body)
				case rule.public:
					return
				case rule.browser && caller == "":
					if resp.status != http.StatusSeeOther || !strings.HasPrefix(resp.header.Get("Location"), "/auth/login") {
						t.Fatalf("%s anonymous = %d (Location %q), want a redirect to sign in", key, resp.status, resp.header.Get("Location"))
					}
				case rule.browser:
					return // pages take browser sessions; tested with them
				case rule.scheduler:
					if resp.status != http.StatusUnauthorized {
						t.Fatalf("%s as %s = %d, want 401", key, name, resp.status)
					}
				case caller == "":
					if resp.status != http.StatusUnauthorized {
						t.Fatalf("%s anonymous = %d, want 401", key, resp.status)
					}
				default:
					denied := resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden || resp.status == http.StatusNotFound
					if want := slices.Contains(rule.allow, caller); want == denied {
						t.Fatalf("%s as %s = %d %s; allowed: %v", key, name, resp.status, resp.body, want)
					}
				}
			})
		}
	}
	for key := range matrix {
		if !slices.ContainsFunc(routes, func(r api.Route) bool { return r.Method+" "+r.Path == key }) {
			t.Errorf("the matrix classifies %s, which is not a route", key)
		}
	}
}
