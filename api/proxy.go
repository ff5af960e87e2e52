package api

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jupyter"
)

// notebookProxy forwards a notebook origin's requests to the session's
// notebook, HTTP and WebSocket alike, after checking who asks. It adds the
// notebook's token itself and strips cohort's credentials, so the
// participant never sees the token and the notebook never sees cohort's
// secrets; and it keeps the notebook from answering for other origins
// (CORS) or setting cookies beyond its own host.
type notebookProxy struct {
	s         *Server
	transport *http.Transport
	buffers   *bufferPool
}

// extensionPath is where cohort's notebook server extension listens
// (jupyter.Claim), under the notebook's base path, "/".
const extensionPath = "/cohort/"

func newNotebookProxy(s *Server) *notebookProxy {
	return &notebookProxy{s: s, transport: jupyter.NewTransport(), buffers: newBufferPool()}
}

func (p *notebookProxy) serve(c *gin.Context) {
	s := p.s
	id := notebookSession(c)
	own := s.origins.origin(id)
	if strings.HasPrefix(c.Request.URL.Path, extensionPath) {
		// cohort's own extension of the notebook server, which replaces its
		// token at a claim: only cohort calls it, never a browser.
		s.fail(c, cohort.Errorf(cohort.ENOTFOUND, "%s is not served through the proxy", extensionPath))
		return
	}
	if c.GetHeader("Service-Worker") != "" {
		// Jupyter has no service worker; one registered by a participant's
		// page would see every later request to this origin, the one-time
		// codes of visitors who open it included.
		s.fail(c, cohort.Errorf(cohort.EFORBIDDEN, "service workers are not allowed on notebook origins"))
		return
	}
	cl, err := s.notebookCaller(c, id)
	if err != nil {
		if wantsPage(c.Request) && bearer(c.Request) == "" {
			// A browser without this notebook's cookie: the app signs it in
			// (or asks it to) and sends it back here with a code.
			c.Redirect(http.StatusSeeOther, s.openURL(id, c.Request.URL.RequestURI()))
			return
		}
		s.fail(c, err)
		return
	}
	if cl.cookieHash != "" {
		if err := checkFetchSite(c.Request, own); err != nil {
			s.fail(c, err)
			return
		}
		if mustLand(c.Request) {
			c.Redirect(http.StatusSeeOther, landing)
			return
		}
	}
	u := cl.user
	a, err := s.sessionFor(c.Request.Context(), u, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	sess := a.session
	if err := notebookUsable(sess); err != nil {
		if cohort.ErrorCode(err) == cohort.EUNAVAILABLE {
			c.Header("Retry-After", "2")
		}
		s.fail(c, err)
		return
	}
	if !a.owner {
		p.recordEntry(c, u, sess)
	}
	base, err := jupyter.BaseURL(sess.Address)
	if err != nil {
		s.fail(c, err)
		return
	}
	target, err := url.Parse(base)
	if err != nil {
		s.fail(c, err)
		return
	}
	transport := p.transport
	touch := func() {}
	if s.tracker != nil {
		if requestIsUse(c.Request, sess.BasePath()) {
			s.tracker.Touch(sess.ID)
		}
		touch = func() { s.tracker.Touch(sess.ID) }
	}
	ws := isWebSocket(c.Request)
	if ws && (s.tracker != nil || s.metrics != nil) {
		transport = wsTransport(p.transport, touch, s.metrics)
	}
	s.metrics.ProxyRequest(ws)
	rp := &httputil.ReverseProxy{
		Transport:  transport,
		BufferPool: p.buffers,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Jupyter checks that a WebSocket's Origin matches Host: both
			// are the notebook's own origin.
			// No X-Forwarded-For: the participant's server need not learn
			// its visitors' addresses.
			pr.Out.Host = pr.In.Host
			p.stripCredentials(pr.Out)
			pr.Out.Header.Set("Authorization", "token "+sess.NotebookToken)
		},
		ModifyResponse: p.scrubResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away; the notebook is not to blame
			}
			s.log.Warn("notebook did not answer", "session_id", sess.ID, "error", err)
			// Let the provisioner find out whether the notebook died.
			if err := s.enqueuer.Enqueue(context.WithoutCancel(r.Context()), sess.ID); err != nil {
				s.log.Error("enqueue session", "session_id", sess.ID, "error", err)
			}
			s.fail(c, cohort.Errorf(cohort.EUNAVAILABLE, "the notebook of session %s did not answer; it may have stopped", sess.ID))
		},
	}
	req := c.Request
	if ws {
		s.metrics.WebSocketOpen(1)
		defer s.metrics.WebSocketOpen(-1)
		// A kernel's or terminal's connection lasts for hours: it ends
		// when the access that let it in ends (ReverseProxy closes an
		// upgraded connection when its request's context is done).
		ctx, cancel := context.WithCancel(req.Context())
		defer cancel()
		go s.watchAccess(ctx, cancel, cl, sess.ID)
		req = req.WithContext(ctx)
	}
	rp.ServeHTTP(c.Writer, req)
	if !ws { // a WebSocket's bytes are counted on its connection
		s.metrics.ProxyBytes(max(c.Writer.Size(), 0), int(max(req.ContentLength, 0)))
	}
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

// stripCredentials removes cohort's own credentials from a request bound
// for a notebook, which runs the participant's code.
func (p *notebookProxy) stripCredentials(r *http.Request) {
	r.Header.Del("Authorization")
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, ck := range cookies {
		if !p.s.isCohortCookie(ck.Name) {
			r.AddCookie(ck)
		}
	}
}

// scrubResponse keeps a notebook's answer to its own origin: no CORS
// headers (no other origin may read it with the visitor's cookie), no
// cookie for a parent domain or under one of cohort's names, no
// Clear-Site-Data (which would sign the browser out of every other
// notebook of the site), and no URL of it in Referer to other sites.
func (p *notebookProxy) scrubResponse(resp *http.Response) error {
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") || k == "Clear-Site-Data" {
			resp.Header.Del(k)
		}
	}
	resp.Header.Set("Referrer-Policy", "same-origin")
	lines := resp.Header.Values("Set-Cookie")
	resp.Header.Del("Set-Cookie")
	for _, line := range lines {
		ck, err := http.ParseSetCookie(line)
		if err != nil || ck.Domain != "" || p.s.isCohortCookie(ck.Name) {
			continue
		}
		resp.Header.Add("Set-Cookie", line)
	}
	return nil
}

// bufferPool keeps the proxy's copy buffers for reuse, rather than one
// allocated (32 KiB) for each request.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}
