package api

import (
	"embed"
	"html/template"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// A few server-rendered pages: the sign-in flow's ends, joining a class
// by invite, approving a CLI sign-in. The web UI issue builds the rest.

//go:embed pages/*.html
var pageFiles embed.FS

var pages = template.Must(template.ParseFS(pageFiles, "pages/*.html"))

type pageData struct {
	Title, Heading, Message, Code string
	User                          *cohort.User
	CSRF                          string
	Classes                       []*cohort.Class
	Done                          bool
}

func (s *Server) render(c *gin.Context, status int, name string, d pageData) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	c.Header("X-Frame-Options", "DENY")
	c.Status(status)
	if err := pages.ExecuteTemplate(c.Writer, name, d); err != nil {
		s.log.Error("render page", "page", name, "error", err)
	}
}

// failPage shows an error as a page (for browser-facing routes); internal
// errors are logged and shown as "Internal error.".
func (s *Server) failPage(c *gin.Context, err error) {
	code := cohort.ErrorCode(err)
	if code == cohort.EINTERNAL {
		s.log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "error", err)
	}
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	s.render(c, status, "error", pageData{Title: "Sign-in problem", Heading: http.StatusText(status), Message: cohort.ErrorMessage(err)})
	c.Abort()
}

// browserUser returns the signed-in browser's user and CSRF token, or nil.
func (s *Server) browserUser(c *gin.Context) (*cohort.User, string) {
	if bearer(c.Request) != "" {
		return nil, ""
	}
	u, csrf, err := s.identify(c.Request)
	if err != nil {
		return nil, ""
	}
	return u, csrf
}

// requireBrowser sends a browser that is not signed in to sign in, and
// back here afterwards; a form post must carry the CSRF token.
func (s *Server) requireBrowser(c *gin.Context) (*cohort.User, string, bool) {
	u, csrf := s.browserUser(c)
	if u == nil {
		c.Redirect(http.StatusSeeOther, "/auth/login?"+url.Values{"next": {c.Request.URL.RequestURI()}}.Encode())
		return nil, "", false
	}
	if err := checkCSRF(c.Request, csrf); err != nil {
		s.failPage(c, err)
		return nil, "", false
	}
	return u, csrf, true
}

func (s *Server) home(c *gin.Context) {
	u, csrf := s.browserUser(c)
	d := pageData{Title: "Home", User: u, CSRF: csrf}
	if u != nil {
		var err error
		if u.Role == cohort.RoleAdmin {
			d.Classes, err = s.store.ListClasses(c.Request.Context())
		} else {
			d.Classes, err = s.store.ListClassesFor(c.Request.Context(), u.Email)
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
	}
	s.render(c, http.StatusOK, "home", d)
}

func (s *Server) joinPage(c *gin.Context) {
	u, csrf, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	s.render(c, http.StatusOK, "join", pageData{Title: "Join a class", User: u, CSRF: csrf})
}

func (s *Server) joinSubmit(c *gin.Context) {
	u, _, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	if _, err := s.redeemInvite(c, u, c.Param("code")); err != nil {
		s.failPage(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/")
}
