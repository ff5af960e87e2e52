package cohort

import (
	"context"
	"time"
)

// Store keeps cohort's state. Implementations: store/sqlite (embedded
// default). Every implementation passes store/storetest.
type Store interface {
	UserStore
	CredentialStore
	ClassStore
	SessionStore
	AuditStore
	SpendStore
	ShardStore
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
}

// UserStore keeps people.
type UserStore interface {
	// EnsureUser returns the user with that email, creating it with role
	// if new (an existing user keeps their role).
	EnsureUser(ctx context.Context, email string, role Role) (*User, error)
	SetUserRole(ctx context.Context, userID string, role Role) error
	SetUserHostedDomain(ctx context.Context, userID, domain string) error
	GetUser(ctx context.Context, id string) (*User, error)
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
}

// CredentialStore keeps secrets by their hashes: API tokens, browser
// sessions, one-time codes, sign-ins in progress.
type CredentialStore interface {
	// CreateToken stores the hash of a new API token's secret.
	CreateToken(ctx context.Context, t *Token, secretHash string) error
	// UserByTokenHash returns the user owning the live token with that hash.
	UserByTokenHash(ctx context.Context, secretHash string) (*User, error)
	ListTokens(ctx context.Context, userID string) ([]*Token, error)
	GetToken(ctx context.Context, id string) (*Token, error)
	RevokeToken(ctx context.Context, id string) error
	// RevokeUserCredentials revokes all tokens and browser sessions of a
	// user, and uses up their one-time links and approved CLI sign-ins.
	RevokeUserCredentials(ctx context.Context, userID string) (int, error)

	// CreateLoginCode stores a one-time code that opens a session in a
	// browser.
	CreateLoginCode(ctx context.Context, codeHash string, lc *LoginCode) error
	// LoginCode returns a live, unused code without using it up. A used,
	// expired or unknown code is EUNAUTHORIZED.
	LoginCode(ctx context.Context, codeHash string) (*LoginCode, error)
	// UseLoginCode uses a live code up, once: a second use (or a used,
	// expired or unknown code) is EUNAUTHORIZED.
	UseLoginCode(ctx context.Context, codeHash string) error

	// CreateBrowserSession stores a browser sign-in by the hash of its
	// cookie: b.User.ID, b.CSRFToken, b.SessionID and b.ExpiresAt.
	CreateBrowserSession(ctx context.Context, cookieHash string, b *BrowserSession) error
	// GetBrowserSession returns a live browser sign-in.
	GetBrowserSession(ctx context.Context, cookieHash string) (*BrowserSession, error)
	RevokeBrowserSession(ctx context.Context, cookieHash string) error
	// RevokeNotebookCookies revokes every notebook origin's cookie of a
	// user (on sign-out: a shared computer must not keep them).
	RevokeNotebookCookies(ctx context.Context, userID string) error

	// CreateLoginAttempt records a sign-in in progress.
	CreateLoginAttempt(ctx context.Context, a *LoginAttempt) error
	// TakeLoginAttempt returns and deletes the attempt with that state: it
	// can be used once. Unknown or expired is EUNAUTHORIZED.
	TakeLoginAttempt(ctx context.Context, stateHash string) (*LoginAttempt, error)

	// CreateDeviceCode starts a CLI sign-in: the CLI polls with the device
	// code (stored hashed); the person approves the short user code.
	CreateDeviceCode(ctx context.Context, deviceHash string, d *DeviceCode) error
	// DeviceCode returns the live, unapproved sign-in with this user code,
	// for the approval page to describe. Unknown, expired or approved is
	// EFORBIDDEN.
	DeviceCode(ctx context.Context, userCode string) (*DeviceCode, error)
	// ApproveDeviceCode marks a live user code as approved by userID.
	ApproveDeviceCode(ctx context.Context, userCode, userID string) error
	// ClaimDeviceCode returns the approving user once, when approved.
	// Pending is ECONFLICT; unknown, expired or claimed EUNAUTHORIZED.
	ClaimDeviceCode(ctx context.Context, deviceHash string) (userID string, err error)
}

