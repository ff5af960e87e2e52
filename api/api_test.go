package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/auth"
	"github.com/cohortdev/cohort/auth/localissuer"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/metrics"
	"github.com/cohortdev/cohort/store/cache"
	"github.com/cohortdev/cohort/store/postgres/pgtest"
	"github.com/cohortdev/cohort/store/sqlite"
)

// recorder is the provisioner's queue as the API sees it: it remembers
// which sessions it was asked to look at.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) Enqueue(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	return nil
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.ids {
		if x == id {
			n++
		}
	}
	return n
}

type env struct {
	t      testing.TB
	issuer *localissuer.Issuer
	// store is what the server uses, as cohort serve does: the cache in
	// front of db. Tests write through it too, as every part of cohort does.
	store  *cache.Store
	db     *sqlite.Store
	dbPath string
	server *api.Server
	http   *httptest.Server
	queue  *recorder
	tokens map[string]string // by user name
	users  map[string]*cohort.User
}

// newEnv starts a server with the users above; mods change its options.
func newEnv(t testing.TB, mods ...func(*api.Options)) *env {
	t.Helper()
	path := freshDB(t)
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := cache.New(db, cache.Options{Now: func() time.Time { return db.Now() }})
	e := &env{t: t, store: store, db: db, dbPath: path, queue: &recorder{}, tokens: map[string]string{}, users: map[string]*cohort.User{}}
	var issuer *localissuer.Issuer
	e.http, e.server = serve(t, func(url string) api.Options {
		var err error
		issuer, err = localissuer.New(localissuer.Options{URL: url + "/local-oidc", AfterLink: "/auth/login",
			RedirectOK: func(uri string) bool { return strings.HasPrefix(uri, url+"/auth/callback") }})
		if err != nil {
			t.Fatal(err)
		}
		opts := api.Options{
			Store: store, Enqueuer: e.queue, Driver: "local", EventPoll: 10 * time.Millisecond,
			Auth:        auth.New(auth.Options{Issuer: issuer.URL(), ClientID: localissuer.ClientID, Endpoints: issuer.Endpoints()}),
			LocalIssuer: issuer, LocalIssuerPath: "/local-oidc", Admins: []string{"boss@example.com"},
			Metrics: metrics.New(), Materials: newLibrary(t), Work: dirWork(t.TempDir()),
		}
		for _, mod := range mods {
			mod(&opts)
		}
		return opts
	})
	e.issuer = issuer
	for name, role := range map[string]cohort.Role{
		"admin": cohort.RoleAdmin, "teacher": cohort.RoleInstructor, "teacher2": cohort.RoleInstructor,
		"alice": cohort.RoleParticipant, "bob": cohort.RoleParticipant,
	} {
		e.addUser(name, role)
	}
	return e
}

// addUser adds a user with an API token to e.
func (e *env) addUser(name string, role cohort.Role) {
	e.t.Helper()
	u, err := e.store.EnsureUser(context.Background(), name+"@example.com", role)
	if err != nil {
		e.t.Fatal(err)
	}
	secret := cohort.NewSecret(cohort.TokenPrefix)
	if err := e.store.CreateToken(context.Background(), &cohort.Token{ID: cohort.NewID("tok"), UserID: u.ID, Name: "test"}, cohort.HashSecret(secret)); err != nil {
		e.t.Fatal(err)
	}
	e.tokens[name], e.users[name] = secret, u
}

// templateDB is an empty database with every migration applied, made once:
// the authorisation matrix alone opens over a thousand databases, and
// migrating each from nothing was half of its time.
var templateDB struct {
	once sync.Once
	dir  string
	b    []byte
	err  error
}

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if templateDB.dir != "" {
		os.RemoveAll(templateDB.dir)
	}
	os.Exit(code)
}

