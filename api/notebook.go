package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// The notebook side: requests whose Host is a session's notebook origin.
// They reach only the routes here, never the app's, and the app's cookie
// means nothing here. A browser gets in with a one-time code minted by the
// app and exchanged at openPath for a cookie that opens this one session
// and nothing else; scripts use their API token (Bearer).

// openPath is where a notebook origin exchanges a one-time code for its
// cookie. Jupyter has nothing under /_cohort/.
const openPath = "/_cohort/open"

type sessionKey struct{}

// notebookSession returns the session whose origin the request came to.
func notebookSession(c *gin.Context) string {
	id, _ := c.Request.Context().Value(sessionKey{}).(string)
	return id
}

func (s *Server) notebookRoutes() *gin.Engine {
	r := gin.New()
	r.Use(s.recoverer, s.clientAddr, guardBody(notebookBodyIdle, 0))
	r.GET(openPath, s.redeemCode)
	r.POST(openPath, s.redeemCode) // the interstitial's "continue as"
	r.NoRoute(s.proxy.serve)
	return r
}

// caller is who sends a request to a notebook origin, with the credential
// that said so: a long-lived connection looks at it again (stillAllowed).
type caller struct {
	user *cohort.User
	// tokenHash is set for an API token, cookieHash for the origin's cookie.
	tokenHash, cookieHash string
}

// notebookCaller returns who sends a request to a notebook origin.
func (s *Server) notebookCaller(c *gin.Context, sessionID string) (caller, error) {
	if tok := bearer(c.Request); tok != "" {
		hash := cohort.HashSecret(tok)
		u, err := s.store.UserByTokenHash(c.Request.Context(), hash)
		return caller{user: u, tokenHash: hash}, err
	}
	if cl, ok := s.notebookCookie(c, sessionID); ok {
		return cl, nil
	}
	return caller{}, cohort.Errorf(cohort.EUNAUTHORIZED, "open this notebook from cohort (its Open notebook button, or `cohort session open`), or send an API token")
}

// stillAllowed looks again at what let a connection in: its credential
// (revoked by an admin, by sign-out?), the caller's standing in the class
// (off the roster, demoted?) and the session (ended?). An open WebSocket
// is closed once one of them says no.
func (s *Server) stillAllowed(ctx context.Context, cl caller, sessionID string) bool {
	var u *cohort.User
	if cl.tokenHash != "" {
		var err error
		if u, err = s.store.UserByTokenHash(ctx, cl.tokenHash); err != nil {
			return false
		}
	} else {
		bs, err := s.store.GetBrowserSession(ctx, cl.cookieHash)
		if err != nil || bs.SessionID != sessionID {
			return false
		}
		u = bs.User
	}
	a, err := s.sessionFor(ctx, u, sessionID)
	return err == nil && notebookUsable(a.session) == nil
}

// watchAccess cancels a long-lived connection's context as soon as
// stillAllowed says no, looking every recheck; the proxy then closes it.
func (s *Server) watchAccess(ctx context.Context, cancel context.CancelFunc, cl caller, sessionID string) {
	tick := time.NewTicker(s.recheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !s.stillAllowed(ctx, cl, sessionID) && ctx.Err() == nil {
			s.log.Info("closing a notebook connection: its access ended", "session_id", sessionID, "user_id", cl.user.ID)
			cancel()
			return
		}
	}
}

// maxCookieTries bounds the lookups one request can cause: another
// notebook of the same site can plant cookies of the same name (they are
// for another session, so they never match; they only cost a lookup).
const maxCookieTries = 4

// notebookCookie returns the caller of the first cookie valid for this
// session.
func (s *Server) notebookCookie(c *gin.Context, sessionID string) (caller, bool) {
	tries := 0
	for _, ck := range c.Request.Cookies() {
		if ck.Name != s.nbCookie || ck.Value == "" {
			continue
		}
		if tries++; tries > maxCookieTries {
			break
		}
		hash := cohort.HashSecret(ck.Value)
		bs, err := s.store.GetBrowserSession(c.Request.Context(), hash)
		if err == nil && bs.SessionID == sessionID {
			return caller{user: bs.User, cookieHash: hash}, true
		}
	}
	return caller{}, false
}

// openURL is the app's page that mints a code for a session and comes
// back to next on its notebook origin.
func (s *Server) openURL(sessionID, next string) string {
	return s.publicURL + "/sessions/" + sessionID + "/open?" + url.Values{"next": {next}}.Encode()
}

