package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// csrfHeader (or the csrfField form field) must carry the browser
// session's CSRF token on every state-changing cookie-authenticated request.
const (
	csrfHeader = "X-CSRF-Token"
	csrfField  = "csrf_token"
)

const (
	userKey = "cohort.user"
	csrfKey = "cohort.csrf"
)

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// identify returns who sent the request to the app: an API token
// (scripts, the CLI) or the browser's sign-in cookie (a random secret
// whose hash keys a server-side, revocable browser session). It returns
// the browser session's CSRF token too ("" for API tokens, which browsers
// do not send by themselves). A notebook origin's cookie is no sign-in to
// the app, whatever its name.
func (s *Server) identify(r *http.Request) (*cohort.User, string, error) {
	if tok := bearer(r); tok != "" {
		u, err := s.store.UserByTokenHash(r.Context(), cohort.HashSecret(tok))
		return u, "", err
	}
	ck, err := r.Cookie(s.appCookie)
	if err != nil || ck.Value == "" {
		return nil, "", cohort.Errorf(cohort.EUNAUTHORIZED, "sign in first (in a browser at /auth/login, or with an API token: \"Authorization: Bearer TOKEN\")")
	}
	bs, err := s.store.GetBrowserSession(r.Context(), cohort.HashSecret(ck.Value))
	if err != nil {
		return nil, "", err
	}
	if bs.SessionID != "" {
		return nil, "", cohort.Errorf(cohort.EUNAUTHORIZED, "sign in first: a notebook's cookie does not sign in to cohort")
	}
	return bs.User, bs.CSRFToken, nil
}

// appSessionEnd is when the browser's sign-in to the app ends (zero when
// it has none): notebook cookies it leads to end with it.
func (s *Server) appSessionEnd(c *gin.Context) time.Time {
	ck, err := c.Request.Cookie(s.appCookie)
	if err != nil {
		return time.Time{}
	}
	bs, err := s.store.GetBrowserSession(c.Request.Context(), cohort.HashSecret(ck.Value))
	if err != nil {
		return time.Time{}
	}
	return bs.ExpiresAt
}

// checkCSRF refuses a cookie-authenticated request that changes state
// without the session's CSRF token: another site can make a browser send
// the cookie, but cannot read the token.
func checkCSRF(r *http.Request, want string) error {
	if want == "" || safeMethod(r.Method) {
		return nil
	}
	got := r.Header.Get(csrfHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue(csrfField)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return cohort.Errorf(cohort.EFORBIDDEN, "missing or wrong CSRF token: reload the page and try again")
	}
	return nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// authenticate admits requests from a signed-in user.
func (s *Server) authenticate(c *gin.Context) {
	u, csrf, err := s.identify(c.Request)
	if err == nil {
		err = checkCSRF(c.Request, csrf)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(userKey, u)
	c.Set(csrfKey, csrf)
	c.Next()
}

func currentUser(c *gin.Context) *cohort.User {
	return c.MustGet(userKey).(*cohort.User)
}

// meView is the signed-in user, with the CSRF token a browser page needs.
type meView struct {
	*cohort.User
	CSRFToken string `json:"csrf_token,omitempty"`
}

func (s *Server) getMe(c *gin.Context) {
	c.JSON(http.StatusOK, meView{currentUser(c), c.GetString(csrfKey)})
}

// decode reads a JSON body into v, refusing unknown fields and trailing
// data, with messages that name what was wrong.
func decode(c *gin.Context, v any) error {
	if t := c.ContentType(); t != "application/json" && c.Request.ContentLength != 0 {
		if t == "" {
			t = "none"
		}
		return cohort.Errorf(EMEDIATYPE, "send the body as JSON with Content-Type: application/json (it was %s)", cohort.Clip(t))
	}
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		if dec.More() {
			return cohort.Invalid("", "the body holds more than one JSON value")
		}
		return nil
	case errors.Is(err, io.EOF):
		return cohort.Invalid("", "the body is empty; send a JSON object")
	case errors.As(err, &syntax):
		return cohort.Invalid("", "the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		return cohort.Invalid(typ.Field, "%s must be a %s, not a JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.As(err, &tooBig):
		return cohort.Invalid("", "the body is larger than %d bytes", tooBig.Limit)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return cohort.Invalid(field, "unknown field %q", field)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return cohort.Invalid("", "the body is truncated JSON")
	default:
		// Errors from custom decoders (durations) say what they expect.
		return cohort.Invalid("", "the body could not be read: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}
