package sqlstore

import (
	"context"
	"fmt"

	"github.com/cohortdev/cohort"
)

// AppendAudit records an audit event.
func (s *Store) AppendAudit(ctx context.Context, e *cohort.AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = s.Now().UTC()
	}
	err := s.db.QueryRowContext(ctx, `INSERT INTO audit_events (time, actor_id, actor_email, action, class_id, session_id, subject, detail, client_addr)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		micros(e.Time), e.ActorID, e.ActorEmail, e.Action, e.ClassID, e.SessionID, e.Subject, e.Detail, e.ClientAddr).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("insert audit event: %w", s.d.Unavailable(err))
	}
	return nil
}

// ListAudit returns audit events, newest first.
func (s *Store) ListAudit(ctx context.Context, f cohort.AuditFilter) ([]*cohort.AuditEvent, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	q := `SELECT id, time, actor_id, actor_email, action, class_id, session_id, subject, detail, client_addr FROM audit_events WHERE 1 = 1`
	var args []any
	if f.ClassID != "" {
		q, args = q+` AND class_id = ?`, append(args, f.ClassID)
	}
	if f.Before > 0 {
		q, args = q+` AND id < ?`, append(args, f.Before)
	}
	rows, err := s.read.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return collect(rows, func(row interface{ Scan(...any) error }) (*cohort.AuditEvent, error) {
		var e cohort.AuditEvent
		var t int64
		if err := row.Scan(&e.ID, &t, &e.ActorID, &e.ActorEmail, &e.Action, &e.ClassID, &e.SessionID, &e.Subject, &e.Detail, &e.ClientAddr); err != nil {
			return nil, err
		}
		e.Time = fromMicros(t)
		return &e, nil
	})
}
