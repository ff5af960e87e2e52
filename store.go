package cohort

import (
	"context"
	"time"
)

// Store keeps cohort's state. Implementations: store/sqlite (embedded
// default). Every implementation passes store/storetest.
type Store interface {
	// CreateUser adds a user, or returns the existing user with that email.
	EnsureUser(ctx context.Context, email string, role Role) (*User, error)
	// SetUserRole changes a user's role.
	SetUserRole(ctx context.Context, userID string, role Role) error
	GetUser(ctx context.Context, id string) (*User, error)
	GetUserByEmail(ctx context.Context, email string) (*User, error)

	// CreateToken stores the hash of a new API token's secret.
	CreateToken(ctx context.Context, t *Token, secretHash string) error
	// UserByTokenHash returns the user owning the live token with that hash.
	UserByTokenHash(ctx context.Context, secretHash string) (*User, error)

	// CreateLoginCode stores a one-time code that opens sessionID in a
	// browser for userID until expires.
	CreateLoginCode(ctx context.Context, codeHash, userID, sessionID string, expires time.Time) error
	// RedeemLoginCode uses up a code and returns its user and session. A
	// used, expired or unknown code is EUNAUTHORIZED.
	RedeemLoginCode(ctx context.Context, codeHash string) (userID, sessionID string, err error)
	// CreateBrowserSession stores a browser sign-in by the hash of its cookie.
	CreateBrowserSession(ctx context.Context, cookieHash, userID string, expires time.Time) error
	// UserByBrowserSession returns the user of a live browser sign-in.
	UserByBrowserSession(ctx context.Context, cookieHash string) (*User, error)

	CreateClass(ctx context.Context, c *Class) error
	GetClass(ctx context.Context, id string) (*Class, error)
	ListClasses(ctx context.Context) ([]*Class, error)
	UpdateClass(ctx context.Context, c *Class) error
	// DeleteClass removes a class and its ended sessions; a class with an
	// active session is ECONFLICT.
	DeleteClass(ctx context.Context, id string) error

	// StartSession returns the caller's active session in the class, or
	// creates s when there is none (created reports which). A full class is
	// ECONFLICT. The check and the insert are one transaction.
	StartSession(ctx context.Context, s *Session, seats int) (active *Session, created bool, err error)
	GetSession(ctx context.Context, id string) (*Session, error)
	ListSessions(ctx context.Context, f SessionFilter) ([]*Session, error)
	// UpdateSession writes s if its Version is still the stored one, then
	// bumps Version; otherwise ECONFLICT. The event, if not nil, is appended
	// in the same transaction.
	UpdateSession(ctx context.Context, s *Session, e *Event) error

	// AppendEvent records a progress message for a session.
	AppendEvent(ctx context.Context, e *Event) error
	// ListEvents returns a session's events with ID > after, oldest first.
	ListEvents(ctx context.Context, sessionID string, after int64) ([]*Event, error)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error
}
