package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cohortdev/cohort"
)

// SetUserHostedDomain records the hosted domain of the latest sign-in.
func (s *Store) SetUserHostedDomain(ctx context.Context, userID, domain string) error {
	_, err := s.exec(ctx, `UPDATE users SET hosted_domain = ? WHERE id = ?`, domain, userID)
	return err
}

// ListUsers returns all users by email.
func (s *Store) ListUsers(ctx context.Context) ([]*cohort.User, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE id <> ? ORDER BY email`, cohort.PoolUserID)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return collect(rows, scanUser)
}

func scanToken(row interface{ Scan(...any) error }) (*cohort.Token, error) {
	var t cohort.Token
	var created int64
	var revoked sql.NullInt64
	if err := row.Scan(&t.ID, &t.UserID, &t.Name, &created, &revoked); err != nil {
		return nil, err
	}
	t.CreatedAt, t.RevokedAt = fromMicros(created), fromNullMicros(revoked)
	return &t, nil
}

const tokenColumns = `id, user_id, name, created_at, revoked_at`

// ListTokens returns a user's tokens, live and revoked, newest first.
func (s *Store) ListTokens(ctx context.Context, userID string) ([]*cohort.Token, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return collect(rows, scanToken)
}

// GetToken returns a token's record (never its secret).
func (s *Store) GetToken(ctx context.Context, id string) (*cohort.Token, error) {
	t, err := scanToken(s.read.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = ?`, id))
	return t, notFound(err, "token %s not found", id)
}

// RevokeToken revokes a token; revoking it again is a no-op.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, micros(s.Now()), id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cohort.Errorf(cohort.ENOTFOUND, "token %s not found", id)
	}
	return nil
}

// RevokeUserCredentials revokes every token and browser session of a user.
func (s *Store) RevokeUserCredentials(ctx context.Context, userID string) (int, error) {
	var total int
	err := s.inTx(ctx, func(tx querier) error {
		total = 0 // again from 0 if the transaction runs again
		now := micros(s.Now())
		for _, q := range []string{
			`UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`,
			`UPDATE browser_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`,
		} {
			res, err := tx.ExecContext(ctx, q, now, userID)
			if err != nil {
				return fmt.Errorf("revoke credentials: %w", err)
			}
			n, _ := res.RowsAffected()
			total += int(n)
		}
		// What would become a credential later goes too: one-time notebook
		// links, and CLI sign-ins approved but not yet claimed.
		for _, q := range []string{
			`UPDATE login_codes SET used_at = ? WHERE user_id = ? AND used_at IS NULL`,
			`UPDATE device_codes SET claimed_at = ? WHERE user_id = ? AND claimed_at IS NULL`,
		} {
			if _, err := tx.ExecContext(ctx, q, now, userID); err != nil {
				return fmt.Errorf("revoke codes: %w", err)
			}
		}
		return nil
	})
	return total, err
}