// freshDB returns the path of a new, migrated, empty database.
func freshDB(t testing.TB) string {
	t.Helper()
	templateDB.once.Do(func() {
		if templateDB.dir, templateDB.err = os.MkdirTemp("", "cohort-api-template"); templateDB.err != nil {
			return
		}
		path := filepath.Join(templateDB.dir, "cohort.db")
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			templateDB.err = err
			return
		}
		s.Close() // checkpoints the WAL into the file
		templateDB.b, templateDB.err = os.ReadFile(path)
	})
	if templateDB.err != nil {
		t.Fatal(templateDB.err)
	}
	path := filepath.Join(t.TempDir(), "cohort.db")
	if err := os.WriteFile(path, templateDB.b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serve starts an API server on a loopback port: the app at its URL, each
// notebook at http://ses-....localhost:PORT. options gets the app's URL
// (the built-in issuer needs it) and returns the rest.
func serve(t testing.TB, options func(url string) api.Options) (*httptest.Server, *api.Server) {
	t.Helper()
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	opts := options(srv.URL)
	if opts.PublicURL == "" {
		opts.PublicURL = srv.URL
	}
	opts.NotebookDomain = "localhost:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	s, err := api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	handler = s
	return srv, s
}

// nb returns the URL of path on a session's notebook origin.
func (e *env) nb(sessionID, path string) string {
	return e.server.NotebookOrigin(sessionID) + path
}

// noRedirects is a client that dials *.localhost on loopback, as browsers
// do, and shows redirects rather than following them.
var noRedirects = func() *http.Client {
	c := client.HTTPClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}()

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errorCode() (code, field, message string) {
	var b struct {
		Error struct{ Code, Field, Message string }
	}
	json.Unmarshal(r.body, &b)
	return b.Error.Code, b.Error.Field, b.Error.Message
}

// do sends a request as the named user ("" for anonymous) to a path of
// the app, or to a full URL (a notebook origin's).
func (e *env) do(user, method, path, body string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	if !strings.HasPrefix(path, "http") {
		path = e.http.URL + path
	}
	req, err := http.NewRequest(method, path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+e.tokens[user])
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

// createClass creates a class as user, with alice and bob on its roster.
func (e *env) createClass(user, body string) *cohort.Class {
	e.t.Helper()
	r := e.do(user, "POST", "/v1/classes", body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("create class: %d %s", r.status, r.body)
	}
	var c cohort.Class
	r.json(e.t, &c)
	if r := e.do(user, "POST", "/v1/classes/"+c.ID+"/members", `{"emails": ["alice@example.com", "bob@example.com"]}`); r.status != http.StatusOK {
		e.t.Fatalf("enroll: %d %s", r.status, r.body)
	}
	return &c
}

func (e *env) startSession(user, classID string) (*cohort.Session, int) {
	e.t.Helper()
	r := e.do(user, "POST", "/v1/classes/"+classID+"/sessions", "")
	var s cohort.Session
	if r.status < 300 {
		r.json(e.t, &s)
	}
	return &s, r.status
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/healthz", "/readyz", "/v1/openapi.json"} {
		if r := e.do("", "GET", path, ""); r.status != http.StatusOK {
			t.Errorf("GET %s = %d %s", path, r.status, r.body)
		}
	}
	e.db.Close()
	r := e.do("", "GET", "/readyz", "")
	if code, _, _ := r.errorCode(); r.status != http.StatusServiceUnavailable || code != cohort.EUNAVAILABLE {
		t.Fatalf("readyz with a closed database = %d %s", r.status, r.body)
	}
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	e.do("", "GET", "/v1/openapi.json", "").json(t, &doc)
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	routes := map[string]bool{}
	for _, r := range e.server.Routes() {
		methods := []string{r.Method}
		if r.Method == "ANY" { // the notebook proxy takes every method
			methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
		}
		for _, m := range methods {
			key := m + " " + openAPIPath(r.Path)
			routes[key] = true
			if !documented[key] {
				t.Errorf("route %s %s is not in openapi.json", m, r.Path)
			}
		}
	}
	delete(documented, "SERVERS /_cohort/open") // per-path servers: the notebook origins
	delete(documented, "SERVERS /{path}")
	for key := range documented {
		if !routes[key] {
			t.Errorf("openapi.json documents %s, which is not a route", key)
		}
	}
}

// openAPIPath turns gin's /a/:b/*c into OpenAPI's /a/{b}/{c}.
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

func TestClassInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name, body    string
		status        int
		code, field   string
		messageSubstr string
	}{
		{"defaults", `{"name": "NLP"}`, 201, "", "", ""},
		{"l4", `{"name": "L4", "runtime": {"machine_type": "g2-standard-4", "gpu_type": "nvidia-l4", "gpu_count": 1, "zones": ["us-central1-a"]}}`, 201, "", "", ""},
		{"malformed", `{"name": `, 400, "invalid", "", "truncated"},
		{"not json", `name=NLP`, 400, "invalid", "", "not valid JSON"},
		{"empty body", ``, 400, "invalid", "", "empty"},
		{"unknown field", `{"name": "NLP", "seat": 3}`, 400, "invalid", "seat", "unknown field"},
		{"wrong type", `{"name": "NLP", "policy": {"seats": "many"}}`, 400, "invalid", "policy.seats", "must be a int"},
		{"no name", `{}`, 400, "invalid", "name", "name is required"},
		{"zero seats", `{"name": "NLP", "policy": {"seats": 0}}`, 400, "invalid", "policy.seats", "at least 1"},
		{"negative seats", `{"name": "NLP", "policy": {"seats": -4}}`, 400, "invalid", "policy.seats", "at least 1"},
		{"absurd seats", `{"name": "NLP", "policy": {"seats": 100000}}`, 400, "invalid", "policy.seats", "at most 1000"},
		{"unknown gpu", `{"name": "NLP", "runtime": {"gpu_type": "nvidia-rtx-9090"}}`, 400, "invalid", "runtime.gpu_type", "unknown GPU type"},
		{"unknown machine", `{"name": "NLP", "runtime": {"machine_type": "n9-huge"}}`, 400, "invalid", "runtime.machine_type", "unknown machine type"},
		{"gpu does not fit", `{"name": "NLP", "runtime": {"gpu_type": "nvidia-l4"}}`, 400, "invalid", "runtime.machine_type", "g2-standard-"},
		{"bad duration", `{"name": "NLP", "policy": {"idle_timeout": "soon"}}`, 400, "invalid", "", "not a duration"},
		{"idle too short", `{"name": "NLP", "policy": {"idle_timeout": "1m"}}`, 400, "invalid", "policy.idle_timeout", "at least"},
		{"window backwards", `{"name": "NLP", "policy": {"starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T09:00:00Z"}}`, 400, "invalid", "policy.ends_at", "after starts_at"},
		{"two values", `{"name": "a"} {"name": "b"}`, 400, "invalid", "", "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("teacher", "POST", "/v1/classes", tt.body)
			code, field, msg := r.errorCode()
			if r.status != tt.status || code != tt.code || field != tt.field || !strings.Contains(msg, tt.messageSubstr) {
				t.Fatalf("= %d %s, want %d code %q field %q message containing %q", r.status, r.body, tt.status, tt.code, tt.field, tt.messageSubstr)
			}
		})
	}
	var list struct{ Classes []cohort.Class }
	e.do("admin", "GET", "/v1/classes", "").json(t, &list)
	if len(list.Classes) != 2 {
		t.Fatalf("%d classes exist, want the 2 valid ones (refused input leaves nothing)", len(list.Classes))
	}
}

func TestClassLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if r := e.do("alice", "POST", "/v1/classes", `{"name": "mine"}`); r.status != http.StatusForbidden {
		t.Fatalf("participant creating a class = %d, want 403", r.status)
	}
	c := e.createClass("teacher", `{"name": "NLP", "policy": {"seats": 3, "idle_timeout": "45m"}}`)
	if c.Policy.Seats != 3 || c.Policy.IdleTimeout.D() != 45*time.Minute || c.Policy.MaxLifetime.D() != 12*time.Hour || c.Runtime.GPUType != "nvidia-tesla-t4" {
		t.Fatalf("created class = %+v, want given fields plus defaults", c)
	}
	if r := e.do("alice", "GET", "/v1/classes/"+c.ID, ""); r.status != http.StatusOK {
		t.Fatalf("participant reading a class = %d", r.status)
	}
	if r := e.do("teacher2", "PATCH", "/v1/classes/"+c.ID, `{"name": "taken"}`); r.status != http.StatusNotFound {
		t.Fatalf("another instructor changing the class = %d, want 404 (not theirs to see)", r.status)
	}
	if r := e.do("alice", "PATCH", "/v1/classes/"+c.ID, `{"name": "mine now"}`); r.status != http.StatusForbidden {
		t.Fatalf("a participant changing the class = %d, want 403", r.status)
	}
	r := e.do("teacher", "PATCH", "/v1/classes/"+c.ID, `{"policy": {"seats": 5}}`)
	var upd cohort.Class
	r.json(t, &upd)
	if r.status != http.StatusOK || upd.Policy.Seats != 5 || upd.Policy.IdleTimeout.D() != 45*time.Minute || upd.Name != "NLP" {
		t.Fatalf("PATCH seats = %d %+v, want seats 5 and the rest unchanged", r.status, upd)
	}
	if r := e.do("teacher", "PATCH", "/v1/classes/"+c.ID, `{"policy": {"seats": 0}}`); r.status != http.StatusBadRequest {
		t.Fatalf("PATCH seats 0 = %d", r.status)
	}
	if r := e.do("admin", "PATCH", "/v1/classes/"+c.ID, `{"name": "NLP 2"}`); r.status != http.StatusOK {
		t.Fatalf("admin PATCH = %d", r.status)
	}
	s, _ := e.startSession("alice", c.ID)
	r = e.do("teacher", "DELETE", "/v1/classes/"+c.ID, "")
	if code, _, _ := r.errorCode(); r.status != http.StatusConflict || code != cohort.ECONFLICT {
		t.Fatalf("deleting a class with an active session = %d %s", r.status, r.body)
	}
	e.do("alice", "POST", "/v1/sessions/"+s.ID+"/stop", "")
	markEnded(t, e, s.ID)
	if r := e.do("teacher", "DELETE", "/v1/classes/"+c.ID, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete = %d %s", r.status, r.body)
	}
	if r := e.do("teacher", "GET", "/v1/classes/"+c.ID, ""); r.status != http.StatusNotFound {
		t.Fatalf("get deleted class = %d", r.status)
	}
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		if r := e.do("admin", m, "/v1/classes/cls_missing", `{}`); r.status != http.StatusNotFound {
			t.Errorf("%s unknown class = %d", m, r.status)
		}
	}
}