// ClassStore keeps classes, their rosters and invites.
type ClassStore interface {
	// CreateClass stores a class and puts its owner on the roster as
	// instructor, in one transaction.
	CreateClass(ctx context.Context, c *Class) error
	GetClass(ctx context.Context, id string) (*Class, error)
	ListClasses(ctx context.Context) ([]*Class, error)
	// ListClassesFor returns the classes whose roster holds the email.
	ListClassesFor(ctx context.Context, email string) ([]*Class, error)
	// UpdateClass writes a class's name, runtime and policy.
	UpdateClass(ctx context.Context, c *Class) error
	// SetMaterials writes a class's materials (nil: none), and nothing
	// else of it.
	SetMaterials(ctx context.Context, classID string, m *Materials) error
	// SwapMaterials writes a class's materials if they are still old;
	// ECONFLICT if they changed meanwhile.
	SwapMaterials(ctx context.Context, classID string, old, m *Materials) error
	// DeleteClass removes a class and its ended sessions; a class with an
	// active session is ECONFLICT.
	DeleteClass(ctx context.Context, id string) error

	// AddMembers puts emails on a class's roster with role; an existing
	// member is promoted to instructor but never demoted. It returns how
	// many emails were new.
	AddMembers(ctx context.Context, classID string, emails []string, role MemberRole, addedBy string) (int, error)
	RemoveMember(ctx context.Context, classID, email string) error
	ListMembers(ctx context.Context, classID string) ([]*Member, error)
	// MemberRole returns the email's role in the class, or "" if none.
	MemberRole(ctx context.Context, classID, email string) (MemberRole, error)

	// CreateInvite stores an invite by the hash of its code.
	CreateInvite(ctx context.Context, inv *Invite, codeHash string) error
	ListInvites(ctx context.Context, classID string) ([]*Invite, error)
	RevokeInvite(ctx context.Context, classID, inviteID string) error
	// RedeemInvite enrolls a user as participant with a live invite code.
	// An unknown, expired or revoked code, or a hosted domain that does not
	// match, is EFORBIDDEN with a message saying which.
	RedeemInvite(ctx context.Context, codeHash string, u *User) (*Invite, error)
}

// SessionStore keeps sessions and their progress.
type SessionStore interface {
	// StartSession returns the caller's active session in the class, or
	// creates s when there is none (created reports which). A full class is
	// ECONFLICT. The check and the insert are one transaction.
	StartSession(ctx context.Context, s *Session, seats int) (active *Session, created bool, err error)
	// ClaimSession gives a warm seat (a session of PoolUserID that runs
	// or starts) to userID with a new notebook token, in one transaction:
	// two callers never get one seat. Its lifetime counts from the claim
	// (ReadyAt moves to at if it was ready), its deadlines are recomputed.
	// A seat no longer warm and running is ECONFLICT.
	ClaimSession(ctx context.Context, id, userID, token string, at time.Time) (*Session, error)
	GetSession(ctx context.Context, id string) (*Session, error)
	ListSessions(ctx context.Context, f SessionFilter) ([]*Session, error)
	// CountSessions counts every session by state and driver.
	CountSessions(ctx context.Context) ([]SessionCount, error)
	// Hold takes the lock named name, which every replica on the database
	// shares, waiting for it until ctx ends, and keeps it until release is
	// called. Callers take it after any in-process lock of theirs.
	Hold(ctx context.Context, name string) (release func(), err error)
	// UpdateSession writes s if its Version is still the stored one, then
	// bumps Version; otherwise ECONFLICT. The event, if not nil, is appended
	// in the same transaction, and so is what s cost (package cost, at its
	// admitted terms) to its months' spend when s ends: EndedAt set for the
	// first time.
	UpdateSession(ctx context.Context, s *Session, e *Event) error

	// RecordActivity moves a session's last activity forward to at.
	RecordActivity(ctx context.Context, id string, at time.Time) error
	// SetDeadlines caches the deadlines computed from a session's activity,
	// extension and class policy, and when its participant was warned.
	SetDeadlines(ctx context.Context, id string, d SessionDeadlines) error
	// SetExtension records an instructor's extension of the maximum lifetime.
	SetExtension(ctx context.Context, id string, ext Duration) error
	// SetBudgetStop records when a session stops for its class's budget
	// (nil: it does not).
	SetBudgetStop(ctx context.Context, id string, at *time.Time) error
	// DueSessions returns ready sessions whose CheckAt is at or before t,
	// or not computed yet.
	DueSessions(ctx context.Context, t time.Time) ([]*Session, error)

	// AppendEvent records a progress message for a session.
	AppendEvent(ctx context.Context, e *Event) error
	// ListEvents returns a session's events with ID > after, oldest first.
	ListEvents(ctx context.Context, sessionID string, after int64) ([]*Event, error)
}

// SpendStore keeps what ended sessions cost, and the settings that cap
// the installation's spend.
type SpendStore interface {
	// ListSpend returns what sessions that ended cost in a month
	// ("2026-12", UTC), by class, dearest first; every month, newest
	// first, if month is "".
	ListSpend(ctx context.Context, month string) ([]*Spend, error)
	GetSettings(ctx context.Context) (*Settings, error)
	// RecordKey records id as the ID of the installation's key named name
	// (the key that seals tokens) unless one is recorded, or replaces it
	// when replace, and returns the ID recorded: replicas compare theirs
	// with it at start.
	RecordKey(ctx context.Context, name, id string, replace bool) (string, error)
	SetSettings(ctx context.Context, s *Settings) error
}

// AuditStore keeps the audit log.
type AuditStore interface {
	AppendAudit(ctx context.Context, e *AuditEvent) error
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
}
