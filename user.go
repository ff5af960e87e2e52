package cohort

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Role is what a user may do across cohort.
type Role string

// The roles, from most to least powerful.
const (
	RoleAdmin       Role = "admin"
	RoleInstructor  Role = "instructor"
	RoleParticipant Role = "participant"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleInstructor || r == RoleParticipant
}

// User is a person known to cohort, identified by email.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Role  Role   `json:"role"`
	// HostedDomain is the Google Workspace domain the identity provider
	// vouched for at the last sign-in (the hd claim), if any.
	HostedDomain string    `json:"hosted_domain,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
}

// CanTeach reports whether the user may create classes.
func (u *User) CanTeach() bool { return u.Role == RoleAdmin || u.Role == RoleInstructor }

// MaxEmailLength is the longest address mail can carry: a path of 256
// octets less its angle brackets (RFC 5321, section 4.5.3.1.3).
const MaxEmailLength = 254

// NormalizeEmail validates an email address and returns it in lower case.
func NormalizeEmail(field, email string) (string, error) {
	email = strings.TrimSpace(email)
	if len(email) > MaxEmailLength {
		return "", Invalid(field, "%q is longer than %d characters, the most an email address can be", Clip(email), MaxEmailLength)
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || !strings.Contains(email, "@") {
		return "", Invalid(field, "%q is not an email address", email)
	}
	if email = strings.ToLower(email); email == PoolEmail {
		return "", Invalid(field, "%q is reserved for cohort's warm seats", email)
	}
	return email, nil
}

// Clip shortens what a client sent for an error message: its first 40
// characters and an ellipsis.
func Clip(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	return string([]rune(s)[:40]) + "…"
}

// Token is an API token. Only its hash is stored; the secret is shown once,
// when the token is created.
type Token struct {
	ID        string     `json:"id"`
	UserID    string     `json:"user_id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// BrowserSession is a signed-in browser. The cookie holds a secret whose
// hash keys the row; CSRFToken must accompany state-changing requests.
type BrowserSession struct {
	User      *User
	CSRFToken string
	// SessionID is empty for a sign-in to the app. A notebook origin's
	// cookie has the one session it opens, and is good for nothing else.
	SessionID string
	ExpiresAt time.Time
}

// LoginCode is a one-time code that opens a session's notebook in a
// browser for a user.
type LoginCode struct {
	UserID, SessionID string
	ExpiresAt         time.Time
	// CookieExpiresAt is when the notebook cookie it gives ends: at the
	// latest when the sign-in that minted it ends, so that a sign-out (or
	// its expiry) leaves no notebook open behind it.
	CookieExpiresAt time.Time
}

// DeviceCode is a CLI sign-in waiting for approval in a browser, as the
// approval page describes it.
type DeviceCode struct {
	UserCode string
	// ClientName is what the CLI says it is, e.g. "cohort login on
	// ada-laptop"; ClientAddr is the address it asked from.
	ClientName, ClientAddr string
	CreatedAt, ExpiresAt   time.Time
}

// LoginAttempt is a sign-in in progress: what the callback must match.
type LoginAttempt struct {
	StateHash string
	Nonce     string
	// Verifier is the PKCE code verifier.
	Verifier string
	// Next is the local path to return to after sign-in.
	Next      string
	ExpiresAt time.Time
}

// Secret prefixes make leaked secrets easy to recognise and to scan for.
const (
	TokenPrefix = "cohort_"
	CodePrefix  = "cohortcode_"
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random identifier with the given prefix, e.g. "ses_k3...".
func NewID(prefix string) string {
	return prefix + "_" + randomString(10)
}

// NewSecret returns a random secret with 160 bits of entropy.
func NewSecret(prefix string) string {
	return prefix + randomString(20)
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms.
	}
	return idEncoding.EncodeToString(b)
}

// HashSecret returns the form in which a secret is stored. Secrets are
// random and long, so a plain SHA-256 is enough (no salt or stretching).
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}
