package api

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/metrics"
)

// The sign-in flow: /auth/login records a login attempt (state, nonce,
// PKCE verifier) and binds it to the browser with a short-lived cookie;
// /auth/callback checks the cookie against the state, uses the attempt up,
// exchanges the code and verifies the ID token, then opens a browser
// session.

const (
	loginCookieName = "cohort_login"
	loginTTL        = 10 * time.Minute
	browserTTL      = 12 * time.Hour
	callbackPath    = "/auth/callback"
)

// localPath keeps a post-sign-in destination on this site: an open
// redirect would let a link sign someone in and send them anywhere. It
// refuses what browsers read differently from servers (control
// characters, which they drop; backslashes, which they read as slashes),
// and rebuilds the path from its parsed parts.
func localPath(next string) string {
	if next == "" || strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	out := (&url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}).String()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") {
		return "/"
	}
	return out
}

func (s *Server) login(c *gin.Context) {
	ctx := c.Request.Context()
	state, nonce, verifier := cohort.NewSecret(""), cohort.NewSecret(""), cohort.NewSecret("")+cohort.NewSecret("")
	err := s.store.CreateLoginAttempt(ctx, &cohort.LoginAttempt{
		StateHash: cohort.HashSecret(state), Nonce: nonce, Verifier: verifier,
		Next: localPath(c.Query("next")), ExpiresAt: s.now().Add(loginTTL),
	})
	if err != nil {
		s.failPage(c, err)
		return
	}
	target, err := s.auth.AuthCodeURL(ctx, s.publicURL+callbackPath, state, nonce, verifier)
	if err != nil {
		s.failPage(c, err)
		return
	}
	s.setCookie(c, s.loginCookie, state, loginTTL)
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, target)
}

func (s *Server) callback(c *gin.Context) {
	ctx := c.Request.Context()
	state := c.Query("state")
	ck, _ := c.Cookie(s.loginCookie)
	s.clearCookie(c, s.loginCookie)
	if e := c.Query("error"); e != "" {
		s.signInFailed(c, "", cohort.Errorf(cohort.EUNAUTHORIZED, "the identity provider did not sign you in (%s)", e))
		return
	}
	if state == "" || ck == "" || subtle.ConstantTimeCompare([]byte(state), []byte(ck)) != 1 {
		s.signInFailed(c, "", cohort.Errorf(cohort.EUNAUTHORIZED, "this sign-in was not started in this browser, or it took too long; sign in again"))
		return
	}
	attempt, err := s.store.TakeLoginAttempt(ctx, cohort.HashSecret(state))
	if err != nil {
		s.signInFailed(c, "", err)
		return
	}
	id, err := s.auth.Exchange(ctx, s.publicURL+callbackPath, c.Query("code"), attempt.Verifier, attempt.Nonce)
	if err != nil {
		s.signInFailed(c, "", err)
		return
	}
	u, err := s.signInUser(ctx, id.Email, id.HostedDomain)
	if err != nil {
		s.metrics.SignIn("browser", metrics.SignInRefused)
		s.failPage(c, err)
		return
	}
	secret, csrf := cohort.NewSecret(""), cohort.NewSecret("")
	if err := s.store.CreateBrowserSession(ctx, cohort.HashSecret(secret), &cohort.BrowserSession{User: u, CSRFToken: csrf, ExpiresAt: s.now().Add(browserTTL)}); err != nil {
		s.failPage(c, err)
		return
	}
	s.audit(ctx, u, cohort.AuditEvent{Action: cohort.AuditSignIn, Detail: "via " + s.auth.Issuer()})
	s.metrics.SignIn("browser", metrics.SignInOK)
	s.setCookie(c, s.appCookie, secret, browserTTL)
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, attempt.Next)
}

// signInUser finds or creates the user and applies the bootstrap admin list.
func (s *Server) signInUser(ctx context.Context, email, hostedDomain string) (*cohort.User, error) {
	first := false
	if s.firstAdmin {
		users, err := s.store.ListUsers(ctx)
		if err != nil {
			return nil, err
		}
		first = len(users) == 0
	}
	u, err := s.store.EnsureUser(ctx, email, cohort.RoleParticipant)
	if err != nil {
		return nil, err
	}
	if (first || slices.Contains(s.admins, u.Email)) && u.Role != cohort.RoleAdmin {
		if err := s.store.SetUserRole(ctx, u.ID, cohort.RoleAdmin); err != nil {
			return nil, err
		}
		why := "bootstrap admin list"
		if first {
			why = "first account of this install"
		}
		s.audit(ctx, nil, cohort.AuditEvent{Action: cohort.AuditRoleChanged, Subject: u.Email,
			Detail: string(u.Role) + " -> admin (" + why + ")"})
		u.Role = cohort.RoleAdmin
	}
	if u.HostedDomain != hostedDomain {
		if err := s.store.SetUserHostedDomain(ctx, u.ID, hostedDomain); err != nil {
			return nil, err
		}
		u.HostedDomain = hostedDomain
	}
	return u, nil
}

func (s *Server) signInFailed(c *gin.Context, email string, err error) {
	s.metrics.SignIn("browser", metrics.SignInFailed)
	s.audit(c.Request.Context(), nil, cohort.AuditEvent{Action: cohort.AuditSignInFailed, Subject: email, Detail: cohort.ErrorMessage(err)})
	s.failPage(c, err)
}

func (s *Server) logout(c *gin.Context) {
	ck, err := c.Cookie(s.appCookie)
	if err == nil && ck != "" {
		ctx := c.Request.Context()
		bs, err := s.store.GetBrowserSession(ctx, cohort.HashSecret(ck))
		if err == nil {
			if err := checkCSRF(c.Request, bs.CSRFToken); err != nil {
				s.failPage(c, err)
				return
			}
			if err := s.store.RevokeBrowserSession(ctx, cohort.HashSecret(ck)); err != nil {
				s.failPage(c, err)
				return
			}
			// The notebooks this browser opened are signed out too: on a
			// shared computer the next person must not find them open.
			if err := s.store.RevokeNotebookCookies(ctx, bs.User.ID); err != nil {
				s.failPage(c, err)
				return
			}
			s.audit(ctx, bs.User, cohort.AuditEvent{Action: cohort.AuditSignOut})
		}
	}
	s.clearCookie(c, s.appCookie)
	c.Redirect(http.StatusSeeOther, "/")
}
