// Package api is cohort's HTTP face: the JSON API under /v1 (used by the
// CLI and the web pages), the pages, health checks, and the notebook proxy,
// which serves each session on an origin of its own (see origins.go).
// Handlers record what is wanted and queue work; they never provision
// anything themselves.
package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/auth"
	"github.com/cohortdev/cohort/cost"
	"github.com/cohortdev/cohort/materials"
	"github.com/cohortdev/cohort/metrics"
)

// Enqueuer asks the provisioner to look at a session soon.
type Enqueuer interface {
	Enqueue(ctx context.Context, sessionID string) error
}

// Options configure a Server.
type Options struct {
	Store    cohort.Store
	Enqueuer Enqueuer
	// Auth signs browsers in with OpenID Connect.
	Auth *auth.RelyingParty
	// LocalIssuer, if set, is served under LocalIssuerPath: the embedded
	// sign-in for one machine.
	LocalIssuer     http.Handler
	LocalIssuerPath string
	// Admins are emails that become admins when they sign in.
	Admins []string
	// FirstUserAdmin makes the first account of a fresh install an admin,
	// so that one person on their own machine can run a whole workshop in
	// the browser. Only for the built-in, loopback-only sign-in.
	FirstUserAdmin bool
	// Tracker hears of use seen by the proxy (nil: not tracked).
	Tracker Toucher
	// Metrics counts the proxy and sign-ins, and is served at /metrics to
	// admins (nil: nothing counted, no /metrics).
	Metrics *metrics.Metrics
	// Sweeper enforces deadlines for the scheduler endpoints, which admit
	// only callers Scheduler verifies (nil: those endpoints refuse all).
	Sweeper   Sweeper
	Scheduler CallerVerifier
	// Driver names the provisioner driver new sessions use; FilesNote is
	// what it tells participants about their files.
	Driver    string
	FilesNote string
	// Prices say what sessions cost (cost.Default() if nil).
	Prices *cost.Table
	// Claimer, if set, hears of every warm seat a participant takes.
	Claimer cohort.Claimer
	// Materials keeps classes' materials (nil: classes have none).
	Materials *materials.Library
	// Work, if set, keeps participants' work between sessions, for
	// downloads and collections.
	Work cohort.WorkKeeper
	// Runtimes, if set, checks a class's runtime against the cloud (the
	// image exists and fits its disk) when it is created or changed.
	Runtimes cohort.RuntimeChecker
	// PublicURL is how browsers reach the app (e.g.
	// https://cohort.example.org); required.
	PublicURL string
	// NotebookDomain is where notebooks live: session S is served at
	// {label of S}.{NotebookDomain}, e.g. nb.example.org or localhost:8080;
	// required, and never the app's host or a parent of it.
	NotebookDomain string
	// TrustedProxies are the addresses (or CIDR ranges) whose
	// X-Forwarded-For is believed; none by default.
	TrustedProxies []string
	Logger         *slog.Logger
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// EventPoll is how often an event stream looks for news; 250ms if zero.
	EventPoll time.Duration
	// Recheck is how often an open WebSocket or event stream looks again
	// at what let it in (revoked? off the roster? ended?); 30s if zero.
	Recheck time.Duration
}