// markEnded does what the provisioner does once a stop completes.
func markEnded(t *testing.T, e *env, id string) {
	t.Helper()
	s, err := e.store.GetSession(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	s.State = cohort.StateStopped
	if err := e.store.UpdateSession(context.Background(), s, &cohort.Event{Time: time.Now(), State: s.State, Message: "session stopped"}); err != nil {
		t.Fatal(err)
	}
}

func TestStartSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.createClass("teacher", `{"name": "NLP", "policy": {"seats": 1}}`)
	first, status := e.startSession("alice", c.ID)
	if status != http.StatusCreated || first.State != cohort.StateRequested || e.queue.count(first.ID) != 1 {
		t.Fatalf("start = %d %+v, queued %d times", status, first, e.queue.count(first.ID))
	}
	again, status := e.startSession("alice", c.ID)
	if status != http.StatusOK || again.ID != first.ID {
		t.Fatalf("second start = %d %s, want 200 and the same session %s", status, again.ID, first.ID)
	}
	_, status = e.startSession("bob", c.ID)
	if status != http.StatusConflict {
		t.Fatalf("start in a full class = %d, want 409", status)
	}
	if _, status = e.startSession("alice", "cls_missing"); status != http.StatusNotFound {
		t.Fatalf("start in an unknown class = %d", status)
	}
	stored, err := e.store.GetSession(context.Background(), first.ID)
	if err != nil || len(stored.NotebookToken) < 20 {
		t.Fatalf("stored session %+v, %v: want a notebook token", stored, err)
	}
	r := e.do("alice", "GET", "/v1/sessions/"+first.ID, "")
	if strings.Contains(string(r.body), stored.NotebookToken) || strings.Contains(string(r.body), "127.0.0.1") {
		t.Fatalf("the notebook token or address reached the client: %s", r.body)
	}
	ended := e.createClass("teacher", `{"name": "Over", "policy": {"starts_at": "2020-01-01T09:00:00Z", "ends_at": "2020-01-01T17:00:00Z"}}`)
	r = e.do("alice", "POST", "/v1/classes/"+ended.ID+"/sessions", "")
	if _, _, msg := r.errorCode(); r.status != http.StatusConflict || !strings.Contains(msg, "ended") {
		t.Fatalf("start in an ended class = %d %s", r.status, r.body)
	}
}

func TestStopSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.createClass("teacher", `{"name": "NLP"}`)
	s, _ := e.startSession("alice", c.ID)
	r := e.do("alice", "POST", "/v1/sessions/"+s.ID+"/stop", "")
	var got cohort.Session
	r.json(t, &got)
	if r.status != http.StatusAccepted || got.State != cohort.StateStopping || got.Reason != "stopped by alice@example.com" {
		t.Fatalf("stop = %d %+v", r.status, got)
	}
	if e.queue.count(s.ID) != 2 {
		t.Fatalf("stop queued the session %d times in all, want 2 (start, stop)", e.queue.count(s.ID))
	}
	if r := e.do("alice", "POST", "/v1/sessions/"+s.ID+"/stop", ""); r.status != http.StatusOK {
		t.Fatalf("second stop = %d, want 200 (idempotent)", r.status)
	}
	// While it stops, a new start is refused with a reason, not a second VM.
	r = e.do("alice", "POST", "/v1/classes/"+c.ID+"/sessions", "")
	if _, _, msg := r.errorCode(); r.status != http.StatusConflict || !strings.Contains(msg, "still stopping") {
		t.Fatalf("start while stopping = %d %s", r.status, r.body)
	}
	markEnded(t, e, s.ID)
	if next, status := e.startSession("alice", c.ID); status != http.StatusCreated || next.ID == s.ID {
		t.Fatalf("start after stop = %d %s, want a new session", status, next.ID)
	}
}

func TestOthersSessionsAreHidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.createClass("teacher", `{"name": "NLP"}`)
	s, _ := e.startSession("alice", c.ID)
	paths := []struct{ method, path string }{
		{"GET", "/v1/sessions/" + s.ID},
		{"POST", "/v1/sessions/" + s.ID + "/stop"},
		{"POST", "/v1/sessions/" + s.ID + "/open"},
		{"GET", "/v1/sessions/" + s.ID + "/events"},
		{"GET", e.nb(s.ID, "/api/status")},
	}
	for _, p := range paths {
		if r := e.do("bob", p.method, p.path, ""); r.status != http.StatusNotFound {
			t.Errorf("bob %s %s = %d %s, want 404", p.method, p.path, r.status, r.body)
		}
		if r := e.do("", p.method, p.path, ""); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("anonymous %s %s = %d, want 401 with WWW-Authenticate", p.method, p.path, r.status)
		}
	}
	var list struct{ Sessions []cohort.Session }
	e.do("bob", "GET", "/v1/sessions", "").json(t, &list)
	if len(list.Sessions) != 0 {
		t.Fatalf("bob lists %d sessions, want none of alice's", len(list.Sessions))
	}
	e.do("admin", "GET", "/v1/sessions?all=true", "").json(t, &list)
	if len(list.Sessions) != 1 {
		t.Fatalf("admin lists %d sessions with all=true, want 1", len(list.Sessions))
	}
	if r := e.do("admin", "GET", "/v1/sessions/"+s.ID, ""); r.status != http.StatusOK {
		t.Fatalf("admin get = %d", r.status)
	}
	if got, _ := e.store.GetSession(context.Background(), s.ID); got.State != cohort.StateRequested {
		t.Fatalf("bob's refused stop changed the session to %s", got.State)
	}
	req, _ := http.NewRequest("GET", e.http.URL+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer cohort_forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged token = %d", resp.StatusCode)
	}
}

func TestInternalErrorsAreHidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.createClass("teacher", `{"name": "NLP"}`)
	e.db.Close()
	r := e.do("teacher", "GET", "/v1/classes/"+c.ID, "")
	code, _, msg := r.errorCode()
	if r.status != http.StatusUnauthorized && (r.status != http.StatusInternalServerError || code != cohort.EINTERNAL || msg != "Internal error.") {
		t.Fatalf("with a closed database = %d %s", r.status, r.body)
	}
	if strings.Contains(strings.ToLower(string(r.body)), "sql") {
		t.Fatalf("database error text reached the client: %s", r.body)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if r := e.do("alice", "GET", "/v1/nope", ""); r.status != http.StatusNotFound {
		t.Fatalf("unknown route = %d", r.status)
	}
	if r := e.do("alice", "PUT", "/v1/classes", "{}"); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("wrong method = %d", r.status)
	}
}
