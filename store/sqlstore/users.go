package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cohortdev/cohort"
)

const userColumns = `id, email, role, hosted_domain, created_at`

const qualifiedUserColumns = `u.id, u.email, u.role, u.hosted_domain, u.created_at`

func scanUser(row interface{ Scan(...any) error }) (*cohort.User, error) {
	var u cohort.User
	var created int64
	if err := row.Scan(&u.ID, &u.Email, &u.Role, &u.HostedDomain, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}

// EnsureUser returns the user with that email, creating it with role if new.
func (s *Store) EnsureUser(ctx context.Context, email string, role cohort.Role) (*cohort.User, error) {
	email, err := cohort.NormalizeEmail("email", email)
	if err != nil {
		return nil, err
	}
	if !role.Valid() {
		return nil, cohort.Invalid("role", "role must be admin, instructor or participant, not %q", role)
	}
	_, err = s.exec(ctx, `INSERT INTO users (id, email, role, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (email) DO NOTHING`,
		cohort.NewID("usr"), email, role, micros(s.Now()))
	if err != nil {
		return nil, fmt.Errorf("insert user: %w", err)
	}
	return s.GetUserByEmail(ctx, email)
}

// SetUserRole changes a user's role.
func (s *Store) SetUserRole(ctx context.Context, userID string, role cohort.Role) error {
	if !role.Valid() {
		return cohort.Invalid("role", "role must be admin, instructor or participant, not %q", role)
	}
	res, err := s.exec(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, userID)
	if err != nil {
		return fmt.Errorf("update user role: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cohort.Errorf(cohort.ENOTFOUND, "user %s not found", userID)
	}
	return nil
}

// GetUser returns a user by ID.
func (s *Store) GetUser(ctx context.Context, id string) (*cohort.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, notFound(err, "user %s not found", id)
}

// GetUserByEmail returns a user by email (case-insensitive).
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*cohort.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = lower(?)`, email))
	return u, notFound(err, "no user with email %s", email)
}

// CreateToken stores a new API token by the hash of its secret.
func (s *Store) CreateToken(ctx context.Context, t *cohort.Token, secretHash string) error {
	t.CreatedAt = s.Now().UTC()
	_, err := s.exec(ctx, `INSERT INTO api_tokens (id, user_id, name, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.UserID, t.Name, secretHash, micros(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert token: %w", err)
	}
	return nil
}

// UserByTokenHash returns the owner of a live API token.
func (s *Store) UserByTokenHash(ctx context.Context, secretHash string) (*cohort.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+qualifiedUserColumns+`
		FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.secret_hash = ? AND t.revoked_at IS NULL`, secretHash))
	return u, unauthorized(err, "the API token is not valid")
}

// CreateLoginCode stores a one-time browser code for a session.
func (s *Store) CreateLoginCode(ctx context.Context, codeHash string, lc *cohort.LoginCode) error {
	_, err := s.exec(ctx, `INSERT INTO login_codes (code_hash, user_id, session_id, expires_at, cookie_expires_at) VALUES (?, ?, ?, ?, ?)`,
		codeHash, lc.UserID, lc.SessionID, micros(lc.ExpiresAt), micros(lc.CookieExpiresAt))
	if err != nil {
		return fmt.Errorf("insert login code: %w", err)
	}
	return nil
}

// LoginCode reads a live, unused one-time code without using it.
func (s *Store) LoginCode(ctx context.Context, codeHash string) (*cohort.LoginCode, error) {
	var lc cohort.LoginCode
	var expires, cookieExpires int64
	err := s.read.QueryRowContext(ctx, `SELECT user_id, session_id, expires_at, cookie_expires_at FROM login_codes
		WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?`, codeHash, micros(s.Now())).Scan(&lc.UserID, &lc.SessionID, &expires, &cookieExpires)
	if err != nil {
		return nil, unauthorized(err, "this link has expired or was already used; ask for a new one")
	}
	lc.ExpiresAt, lc.CookieExpiresAt = fromMicros(expires), fromMicros(cookieExpires)
	return &lc, nil
}

// UseLoginCode uses a one-time code up, once.
func (s *Store) UseLoginCode(ctx context.Context, codeHash string) error {
	now := micros(s.Now())
	res, err := s.exec(ctx, `UPDATE login_codes SET used_at = ?
		WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?`, now, codeHash, now)
	if err != nil {
		return fmt.Errorf("use login code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cohort.Errorf(cohort.EUNAUTHORIZED, "this link has expired or was already used; ask for a new one")
	}
	return nil
}

// CreateBrowserSession stores a browser sign-in by the hash of its cookie.
func (s *Store) CreateBrowserSession(ctx context.Context, cookieHash string, b *cohort.BrowserSession) error {
	_, err := s.exec(ctx, `INSERT INTO browser_sessions (cookie_hash, user_id, csrf_token, session_id, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, cookieHash, b.User.ID, b.CSRFToken, b.SessionID, micros(s.Now()), micros(b.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert browser session: %w", err)
	}
	return nil
}

// GetBrowserSession returns a live browser sign-in.
func (s *Store) GetBrowserSession(ctx context.Context, cookieHash string) (*cohort.BrowserSession, error) {
	var b cohort.BrowserSession
	var expires int64
	var u cohort.User
	var created int64
	err := s.read.QueryRowContext(ctx, `SELECT `+qualifiedUserColumns+`, b.csrf_token, b.session_id, b.expires_at
		FROM browser_sessions b JOIN users u ON u.id = b.user_id
		WHERE b.cookie_hash = ? AND b.revoked_at IS NULL AND b.expires_at > ?`, cookieHash, micros(s.Now())).
		Scan(&u.ID, &u.Email, &u.Role, &u.HostedDomain, &created, &b.CSRFToken, &b.SessionID, &expires)
	if err != nil {
		return nil, unauthorized(err, "your sign-in has expired or was revoked; sign in again")
	}
	u.CreatedAt, b.ExpiresAt, b.User = fromMicros(created), fromMicros(expires), &u
	return &b, nil
}

// RevokeBrowserSession ends a browser sign-in.
func (s *Store) RevokeBrowserSession(ctx context.Context, cookieHash string) error {
	_, err := s.exec(ctx, `UPDATE browser_sessions SET revoked_at = ? WHERE cookie_hash = ? AND revoked_at IS NULL`,
		micros(s.Now()), cookieHash)
	return err
}

// RevokeNotebookCookies revokes the live notebook cookies of a user.
func (s *Store) RevokeNotebookCookies(ctx context.Context, userID string) error {
	_, err := s.exec(ctx, `UPDATE browser_sessions SET revoked_at = ? WHERE user_id = ? AND session_id != '' AND revoked_at IS NULL`,
		micros(s.Now()), userID)
	if err != nil {
		return fmt.Errorf("revoke notebook cookies: %w", err)
	}
	return nil
}

func unauthorized(err error, msg string) error {
	if err == sql.ErrNoRows {
		return cohort.Errorf(cohort.EUNAUTHORIZED, "%s", msg)
	}
	return err
}