// Server serves the API and the notebook proxy.
type Server struct {
	// zips holds who is being sent a zip of work now (materials.go).
	zips       zipSlots
	store      cohort.Store
	enqueuer   Enqueuer
	runtimes   cohort.RuntimeChecker
	claimer    cohort.Claimer
	materials  *materials.Library
	work       cohort.WorkKeeper
	prices     *cost.Table
	admission  sync.Map // class ID → *sync.Mutex: admission against its budget
	auth       *auth.RelyingParty
	admins     []string
	firstAdmin bool
	entries    entryLog
	// fresh reads from the database itself where a stale answer would
	// admit too much (admission, under holdClass): other replicas write
	// past this one's cache.
	fresh     cohort.Store
	tracker   Toucher
	metrics   *metrics.Metrics
	sweeper   Sweeper
	scheduler CallerVerifier
	driver    string
	filesNote string
	publicURL string
	appHost   string // the public URL's host[:port], as a Host header says it
	origins   origins
	appCookie string
	nbCookie  string
	// loginCookie binds a sign-in in progress to its browser; __Host- over
	// https, so that no notebook of the same site can plant one (login
	// CSRF).
	loginCookie string
	log         *slog.Logger
	now         func() time.Time
	eventPoll   time.Duration
	recheck     time.Duration
	proxy       *notebookProxy
	engine      *gin.Engine // the app's origin
	notebooks   *gin.Engine // every notebook origin

	auditLimit   *limiter // audit rows of anonymous requests, per address
	deviceLimit  *limiter // CLI sign-ins started, per address
	approveLimit *limiter // device codes tried in the approval page, per address
	pollLimit    *limiter // device token polls, per device code
	streams      gauge    // open event streams, per user
}

