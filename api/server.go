// Package api is cohort's HTTP face: the JSON API under /v1 (used by the
// CLI and, later, the web pages), health checks, and the notebook proxy
// under /s/. Handlers record what is wanted and queue work; they never
// provision anything themselves.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/auth"
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
	// Sweeper enforces deadlines for the scheduler endpoints, which admit
	// only callers Scheduler verifies (nil: those endpoints refuse all).
	Sweeper   Sweeper
	Scheduler CallerVerifier
	// Driver names the provisioner driver new sessions use; FilesNote is
	// what it tells participants about their files.
	Driver    string
	FilesNote string
	// PublicURL is how browsers reach cohort (e.g. https://cohort.example.org);
	// derived from each request when empty.
	PublicURL string
	Logger    *slog.Logger
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// EventPoll is how often an event stream looks for news; 250ms if zero.
	EventPoll time.Duration
}

// Server serves the API and the notebook proxy.
type Server struct {
	store      cohort.Store
	enqueuer   Enqueuer
	auth       *auth.RelyingParty
	admins     []string
	firstAdmin bool
	entries    entryLog
	tracker    Toucher
	sweeper    Sweeper
	scheduler  CallerVerifier
	driver     string
	filesNote  string
	publicURL  string
	log        *slog.Logger
	now        func() time.Time
	eventPoll  time.Duration
	proxy      *notebookProxy
	engine     *gin.Engine
}

// New returns a Server with its routes.
func New(opts Options) *Server {
	s := &Server{
		store: opts.Store, enqueuer: opts.Enqueuer, auth: opts.Auth, admins: normalizeAdmins(opts.Admins), firstAdmin: opts.FirstUserAdmin, driver: opts.Driver,
		tracker: opts.Tracker, sweeper: opts.Sweeper, scheduler: opts.Scheduler, filesNote: opts.FilesNote,
		publicURL: opts.PublicURL, log: opts.Logger, now: opts.Now, eventPoll: opts.EventPoll,
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
	s.proxy = newNotebookProxy(s)
	gin.SetMode(gin.ReleaseMode)
	s.engine = gin.New()
	s.engine.Use(s.recoverer, s.limitBody)
	s.engine.HandleMethodNotAllowed = true
	s.engine.NoRoute(func(c *gin.Context) {
		s.fail(c, cohort.Errorf(cohort.ENOTFOUND, "no such route: %s %s", c.Request.Method, c.Request.URL.Path))
	})
	s.engine.NoMethod(func(c *gin.Context) {
		s.fail(c, cohort.Errorf(EMETHOD, "%s is not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	s.routes(opts.LocalIssuer, opts.LocalIssuerPath)
	return s
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

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Route is one registered route, as gin spells it.
type Route struct{ Method, Path string }

// Routes lists every registered route (for the OpenAPI and auth tests).
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.engine.Routes() {
		out = append(out, Route{r.Method, r.Path})
	}
	return out
}

func (s *Server) routes(localIssuer http.Handler, localIssuerPath string) {
	r := s.engine
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/v1/openapi.json", s.openAPI)

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
	if localIssuer != nil {
		h, p := gin.WrapH(localIssuer), localIssuerPath
		r.GET(p+"/.well-known/openid-configuration", h)
		r.GET(p+"/jwks", h)
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
	v1.POST("/classes/:class/start-all", s.startAll)
	v1.POST("/classes/:class/stop-all", s.stopAll)
	v1.POST("/classes/:class/sessions", s.startSession)

	v1.GET("/sessions", s.listSessions)
	v1.GET("/sessions/:session", s.getSession)
	v1.POST("/sessions/:session/stop", s.stopSession)
	v1.POST("/sessions/:session/open", s.openSession)
	v1.POST("/sessions/:session/keepalive", s.keepAlive)
	v1.POST("/sessions/:session/extend", s.extendSession)
	v1.GET("/sessions/:session/events", s.sessionEvents)

	for _, m := range proxyMethods {
		r.Handle(m, "/s/:session/*path", s.proxy.serve)
	}
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

// proxyMethods are the methods the notebook proxy forwards.
var proxyMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// maxBody bounds request bodies on the API; the proxy streams uploads to
// the notebook without a bound of cohort's.
const maxBody = 1 << 20

func (s *Server) limitBody(c *gin.Context) {
	if c.Request.Body != nil && !isProxyPath(c.Request.URL.Path) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBody)
	}
	c.Next()
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
