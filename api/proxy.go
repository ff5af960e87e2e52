package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// codeParam carries a one-time "open in browser" code on a proxy URL.
const codeParam = "cohort_code"

func isProxyPath(p string) bool { return strings.HasPrefix(p, "/s/") }

// notebookProxy forwards /s/{session}/... to the session's notebook, HTTP
// and WebSocket alike, after checking who asks. It adds the notebook's
// token itself and strips cohort's credentials, so the participant never
// sees the token and the notebook never sees cohort's secrets.
type notebookProxy struct {
	s         *Server
	transport *http.Transport
}

func newNotebookProxy(s *Server) *notebookProxy {
	return &notebookProxy{s: s, transport: &http.Transport{
		Proxy:                 nil, // notebooks are reached directly, never through an HTTP proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute, // large notebook saves take a while
	}}
}

func (p *notebookProxy) serve(c *gin.Context) {
	s := p.s
	id := c.Param("session")
	if code := c.Query(codeParam); code != "" {
		p.redeem(c, id, code)
		return
	}
	// The proxy is for browsers and scripts alike; CSRF does not apply:
	// the cookie is SameSite=Lax and the notebook runs its own XSRF check.
	u, _, err := s.identify(c.Request)
	if err != nil {
		s.fail(c, err)
		return
	}
	a, err := s.sessionFor(c.Request.Context(), u, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	sess := a.session
	switch {
	case !sess.State.Active():
		s.fail(c, cohort.Errorf(cohort.ECONFLICT, "session %s has ended (%s); start a new one", id, sess.State))
		return
	case sess.State != cohort.StateReady:
		c.Header("Retry-After", "2")
		s.fail(c, cohort.Errorf(cohort.EUNAVAILABLE, "session %s is %s; the notebook is not ready yet", id, sess.State))
		return
	}
	if isWebSocket(c.Request) && !sameOrigin(c.Request) {
		s.fail(c, cohort.Errorf(cohort.EFORBIDDEN, "cross-origin WebSocket refused"))
		return
	}
	if !a.owner {
		p.recordEntry(c, u, sess)
	}
	target, err := url.Parse(sess.Address)
	if err != nil {
		s.fail(c, err)
		return
	}
	transport := p.transport
	if s.tracker != nil {
		if requestIsUse(c.Request, sess.BasePath()) {
			s.tracker.Touch(sess.ID)
		}
		if isWebSocket(c.Request) {
			transport = wsTransport(p.transport, func() { s.tracker.Touch(sess.ID) })
		}
	}
	rp := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Jupyter checks that Origin matches Host; both are cohort's.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			stripCredentials(pr.Out)
			pr.Out.Header.Set("Authorization", "token "+sess.NotebookToken)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("notebook did not answer", "session_id", sess.ID, "error", err)
			// Let the provisioner find out whether the notebook died.
			if err := s.enqueuer.Enqueue(r.Context(), sess.ID); err != nil {
				s.log.Error("enqueue session", "session_id", sess.ID, "error", err)
			}
			s.fail(c, cohort.Errorf(cohort.EUNAVAILABLE, "the notebook of session %s did not answer; it may have stopped", sess.ID))
		},
	}
	rp.ServeHTTP(c.Writer, c.Request)
}

// recordEntry tells the audit log and the participant (in their session's
// events) that an instructor or admin entered their notebook.
func (p *notebookProxy) recordEntry(c *gin.Context, u *cohort.User, sess *cohort.Session) {
	s := p.s
	now := s.now()
	if !s.entries.first(u.ID, sess.ID, now) {
		return
	}
	ctx := c.Request.Context()
	s.audit(ctx, u, cohort.AuditEvent{Action: cohort.AuditSessionEntered, ClassID: sess.ClassID, SessionID: sess.ID, Subject: sess.UserID})
	err := s.store.AppendEvent(context.WithoutCancel(ctx), &cohort.Event{SessionID: sess.ID, Time: now.UTC(), State: sess.State,
		Message: string(u.Role) + " " + u.Email + " opened this notebook"})
	if err != nil {
		s.log.Error("record notebook entry", "session_id", sess.ID, "error", err)
	}
}

// redeem turns a one-time code into a browser sign-in cookie and sends the
// browser on to the same URL without the code, so the code does not stay
// in its history.
func (p *notebookProxy) redeem(c *gin.Context, id, code string) {
	s := p.s
	ctx := c.Request.Context()
	userID, sessionID, err := s.store.RedeemLoginCode(ctx, cohort.HashSecret(code))
	if err != nil {
		s.fail(c, err)
		return
	}
	if sessionID != id {
		s.fail(c, cohort.Errorf(cohort.EUNAUTHORIZED, "this link belongs to another session"))
		return
	}
	secret := cohort.NewSecret("")
	if err := s.store.CreateBrowserSession(ctx, cohort.HashSecret(secret), userID, cohort.NewSecret(""), s.now().Add(browserTTL)); err != nil {
		s.fail(c, err)
		return
	}
	s.setCookie(c, cookieName, secret, "/", browserTTL)
	u := *c.Request.URL
	q := u.Query()
	q.Del(codeParam)
	u.RawQuery = q.Encode()
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, u.RequestURI())
}

// stripCredentials removes cohort's own credentials from a request bound
// for a notebook, which runs the participant's code.
func stripCredentials(r *http.Request) {
	r.Header.Del("Authorization")
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, ck := range cookies {
		if ck.Name != cookieName {
			r.AddCookie(ck)
		}
	}
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// sameOrigin reports whether a browser's Origin (if any) is this host: a
// page elsewhere must not open a WebSocket to a participant's kernel.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}