// New returns a Server with its routes.
func New(opts Options) (*Server, error) {
	if opts.PublicURL == "" {
		return nil, errors.New("api: PublicURL is required")
	}
	publicURL := strings.TrimRight(opts.PublicURL, "/")
	o, err := newOrigins(publicURL, opts.NotebookDomain)
	if err != nil {
		return nil, err
	}
	app, _ := url.Parse(publicURL) // newOrigins checked it
	s := &Server{
		appHost: withoutDefaultPort(strings.ToLower(app.Host), app.Scheme),
		store:   opts.Store, enqueuer: opts.Enqueuer, runtimes: opts.Runtimes, claimer: opts.Claimer, materials: opts.Materials, work: opts.Work, prices: cmp.Or(opts.Prices, cost.Default()), auth: opts.Auth, admins: normalizeAdmins(opts.Admins), firstAdmin: opts.FirstUserAdmin, driver: opts.Driver,
		tracker: opts.Tracker, metrics: opts.Metrics, sweeper: opts.Sweeper, scheduler: opts.Scheduler, filesNote: opts.FilesNote,
		publicURL: publicURL, origins: o, log: opts.Logger, now: opts.Now, eventPoll: opts.EventPoll, recheck: opts.Recheck,
		appCookie: cookieName(appCookieName, o.secure()), nbCookie: cookieName(notebookCookieName, o.secure()),
		loginCookie: cookieName(loginCookieName, o.secure()),
		auditLimit:  newLimiter(30, time.Minute), deviceLimit: newLimiter(10, time.Minute),
		approveLimit: newLimiter(10, time.Minute), pollLimit: newLimiter(1, deviceInterval*3/4),
		streams: gauge{max: maxStreamsPerUser},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.eventPoll == 0 {
		s.eventPoll = 250 * time.Millisecond
	}
	if s.recheck == 0 {
		s.recheck = 30 * time.Second
	}
	s.fresh = s.store
	if f, ok := s.store.(interface{ Fresh() cohort.Store }); ok {
		s.fresh = f.Fresh()
	}
	s.proxy = newNotebookProxy(s)
	gin.SetMode(gin.ReleaseMode)
	s.engine = gin.New()
	// gin believes X-Forwarded-For from anyone unless told otherwise.
	if err := s.engine.SetTrustedProxies(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	s.engine.Use(s.recoverer, s.clientAddr, s.appHeaders, s.guardBody, s.limitBody)
	s.engine.HandleMethodNotAllowed = true
	s.engine.NoRoute(func(c *gin.Context) {
		s.fail(c, cohort.Errorf(cohort.ENOTFOUND, "no such route: %s %s", c.Request.Method, c.Request.URL.Path))
	})
	s.engine.NoMethod(func(c *gin.Context) {
		s.fail(c, cohort.Errorf(EMETHOD, "%s is not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	s.routes(opts.LocalIssuer, opts.LocalIssuerPath)
	s.notebooks = s.notebookRoutes()
	if err := s.notebooks.SetTrustedProxies(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	if o.sharesSite(publicURL) {
		s.log.Warn("notebooks share a registrable domain with the app: cookies are host-only, but a separate domain is safer (docs/security.md)",
			"app", publicURL, "notebook_domain", opts.NotebookDomain)
	}
	return s, nil
}

func normalizeAdmins(emails []string) []string {
	var out []string
	for _, e := range emails {
		if n, err := cohort.NormalizeEmail("admins", e); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// ServeHTTP makes Server an http.Handler: a notebook origin's requests go
// to the notebook side, all others to the app.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := s.origins.session(r.Host); ok {
		s.notebooks.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, id)))
		return
	}
	if s.origins.isDomain(r.Host) {
		// The notebook domain itself (localhost:8080 with the defaults) is
		// no notebook and not the app's origin: the app is elsewhere.
		http.Redirect(w, r, s.publicURL+"/", http.StatusSeeOther)
		return
	}
	if !strings.EqualFold(withoutDefaultPort(r.Host, s.origins.scheme), s.appHost) && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
		// Any other name (a rebinding DNS name, another subdomain of the
		// notebook domain) gets nothing: the app answers on its own host.
		http.Error(w, "cohort does not serve "+r.Host+"; it is at "+s.publicURL, http.StatusMisdirectedRequest)
		return
	}
	s.engine.ServeHTTP(w, r)
}

// withoutDefaultPort drops the scheme's default port from a Host header.
func withoutDefaultPort(host, scheme string) string {
	return strings.TrimSuffix(host, map[string]string{"http": ":80", "https": ":443"}[scheme])
}

// Route is one registered route, as gin spells it. Notebook is true for
// the routes of notebook origins.
type Route struct {
	Method, Path string
	Notebook     bool
}

// Routes lists every registered route (for the OpenAPI and auth tests);
// the notebook origins' proxy, which takes every other path and method,
// is listed as ANY /*path.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.engine.Routes() {
		out = append(out, Route{Method: r.Method, Path: r.Path})
	}
	for _, r := range s.notebooks.Routes() {
		out = append(out, Route{Method: r.Method, Path: r.Path, Notebook: true})
	}
	return append(out, Route{Method: "ANY", Path: "/*path", Notebook: true})
}

// NotebookOrigin returns the origin a session's notebook is served from.
func (s *Server) NotebookOrigin(sessionID string) string { return s.origins.origin(sessionID) }

func (s *Server) routes(localIssuer http.Handler, localIssuerPath string) {
	r := s.engine
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/v1/openapi.json", s.openAPI)
	r.GET("/metrics", s.authenticate, s.serveMetrics)

	// Browser pages and the sign-in flow.
	r.GET("/", s.home)
	r.GET("/assets/*file", gin.WrapH(s.assets()))
	r.GET("/classes/new", s.newClassPage)
	r.GET("/classes/:class/manage", s.managePage)
	r.GET("/admin", s.adminPage)
	r.GET("/auth/login", s.login)
	r.GET(callbackPath, s.callback)
	r.POST("/auth/logout", s.logout)
	r.GET("/auth/device", s.devicePage)
	r.POST("/auth/device", s.deviceApprove)
	r.GET("/join/:code", s.joinPage)
	r.POST("/join/:code", s.joinSubmit)
	r.GET("/sessions/:session/open", s.openPage)
	r.POST("/sessions/:session/open", s.openConfirm)
	if localIssuer != nil {
		h, p := gin.WrapH(localIssuer), localIssuerPath
		r.GET(p+"/.well-known/openid-configuration", h)
		r.GET(p+"/jwks", h)
		r.GET(p+"/link", h)
		r.GET(p+"/authorize", h)
		r.POST(p+"/authorize", h)
		r.POST(p+"/token", h)
	}

	// CLI sign-in: anonymous by nature; the device code is the credential.
	r.POST("/v1/auth/device", s.startDevice)
	r.POST("/v1/auth/device/token", s.deviceToken)

	// Cloud Scheduler's backstops: OIDC ID tokens of one service account.
	r.POST("/v1/scheduler/sweep", s.schedulerAuth, s.schedulerSweep)
	r.POST("/v1/scheduler/sessions/:session/expire", s.schedulerAuth, s.schedulerExpire)

	v1 := r.Group("/v1", s.authenticate)
	v1.GET("/me", s.getMe)
	v1.GET("/users", s.listUsers)
	v1.PUT("/users/:user/role", s.setRole)
	v1.POST("/users/:user/revoke", s.revokeUser)
	v1.GET("/tokens", s.listTokens)
	v1.POST("/tokens", s.createToken)
	v1.DELETE("/tokens/:token", s.revokeToken)
	v1.GET("/audit", s.listAudit)
	v1.GET("/spend", s.getSpend)
	v1.GET("/settings", s.getSettings)
	v1.PUT("/settings", s.putSettings)
	v1.POST("/join", s.join)

	v1.POST("/classes", s.createClass)
	v1.GET("/classes", s.listClasses)
	v1.GET("/classes/:class", s.getClass)
	v1.PATCH("/classes/:class", s.updateClass)
	v1.DELETE("/classes/:class", s.deleteClass)
	v1.GET("/classes/:class/members", s.listMembers)
	v1.POST("/classes/:class/members", s.addMembers)
	v1.DELETE("/classes/:class/members/:email", s.removeMember)
	v1.GET("/classes/:class/invites", s.listInvites)
	v1.POST("/classes/:class/invites", s.createInvite)
	v1.DELETE("/classes/:class/invites/:invite", s.revokeInvite)
	v1.GET("/classes/:class/audit", s.classAudit)
	v1.GET("/classes/:class/cost", s.getClassCost)
	v1.POST("/classes/:class/start-all", s.startAll)
	v1.POST("/classes/:class/stop-all", s.stopAll)
	v1.GET("/classes/:class/warm", s.getPool)
	v1.POST("/classes/:class/warm", s.warmNow)
	v1.DELETE("/classes/:class/warm", s.drainPool)
	v1.GET("/classes/:class/materials", s.getMaterials)
	v1.PUT("/classes/:class/materials", s.setMaterials)
	v1.PUT(strings.TrimPrefix(archivePath, "/v1"), s.uploadMaterials)
	v1.DELETE("/classes/:class/materials", s.removeMaterials)
	v1.GET("/classes/:class/work", s.downloadWork)
	v1.GET("/classes/:class/collect", s.collectWork)
	v1.POST("/classes/:class/sessions", s.startSession)

	v1.GET("/sessions", s.listSessions)
	v1.GET("/sessions/:session", s.getSession)
	v1.POST("/sessions/:session/stop", s.stopSession)
	v1.POST("/sessions/:session/open", s.openSession)
	v1.POST("/sessions/:session/keepalive", s.keepAlive)
	v1.POST("/sessions/:session/materials", s.pullMaterials)
	v1.POST("/sessions/:session/extend", s.extendSession)
	v1.GET("/sessions/:session/events", s.sessionEvents)
}

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Error("readiness: store does not answer", "error", err)
		s.fail(c, cohort.Errorf(cohort.EUNAVAILABLE, "the database does not answer"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// maxBody bounds request bodies on the app, but for an upload of
// materials (materials.MaxUpload); the notebook proxy streams uploads to
// the notebook without a bound of cohort's.
const maxBody = 1 << 20

func (s *Server) limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		limit := int64(maxBody)
		if c.FullPath() == archivePath {
			limit = materials.MaxUpload + 1 // the library names the limit
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	}
	c.Next()
}

var (
	appBody    = guardBody(appBodyTime, appBodyTime)
	uploadBody = guardBody(notebookBodyIdle, 0)
)

// guardBody bounds the time a body may take: appBodyTime, but an upload
// of materials must only keep moving.
func (s *Server) guardBody(c *gin.Context) {
	if c.FullPath() == archivePath {
		uploadBody(c)
		return
	}
	appBody(c)
}

func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r) // the proxy's way of aborting a response
			}
			s.log.Error("panic in handler", "panic", r, "path", c.Request.URL.Path)
			s.fail(c, cohort.Errorf(cohort.EINTERNAL, "Internal error."))
		}
	}()
	c.Next()
}