// CreateLoginAttempt records a sign-in in progress.
func (s *Store) CreateLoginAttempt(ctx context.Context, a *cohort.LoginAttempt) error {
	// Old attempts are garbage: abandoned sign-ins.
	if _, err := s.exec(ctx, `DELETE FROM login_attempts WHERE expires_at < ?`, micros(s.Now())); err != nil {
		return fmt.Errorf("prune login attempts: %w", err)
	}
	_, err := s.exec(ctx, `INSERT INTO login_attempts (state_hash, nonce, verifier, next, expires_at) VALUES (?, ?, ?, ?, ?)`,
		a.StateHash, a.Nonce, a.Verifier, a.Next, micros(a.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert login attempt: %w", err)
	}
	return nil
}

// TakeLoginAttempt returns and deletes a live sign-in attempt.
func (s *Store) TakeLoginAttempt(ctx context.Context, stateHash string) (*cohort.LoginAttempt, error) {
	var a cohort.LoginAttempt
	var expires int64
	err := s.db.QueryRowContext(ctx, `DELETE FROM login_attempts WHERE state_hash = ? RETURNING state_hash, nonce, verifier, next, expires_at`, stateHash).
		Scan(&a.StateHash, &a.Nonce, &a.Verifier, &a.Next, &expires)
	if err != nil {
		return nil, unauthorized(err, "this sign-in link is unknown or was already used; sign in again")
	}
	a.ExpiresAt = fromMicros(expires)
	if !s.Now().Before(a.ExpiresAt) {
		return nil, cohort.Errorf(cohort.EUNAUTHORIZED, "the sign-in took too long; sign in again")
	}
	return &a, nil
}

// CreateDeviceCode starts a CLI sign-in.
func (s *Store) CreateDeviceCode(ctx context.Context, deviceHash string, d *cohort.DeviceCode) error {
	if _, err := s.exec(ctx, `DELETE FROM device_codes WHERE expires_at < ?`, micros(s.Now())); err != nil {
		return fmt.Errorf("prune device codes: %w", err)
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = s.Now().UTC()
	}
	_, err := s.exec(ctx, `INSERT INTO device_codes (device_hash, user_code, client_name, client_addr, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, deviceHash, d.UserCode, d.ClientName, d.ClientAddr, micros(d.CreatedAt), micros(d.ExpiresAt))
	if s.isUniqueViolation(err) {
		return cohort.Errorf(cohort.ECONFLICT, "user code collision; try again")
	}
	if err != nil {
		return fmt.Errorf("insert device code: %w", err)
	}
	return nil
}

// DeviceCode returns a live sign-in waiting for approval.
func (s *Store) DeviceCode(ctx context.Context, userCode string) (*cohort.DeviceCode, error) {
	d := cohort.DeviceCode{UserCode: userCode}
	var created, expires int64
	err := s.read.QueryRowContext(ctx, `SELECT client_name, client_addr, created_at, expires_at FROM device_codes
		WHERE user_code = ? AND approved_at IS NULL AND expires_at > ?`, userCode, micros(s.Now())).
		Scan(&d.ClientName, &d.ClientAddr, &created, &expires)
	if err == sql.ErrNoRows {
		return nil, cohort.Errorf(cohort.EFORBIDDEN, "code %s is unknown, expired or already used; run `cohort login` again", userCode)
	}
	if err != nil {
		return nil, fmt.Errorf("read device code: %w", err)
	}
	d.CreatedAt, d.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &d, nil
}

// ApproveDeviceCode approves a live, unapproved user code.
func (s *Store) ApproveDeviceCode(ctx context.Context, userCode, userID string) error {
	res, err := s.exec(ctx, `UPDATE device_codes SET user_id = ?, approved_at = ?
		WHERE user_code = ? AND approved_at IS NULL AND expires_at > ?`, userID, micros(s.Now()), userCode, micros(s.Now()))
	if err != nil {
		return fmt.Errorf("approve device code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cohort.Errorf(cohort.EFORBIDDEN, "code %s is unknown, expired or already used; run `cohort login` again", userCode)
	}
	return nil
}

// ClaimDeviceCode hands the approving user to the polling CLI, once.
func (s *Store) ClaimDeviceCode(ctx context.Context, deviceHash string) (string, error) {
	var userID string
	err := s.inTx(ctx, func(tx querier) error {
		var uid sql.NullString
		var approved, claimed sql.NullInt64
		var expires int64
		err := tx.QueryRowContext(ctx, `SELECT user_id, approved_at, claimed_at, expires_at FROM device_codes WHERE device_hash = ?`, deviceHash).
			Scan(&uid, &approved, &claimed, &expires)
		switch {
		case err == sql.ErrNoRows || claimed.Valid:
			return cohort.Errorf(cohort.EUNAUTHORIZED, "unknown or already used device code; run `cohort login` again")
		case err != nil:
			return err
		case micros(s.Now()) >= expires:
			return cohort.Errorf(cohort.EUNAUTHORIZED, "the sign-in code expired; run `cohort login` again")
		case !approved.Valid:
			return cohort.Errorf(cohort.ECONFLICT, "waiting for the code to be approved in a browser")
		}
		userID = uid.String
		_, err = tx.ExecContext(ctx, `UPDATE device_codes SET claimed_at = ? WHERE device_hash = ?`, micros(s.Now()), deviceHash)
		return err
	})
	return userID, err
}

// collect scans every row with scan.
func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (*T, error)) ([]*T, error) {
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
