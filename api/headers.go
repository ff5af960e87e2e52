package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// appHeaders are what every response of the app's origin carries: pages
// run only cohort's own script and style, talk only to cohort, are never
// framed, and send no URL (with its codes) to other sites; forms may post
// to cohort, or send the browser on to a notebook origin.
func (s *Server) appHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self' "+s.origins.wildcard())
	s.commonHeaders(h)
	c.Next()
}

// notebookPageHeaders are those of the few pages cohort itself renders on
// a notebook origin (an error, the "continue as" question): no script at
// all, the app's stylesheet, forms only to the notebook origin itself.
func (s *Server) notebookPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+s.publicURL+"; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	s.commonHeaders(h)
}

func (s *Server) commonHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if s.origins.secure() {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

type clientAddrKey struct{}

// clientAddr records the client's address in the request's context, for
// audit rows and rate limits. Forwarded addresses count only from the
// trusted proxies (gin's ClientIP with SetTrustedProxies).
func (s *Server) clientAddr(c *gin.Context) {
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), clientAddrKey{}, c.ClientIP()))
	c.Next()
}

func clientAddrOf(ctx context.Context) string {
	a, _ := ctx.Value(clientAddrKey{}).(string)
	return a
}

// Cookie names. Over https they carry the __Host- prefix, with which the
// browser itself refuses a cookie set for a parent domain or another path:
// no notebook can plant one that the app, or another notebook, would read.
const (
	appCookieName      = "cohort_session"
	notebookCookieName = "cohort_nb"
)

func cookieName(name string, secure bool) string {
	if secure {
		return "__Host-" + name
	}
	return name
}

// isCohortCookie reports whether a cookie is one of cohort's own, which a
// notebook never sees and never sets.
func (s *Server) isCohortCookie(name string) bool {
	name = strings.TrimPrefix(name, "__Host-")
	return strings.HasPrefix(name, "cohort_")
}

// setCookie sets a host-only cookie for the whole origin (Path=/, as the
// __Host- prefix requires).
func (s *Server) setCookie(c *gin.Context, name, value string, ttl time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(ttl.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.origins.secure(),
	})
}

func (s *Server) clearCookie(c *gin.Context, name string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.origins.secure()})
}
