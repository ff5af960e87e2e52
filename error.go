package cohort

import (
	"errors"
	"fmt"
)

// Error codes are stable: clients may switch on them. The api package maps
// each to one HTTP status.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	EUNAVAILABLE  = "unavailable"
	EINTERNAL     = "internal"
)

// Error is an error meant for the user: its message is safe to show, and
// Field names the offending input when there is one. Any other error is
// internal and its text never leaves the server.
type Error struct {
	Code    string
	Message string
	Field   string
	// Cause is what went wrong underneath, for the server's log only.
	Cause error
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Unavailable returns an EUNAVAILABLE error with a message for the
// client: the service cannot answer now, for a reason that passes; cause
// is logged.
func Unavailable(cause error, message string) *Error {
	return &Error{Code: EUNAVAILABLE, Message: message, Cause: cause}
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("cohort %s (%s): %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("cohort %s: %s", e.Code, e.Message)
}

// Errorf returns a user-facing error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error about one field of the input.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of a user-facing error, EINTERNAL for any
// other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of a user-facing error and a generic
// text for any other error, so that internal details never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// ErrorField returns the input field a user-facing error is about, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
