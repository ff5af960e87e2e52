package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// cookieName is the browser sign-in cookie. It holds a random secret whose
// hash is the key of a server-side, revocable browser session.
const cookieName = "cohort_session"

const userKey = "cohort.user"

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// userFromToken resolves an API token; a missing token is EUNAUTHORIZED.
func (s *Server) userFromToken(r *http.Request) (*cohort.User, error) {
	tok := bearer(r)
	if tok == "" {
		return nil, cohort.Errorf(cohort.EUNAUTHORIZED, "sign in first: send an API token as \"Authorization: Bearer TOKEN\" (see `cohort token create`)")
	}
	return s.store.UserByTokenHash(r.Context(), cohort.HashSecret(tok))
}

// authenticate admits API requests with a valid API token. Cookies are
// not accepted on the API until it has CSRF protection (sign-in issue).
func (s *Server) authenticate(c *gin.Context) {
	u, err := s.userFromToken(c.Request)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(userKey, u)
	c.Next()
}

func currentUser(c *gin.Context) *cohort.User {
	return c.MustGet(userKey).(*cohort.User)
}

func (s *Server) getMe(c *gin.Context) {
	c.JSON(http.StatusOK, currentUser(c))
}

// decode reads a JSON body into v, refusing unknown fields and trailing
// data, with messages that name what was wrong.
func decode(c *gin.Context, v any) error {
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
