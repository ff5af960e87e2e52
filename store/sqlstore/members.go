package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/cohortdev/cohort"
)

// AddMembers puts emails on a class's roster.
func (s *Store) AddMembers(ctx context.Context, classID string, emails []string, role cohort.MemberRole, addedBy string) (int, error) {
	var added int
	err := s.inTx(ctx, func(tx querier) error {
		added = 0 // again from 0 if the transaction runs again
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM classes WHERE id = ?`, classID).Scan(&n); err != nil || n == 0 {
			return notFound(orNoRows(err), "class %s not found", classID)
		}
		now := micros(s.Now())
		for _, e := range emails {
			var existing sql.NullString
			err := tx.QueryRowContext(ctx, `SELECT role FROM class_members WHERE class_id = ? AND email = ?`, classID, e).Scan(&existing)
			switch {
			case err == sql.ErrNoRows:
				_, err = tx.ExecContext(ctx, `INSERT INTO class_members (class_id, email, role, added_by, added_at) VALUES (?, ?, ?, ?, ?)`,
					classID, e, role, addedBy, now)
				added++
			case err == nil && role == cohort.MemberInstructor && existing.String != string(role):
				_, err = tx.ExecContext(ctx, `UPDATE class_members SET role = ? WHERE class_id = ? AND email = ?`, role, classID, e)
			}
			if err != nil {
				return fmt.Errorf("add member %s: %w", e, err)
			}
		}
		return nil
	})
	return added, err
}

func orNoRows(err error) error {
	if err == nil {
		return sql.ErrNoRows
	}
	return err
}

// RemoveMember takes an email off a class's roster.
func (s *Store) RemoveMember(ctx context.Context, classID, email string) error {
	res, err := s.exec(ctx, `DELETE FROM class_members WHERE class_id = ? AND email = lower(?)`, classID, email)
	if err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cohort.Errorf(cohort.ENOTFOUND, "%s is not on the roster of class %s", email, classID)
	}
	return nil
}

// ListMembers returns a class's roster by email.
func (s *Store) ListMembers(ctx context.Context, classID string) ([]*cohort.Member, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT class_id, email, role, added_by, added_at FROM class_members WHERE class_id = ? ORDER BY role DESC, email`, classID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return collect(rows, func(row interface{ Scan(...any) error }) (*cohort.Member, error) {
		var m cohort.Member
		var added int64
		if err := row.Scan(&m.ClassID, &m.Email, &m.Role, &m.AddedBy, &added); err != nil {
			return nil, err
		}
		m.AddedAt = fromMicros(added)
		return &m, nil
	})
}

// MemberRole returns the email's role in the class, or "".
func (s *Store) MemberRole(ctx context.Context, classID, email string) (cohort.MemberRole, error) {
	var role cohort.MemberRole
	err := s.read.QueryRowContext(ctx, `SELECT role FROM class_members WHERE class_id = ? AND email = lower(?)`, classID, email).Scan(&role)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return role, err
}

const inviteColumns = `id, class_id, domain, created_by, created_at, expires_at, revoked_at, uses`

func scanInvite(row interface{ Scan(...any) error }) (*cohort.Invite, error) {
	var inv cohort.Invite
	var created, expires int64
	var revoked sql.NullInt64
	if err := row.Scan(&inv.ID, &inv.ClassID, &inv.Domain, &inv.CreatedBy, &created, &expires, &revoked, &inv.Uses); err != nil {
		return nil, err
	}
	inv.CreatedAt, inv.ExpiresAt, inv.RevokedAt = fromMicros(created), fromMicros(expires), fromNullMicros(revoked)
	return &inv, nil
}

// CreateInvite stores an invite by the hash of its code.
func (s *Store) CreateInvite(ctx context.Context, inv *cohort.Invite, codeHash string) error {
	inv.CreatedAt = s.Now().UTC()
	_, err := s.exec(ctx, `INSERT INTO class_invites (id, class_id, code_hash, domain, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		inv.ID, inv.ClassID, codeHash, inv.Domain, inv.CreatedBy, micros(inv.CreatedAt), micros(inv.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert invite: %w", err)
	}
	return nil
}

// ListInvites returns a class's invites, newest first.
func (s *Store) ListInvites(ctx context.Context, classID string) ([]*cohort.Invite, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+inviteColumns+` FROM class_invites WHERE class_id = ? ORDER BY created_at DESC, id`, classID)
	if err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	return collect(rows, scanInvite)
}

// RevokeInvite revokes an invite of a class.
func (s *Store) RevokeInvite(ctx context.Context, classID, inviteID string) error {
	res, err := s.exec(ctx, `UPDATE class_invites SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? AND class_id = ?`,
		micros(s.Now()), inviteID, classID)
	if err != nil {
		return fmt.Errorf("revoke invite: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cohort.Errorf(cohort.ENOTFOUND, "invite %s not found in class %s", inviteID, classID)
	}
	return nil
}

// RedeemInvite enrolls u as a participant with a live invite code.
func (s *Store) RedeemInvite(ctx context.Context, codeHash string, u *cohort.User) (*cohort.Invite, error) {
	var inv *cohort.Invite
	err := s.inTx(ctx, func(tx querier) error {
		var err error
		inv, err = scanInvite(tx.QueryRowContext(ctx, `SELECT `+inviteColumns+` FROM class_invites WHERE code_hash = ?`, codeHash))
		if err == sql.ErrNoRows {
			return cohort.Errorf(cohort.EFORBIDDEN, "this invite code is not valid; ask your instructor for a new link")
		}
		if err != nil {
			return err
		}
		now := s.Now()
		switch {
		case inv.RevokedAt != nil:
			return cohort.Errorf(cohort.EFORBIDDEN, "this invite was revoked by the instructor; ask for a new link")
		case !now.Before(inv.ExpiresAt):
			return cohort.Errorf(cohort.EFORBIDDEN, "this invite expired at %s; ask for a new link", inv.ExpiresAt.Format(time.RFC3339))
		case inv.Domain != "" && u.HostedDomain != inv.Domain:
			return cohort.Errorf(cohort.EFORBIDDEN, "this invite is for accounts of %s; sign in with one (yours is %s)", inv.Domain, describeDomain(u.HostedDomain))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO class_members (class_id, email, role, added_by, added_at) VALUES (?, ?, 'participant', ?, ?)
			ON CONFLICT (class_id, email) DO NOTHING`, inv.ClassID, u.Email, "invite "+inv.ID, micros(now)); err != nil {
			return fmt.Errorf("enroll: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE class_invites SET uses = uses + 1 WHERE id = ?`, inv.ID)
		inv.Uses++
		return err
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}

func describeDomain(d string) string {
	if d == "" {
		return "a personal account"
	}
	return "of " + d
}