// redeemCode exchanges a one-time code for this notebook origin's cookie.
// The code is used up only once every check passed: a code opened early
// (the session still starting) works when the session is ready.
func (s *Server) redeemCode(c *gin.Context) {
	ctx := c.Request.Context()
	id := notebookSession(c)
	code, next := c.Query("code"), c.Query("next")
	if c.Request.Method == http.MethodPost {
		// The "continue as" form, and nothing else: small, and from this
		// origin's own page.
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 8<<10)
		if !strings.HasPrefix(c.ContentType(), "application/x-www-form-urlencoded") {
			s.failPage(c, cohort.Invalid("", "send the form as application/x-www-form-urlencoded"))
			return
		}
		if err := checkFetchSite(c.Request, s.origins.origin(id)); err != nil {
			s.failPage(c, err)
			return
		}
		code, next = c.PostForm("code"), c.PostForm("next")
	}
	next = localPath(next)
	hash := cohort.HashSecret(code)
	u, lc, a, err := s.codeHolder(ctx, hash, id)
	if err != nil {
		s.failPage(c, err)
		return
	}
	if err := notebookUsable(a.session); err != nil {
		s.failPage(c, err)
		return
	}
	// A browser signed in here as someone else is asked, never switched
	// silently: the link may have come from someone who wants the
	// visitor to work in a notebook as them.
	if cur, ok := s.notebookCookie(c, id); ok && cur.user.ID != u.ID && c.Request.Method == http.MethodGet {
		s.render(c, http.StatusOK, "switch", pageData{Title: "Open notebook", Visitor: cur.user.Email, Code: code, Next: next, Other: u.Email})
		return
	}
	if err := s.store.UseLoginCode(ctx, hash); err != nil {
		s.failPage(c, err)
		return
	}
	expires := lc.CookieExpiresAt
	if max := s.now().Add(browserTTL); expires.IsZero() || expires.After(max) {
		expires = max
	}
	secret := cohort.NewSecret("")
	err = s.store.CreateBrowserSession(ctx, cohort.HashSecret(secret), &cohort.BrowserSession{User: u, SessionID: id, ExpiresAt: expires})
	if err != nil {
		s.failPage(c, err)
		return
	}
	s.setCookie(c, s.nbCookie, secret, expires.Sub(s.now()))
	c.Header("Cache-Control", "no-store")
	if next == landing {
		c.Redirect(http.StatusSeeOther, next)
		return
	}
	// Anywhere else, the notebook's own page takes the browser there: a
	// navigation that began on another site may only land on /tree
	// (checkFetchSite), and a redirect would still count as one.
	s.render(c, http.StatusOK, "onward", pageData{Title: "Opening the notebook", Next: next})
}

// codeHolder returns the user of a live code for this session, who must
// still be allowed into it.
func (s *Server) codeHolder(ctx context.Context, hash, sessionID string) (*cohort.User, *cohort.LoginCode, sessionAccess, error) {
	lc, err := s.store.LoginCode(ctx, hash)
	if err != nil {
		return nil, nil, sessionAccess{}, err
	}
	if lc.SessionID != sessionID {
		return nil, nil, sessionAccess{}, cohort.Errorf(cohort.EUNAUTHORIZED, "this link opens another notebook")
	}
	u, err := s.store.GetUser(ctx, lc.UserID)
	if err != nil {
		return nil, nil, sessionAccess{}, err
	}
	a, err := s.sessionFor(ctx, u, sessionID)
	return u, lc, a, err
}

// errWarmSeat refuses to open a warm seat: nobody may, not even an admin,
// until a participant takes it, so that it is unused when they do.
func errWarmSeat(sess *cohort.Session) error {
	return cohort.Errorf(cohort.EFORBIDDEN, "session %s is a warm seat: nobody can open it until a participant takes it", sess.ID)
}

// notebookUsable says why a session's notebook cannot be opened, if so.
func notebookUsable(sess *cohort.Session) error {
	switch {
	case sess.Warm():
		return errWarmSeat(sess)
	case !sess.State.Active():
		return cohort.Errorf(cohort.ECONFLICT, "session %s has ended (%s); start a new one", sess.ID, sess.State)
	case sess.State != cohort.StateReady:
		return cohort.Errorf(cohort.EUNAVAILABLE, "session %s is %s; the notebook is not ready yet", sess.ID, sess.State)
	}
	return nil
}
