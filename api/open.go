package api

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// Opening a notebook: the app, where the visitor is signed in, mints a
// one-time code bound to the visitor and the session, and sends the
// browser to the session's own origin, which exchanges it for a cookie
// (see notebook.go). An instructor or admin opening someone else's
// notebook does so explicitly (a button on a page that says whose it is),
// and it is audited and shown to the participant.

// loginCodeTTL is how long an "open in browser" link works.
const loginCodeTTL = 2 * time.Minute

// openLink mints a code for u to open a session and returns the link that
// redeems it on the session's origin, then goes to next there. The
// notebook cookie it gives ends at cookieEnd at the latest.
func (s *Server) openLink(ctx context.Context, u *cohort.User, a sessionAccess, next string, cookieEnd time.Time) (string, time.Time, error) {
	sess := a.session
	if sess.Warm() {
		return "", time.Time{}, errWarmSeat(sess)
	}
	code := cohort.NewSecret(cohort.CodePrefix)
	expires := s.now().Add(loginCodeTTL)
	if max := s.now().Add(browserTTL); cookieEnd.IsZero() || cookieEnd.After(max) {
		cookieEnd = max
	}
	err := s.store.CreateLoginCode(ctx, cohort.HashSecret(code), &cohort.LoginCode{UserID: u.ID, SessionID: sess.ID,
		ExpiresAt: expires, CookieExpiresAt: cookieEnd})
	if err != nil {
		return "", time.Time{}, err
	}
	if !a.owner {
		s.audit(ctx, u, cohort.AuditEvent{Action: cohort.AuditSessionOpened, ClassID: sess.ClassID, SessionID: sess.ID, Subject: sess.UserID})
	}
	link := s.origins.origin(sess.ID) + openPath + "?" + url.Values{"code": {code}, "next": {localPath(next)}}.Encode()
	return link, expires, nil
}

// openSession returns a one-time link that opens the notebook in a
// browser, for clients (the CLI) that hold an API token.
func (s *Server) openSession(c *gin.Context) {
	a, err := s.session(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	link, expires, err := s.openLink(c.Request.Context(), currentUser(c), a, "/tree", time.Time{})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, gin.H{"url": link, "expires_at": expires.UTC()})
}

// openPage sends a signed-in browser into a session's notebook: its own
// at once; someone else's after a confirmation (openConfirm).
func (s *Server) openPage(c *gin.Context) {
	u, csrf, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	a, err := s.sessionFor(ctx, u, c.Param("session"))
	if err != nil {
		s.failPage(c, err)
		return
	}
	// Where in the notebook to go, only when the visitor asked for it
	// here or on the notebook's own pages: another site must not send a
	// visitor into their notebook at a URL that does something there.
	next := "/tree"
	if site := c.GetHeader("Sec-Fetch-Site"); site == "same-origin" || site == "none" {
		if n := localPath(c.Query("next")); n != "/" {
			next = n
		}
	}
	if !a.owner {
		owner, err := s.store.GetUser(ctx, a.session.UserID)
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.render(c, http.StatusOK, "open", pageData{Title: "Open a participant's notebook", User: u, CSRF: csrf, Other: owner.Email,
			Next: next, SessionID: a.session.ID})
		return
	}
	s.redirectInto(c, u, a, next)
}

// openConfirm opens someone else's notebook once its visitor said so.
func (s *Server) openConfirm(c *gin.Context) {
	u, _, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	a, err := s.sessionFor(c.Request.Context(), u, c.Param("session"))
	if err != nil {
		s.failPage(c, err)
		return
	}
	s.redirectInto(c, u, a, c.PostForm("next"))
}

func (s *Server) redirectInto(c *gin.Context, u *cohort.User, a sessionAccess, next string) {
	link, _, err := s.openLink(c.Request.Context(), u, a, next, s.appSessionEnd(c))
	if err != nil {
		s.failPage(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, link)
}
