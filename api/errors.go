package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// Codes of the HTTP layer, beyond the domain's.
const (
	// EMETHOD: a known path asked with the wrong method.
	EMETHOD = "method_not_allowed"
	// ETOOMANY: a client sent too many requests of a kind; wait.
	ETOOMANY = "too_many_requests"
	// ESLOWDOWN: a CLI sign-in polled too fast; poll 5 seconds slower
	// from now on (RFC 8628's slow_down).
	ESLOWDOWN = "slow_down"
	// EMEDIATYPE: a body in another format than the route reads.
	EMEDIATYPE = "unsupported_media_type"
)

var statusOf = map[string]int{
	cohort.EINVALID:      http.StatusBadRequest,
	cohort.ENOTFOUND:     http.StatusNotFound,
	cohort.ECONFLICT:     http.StatusConflict,
	cohort.EUNAUTHORIZED: http.StatusUnauthorized,
	cohort.EFORBIDDEN:    http.StatusForbidden,
	cohort.EUNAVAILABLE:  http.StatusServiceUnavailable,
	cohort.EINTERNAL:     http.StatusInternalServerError,
	EMETHOD:              http.StatusMethodNotAllowed,
	ETOOMANY:             http.StatusTooManyRequests,
	ESLOWDOWN:            http.StatusTooManyRequests,
	EMEDIATYPE:           http.StatusUnsupportedMediaType,
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// fail answers with err as JSON. Only internal errors are logged, and their
// text never reaches the client.
func (s *Server) fail(c *gin.Context, err error) {
	code := cohort.ErrorCode(err)
	if code == cohort.EINTERNAL {
		s.logInternal(c, err)
	}
	if code == cohort.EUNAUTHORIZED {
		c.Header("WWW-Authenticate", `Bearer realm="cohort"`)
	}
	if code == cohort.EUNAVAILABLE {
		c.Header("Retry-After", "5")
		if cause := errors.Unwrap(asError(err)); cause != nil {
			s.log.Warn("request refused: the service cannot answer now", "method", c.Request.Method, "path", c.Request.URL.Path, "error", cause)
		}
	}
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	c.AbortWithStatusJSON(status, errorBody{errorDetail{
		Code: code, Message: cohort.ErrorMessage(err), Field: cohort.ErrorField(err),
	}})
}

// logInternal logs an internal error, unless the client went away: then
// the error is only the cancelled request, worth a debug line at most.
func (s *Server) logInternal(c *gin.Context, err error) {
	if c.Request.Context().Err() != nil {
		s.log.Debug("request ended early: the client went away", "method", c.Request.Method, "path", c.Request.URL.Path)
		return
	}
	s.log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "error", err)
}

func asError(err error) *cohort.Error {
	var e *cohort.Error
	errors.As(err, &e)
	return e
}
