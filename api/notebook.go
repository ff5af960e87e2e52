package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"

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

// notebookCaller returns who sends a request to a notebook origin, and
// whether a browser cookie (rather than an API token) said so.
func (s *Server) notebookCaller(c *gin.Context, sessionID string) (*cohort.User, bool, error) {
	if tok := bearer(c.Request); tok != "" {
		u, err := s.store.UserByTokenHash(c.Request.Context(), cohort.HashSecret(tok))
		return u, false, err
	}
	if u := s.notebookCookieUser(c, sessionID); u != nil {
		return u, true, nil
	}
	return nil, false, cohort.Errorf(cohort.EUNAUTHORIZED, "open this notebook from cohort (its Open notebook button, or `cohort session open`), or send an API token")
}

// maxCookieTries bounds the lookups one request can cause: another
// notebook of the same site can plant cookies of the same name (they are
// for another session, so they never match; they only cost a lookup).
const maxCookieTries = 4

// notebookCookieUser returns the user of the first cookie valid for this
// session, or nil.
func (s *Server) notebookCookieUser(c *gin.Context, sessionID string) *cohort.User {
	tries := 0
	for _, ck := range c.Request.Cookies() {
		if ck.Name != s.nbCookie || ck.Value == "" {
			continue
		}
		if tries++; tries > maxCookieTries {
			break
		}
		bs, err := s.store.GetBrowserSession(c.Request.Context(), cohort.HashSecret(ck.Value))
		if err == nil && bs.SessionID == sessionID {
			return bs.User
		}
	}
	return nil
}

// checkFetchSite admits a cookie-authenticated request to a notebook only
// from the notebook's own pages, or as a top-level navigation from
// elsewhere (a link). Other notebooks of the same site, and any other
// page, get nothing done with the visitor's cookie: no POST, no
// WebSocket, no script or JSON read as a subresource. This is the
// resource isolation policy of Fetch Metadata, with Origin for browsers
// that send no Sec-Fetch-Site.
func checkFetchSite(r *http.Request, own string) error {
	unsafe := !safeMethod(r.Method) || isWebSocket(r)
	origin := r.Header.Get("Origin")
	if unsafe && origin != "" && !strings.EqualFold(origin, own) {
		return cohort.Errorf(cohort.EFORBIDDEN, "a page of %s may not change anything in this notebook", origin)
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "same-origin":
		return nil
	case "":
		if unsafe && origin == "" {
			return cohort.Errorf(cohort.EFORBIDDEN, "a request that changes something must say where it comes from (Origin)")
		}
		return nil
	case "none": // typed in the address bar, a bookmark
		if unsafe {
			return cohort.Errorf(cohort.EFORBIDDEN, "a request that changes something must come from the notebook's own pages")
		}
		return nil
	default: // same-site (another notebook) or cross-site
		if r.Method == http.MethodGet && r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document" {
			return nil
		}
		return cohort.Errorf(cohort.EFORBIDDEN, "another site's page may not use this notebook")
	}
}

// wantsPage reports whether a request is a browser asking for a page, which
// should be sent to sign in rather than answered with JSON.
func wantsPage(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
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
		if err := checkFetchSite(c.Request, s.origins.origin(id)); err != nil {
			s.failPage(c, err)
			return
		}
		code, next = c.PostForm("code"), c.PostForm("next")
	}
	next = localPath(next)
	hash := cohort.HashSecret(code)
	u, a, err := s.codeHolder(ctx, hash, id)
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
	if cur := s.notebookCookieUser(c, id); cur != nil && cur.ID != u.ID && c.Request.Method == http.MethodGet {
		s.render(c, http.StatusOK, "switch", pageData{Title: "Open notebook", Visitor: cur.Email, Code: code, Next: next, Other: u.Email})
		return
	}
	if err := s.store.UseLoginCode(ctx, hash); err != nil {
		s.failPage(c, err)
		return
	}
	secret := cohort.NewSecret("")
	err = s.store.CreateBrowserSession(ctx, cohort.HashSecret(secret), &cohort.BrowserSession{User: u, SessionID: id, ExpiresAt: s.now().Add(browserTTL)})
	if err != nil {
		s.failPage(c, err)
		return
	}
	s.setCookie(c, s.nbCookie, secret, browserTTL)
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, next)
}

// codeHolder returns the user of a live code for this session, who must
// still be allowed into it.
func (s *Server) codeHolder(ctx context.Context, hash, sessionID string) (*cohort.User, sessionAccess, error) {
	userID, codeSession, err := s.store.LoginCode(ctx, hash)
	if err != nil {
		return nil, sessionAccess{}, err
	}
	if codeSession != sessionID {
		return nil, sessionAccess{}, cohort.Errorf(cohort.EUNAUTHORIZED, "this link opens another notebook")
	}
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return nil, sessionAccess{}, err
	}
	a, err := s.sessionFor(ctx, u, sessionID)
	return u, a, err
}

// notebookUsable says why a session's notebook cannot be opened, if so.
func notebookUsable(sess *cohort.Session) error {
	switch {
	case !sess.State.Active():
		return cohort.Errorf(cohort.ECONFLICT, "session %s has ended (%s); start a new one", sess.ID, sess.State)
	case sess.State != cohort.StateReady:
		return cohort.Errorf(cohort.EUNAVAILABLE, "session %s is %s; the notebook is not ready yet", sess.ID, sess.State)
	}
	return nil
}
