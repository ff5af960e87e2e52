package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cohortdev/cohort"
)

const sessionColumns = `id, class_id, user_id, state, reason, driver, address, notebook_token,
	created_at, state_changed_at, ready_at, ended_at, version,
	end_cause, last_activity_at, extension_us, idle_deadline, hard_deadline, check_at, warned_at,
	bill_vm, bill_disk, bill_cap_us, budget_stop_at, claimed_at`

const activeStates = `('requested', 'provisioning', 'ready', 'stopping')`

func scanSession(row interface{ Scan(...any) error }) (*cohort.Session, error) {
	var s cohort.Session
	var created, changed, extension, billCap int64
	var ready, ended, activity, idle, hard, check, warned, budgetStop, claimed sql.NullInt64
	err := row.Scan(&s.ID, &s.ClassID, &s.UserID, &s.State, &s.Reason, &s.Driver, &s.Address, &s.NotebookToken,
		&created, &changed, &ready, &ended, &s.Version,
		&s.EndCause, &activity, &extension, &idle, &hard, &check, &warned,
		&s.BillVM, &s.BillDisk, &billCap, &budgetStop, &claimed)
	if err != nil {
		return nil, err
	}
	s.CreatedAt, s.StateChangedAt = fromMicros(created), fromMicros(changed)
	s.ReadyAt, s.EndedAt = fromNullMicros(ready), fromNullMicros(ended)
	s.LastActivityAt, s.WarnedAt = fromNullMicros(activity), fromNullMicros(warned)
	s.IdleDeadline, s.HardDeadline, s.CheckAt = fromNullMicros(idle), fromNullMicros(hard), fromNullMicros(check)
	s.BudgetStopAt, s.ClaimedAt = fromNullMicros(budgetStop), fromNullMicros(claimed)
	s.Extension = cohort.Duration(time.Duration(extension) * time.Microsecond)
	s.BillCap = cohort.Duration(time.Duration(billCap) * time.Microsecond)
	return &s, nil
}

// StartSession returns the user's active session in the class or inserts
// s. A warm seat is always inserted: the pool has many.
func (s *Store) StartSession(ctx context.Context, sess *cohort.Session, seats int) (*cohort.Session, bool, error) {
	var active *cohort.Session
	err := s.inTx(ctx, func(tx querier) error {
		active = nil
		if !sess.Warm() {
			var err error
			active, err = scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions
				WHERE class_id = ? AND user_id = ? AND state IN `+activeStates, sess.ClassID, sess.UserID))
			if err != sql.ErrNoRows {
				return err
			}
			active = nil
		}
		var used int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE class_id = ? AND state IN `+activeStates, sess.ClassID).Scan(&used); err != nil {
			return fmt.Errorf("count seats: %w", err)
		}
		if used >= seats {
			return cohort.Errorf(cohort.ECONFLICT, "the class is full: all %d seats are in use", seats)
		}
		now := s.Now().UTC()
		sess.CreatedAt, sess.StateChangedAt, sess.Version = now, now, 1
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, class_id, user_id, state, reason, driver, address, notebook_token,
			created_at, state_changed_at, version, bill_vm, bill_disk, bill_cap_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sess.ID, sess.ClassID, sess.UserID, sess.State, sess.Reason, sess.Driver, sess.Address, sess.NotebookToken,
			micros(now), micros(now), sess.Version, sess.BillVM, sess.BillDisk, time.Duration(sess.BillCap).Microseconds())
		if err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return insertEvent(ctx, tx, &cohort.Event{SessionID: sess.ID, Time: now, State: sess.State, Message: "session requested"})
	})
	if err != nil {
		return nil, false, err
	}
	if active != nil {
		return active, false, nil
	}
	return sess, true, nil
}

// ClaimSession gives a warm seat to a user with a fresh notebook token,
// if it is still a warm seat that runs or starts.
func (s *Store) ClaimSession(ctx context.Context, id, userID, token string, at time.Time) (*cohort.Session, error) {
	var claimed *cohort.Session
	err := s.inTx(ctx, func(tx querier) error {
		now := micros(at)
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET user_id = ?, notebook_token = ?, claimed_at = ?,
			ready_at = CASE WHEN ready_at IS NULL THEN ready_at ELSE ? END, last_activity_at = NULL,
			idle_deadline = NULL, hard_deadline = NULL, check_at = NULL, warned_at = NULL, version = version + 1
			WHERE id = ? AND user_id = ? AND state IN ('requested', 'provisioning', 'ready')`,
			userID, token, now, now, id, cohort.PoolUserID)
		if err != nil {
			return fmt.Errorf("claim session: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return cohort.Errorf(cohort.ECONFLICT, "session %s is no longer a warm seat", id)
		}
		if claimed, err = scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id)); err != nil {
			return err
		}
		return insertEvent(ctx, tx, &cohort.Event{SessionID: id, Time: fromMicros(now), State: claimed.State, Message: "a warm seat was taken for you"})
	})
	return claimed, err
}

// GetSession returns a session by ID.
func (s *Store) GetSession(ctx context.Context, id string) (*cohort.Session, error) {
	sess, err := scanSession(s.read.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id))
	return sess, notFound(err, "session %s not found", id)
}

// ListSessions returns the sessions matching f, newest first.
func (s *Store) ListSessions(ctx context.Context, f cohort.SessionFilter) ([]*cohort.Session, error) {
	var where []string
	var args []any
	if f.ClassID != "" {
		where, args = append(where, "class_id = ?"), append(args, f.ClassID)
	}
	if f.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, f.UserID)
	}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	q := `SELECT ` + sessionColumns + ` FROM sessions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.read.QueryContext(ctx, q+" ORDER BY created_at DESC, id", args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return collect(rows, scanSession)
}

// UpdateSession writes a session if nobody changed it since it was read.
func (s *Store) UpdateSession(ctx context.Context, sess *cohort.Session, e *cohort.Event) error {
	err := s.inTx(ctx, func(tx querier) error {
		// The timeout columns are not written here: activity arrives all the
		// time and must not make lifecycle writes fail their version check.
		var wasEnded bool
		err := tx.QueryRowContext(ctx, `SELECT ended_at IS NOT NULL FROM sessions WHERE id = ? AND version = ?`, sess.ID, sess.Version).Scan(&wasEnded)
		if errors.Is(err, sql.ErrNoRows) {
			return cohort.Errorf(cohort.ECONFLICT, "session %s changed meanwhile; reload it", sess.ID)
		}
		if err != nil {
			return fmt.Errorf("update session: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE sessions SET state = ?, reason = ?, end_cause = ?, address = ?, state_changed_at = ?,
			ready_at = ?, ended_at = ?, version = version + 1 WHERE id = ?`,
			sess.State, sess.Reason, sess.EndCause, sess.Address, micros(sess.StateChangedAt),
			nullMicros(sess.ReadyAt), nullMicros(sess.EndedAt), sess.ID)
		if err != nil {
			return fmt.Errorf("update session: %w", err)
		}
		if !wasEnded && sess.EndedAt != nil {
			if err := addSpend(ctx, tx, sess); err != nil {
				return err
			}
		}
		if e == nil {
			return nil
		}
		e.SessionID = sess.ID
		return insertEvent(ctx, tx, e)
	})
	if err == nil {
		sess.Version++
	}
	return err
}

// AppendEvent records a progress message.
func (s *Store) AppendEvent(ctx context.Context, e *cohort.Event) error {
	return s.inTx(ctx, func(tx querier) error { return insertEvent(ctx, tx, e) })
}

func insertEvent(ctx context.Context, tx querier, e *cohort.Event) error {
	err := tx.QueryRowContext(ctx, `INSERT INTO session_events (session_id, time, state, message) VALUES (?, ?, ?, ?) RETURNING id`,
		e.SessionID, micros(e.Time), e.State, e.Message).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	return nil
}

// ListEvents returns a session's events after the given ID, oldest first.
func (s *Store) ListEvents(ctx context.Context, sessionID string, after int64) ([]*cohort.Event, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, session_id, time, state, message FROM session_events
		WHERE session_id = ? AND id > ? ORDER BY id LIMIT 1000`, sessionID, after)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []*cohort.Event
	for rows.Next() {
		var e cohort.Event
		var t int64
		if err := rows.Scan(&e.ID, &e.SessionID, &t, &e.State, &e.Message); err != nil {
			return nil, err
		}
		e.Time = fromMicros(t)
		out = append(out, &e)
	}
	return out, rows.Err()
}

// RecordActivity moves a session's last activity forward to at (never back).
func (s *Store) RecordActivity(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE sessions SET last_activity_at = ? WHERE id = ? AND (last_activity_at IS NULL OR last_activity_at < ?)`, micros(at), id, micros(at))
	if err != nil {
		return fmt.Errorf("record activity: %w", err)
	}
	return nil
}

// SetDeadlines caches a session's computed deadlines and warning time.
func (s *Store) SetDeadlines(ctx context.Context, id string, d cohort.SessionDeadlines) error {
	_, err := s.exec(ctx, `UPDATE sessions SET idle_deadline = ?, hard_deadline = ?, check_at = ?, warned_at = ? WHERE id = ?`,
		nullMicros(d.Idle), nullMicros(d.Hard), nullMicros(d.CheckAt), nullMicros(d.WarnedAt), id)
	if err != nil {
		return fmt.Errorf("set deadlines: %w", err)
	}
	return nil
}

// SetBudgetStop records when a session stops for its class's budget
// (nil: it does not).
func (s *Store) SetBudgetStop(ctx context.Context, id string, at *time.Time) error {
	res, err := s.exec(ctx, `UPDATE sessions SET budget_stop_at = ? WHERE id = ?`, nullMicros(at), id)
	if err != nil {
		return fmt.Errorf("set budget stop: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cohort.Errorf(cohort.ENOTFOUND, "session %s not found", id)
	}
	return nil
}

// SetExtension records an instructor's extension of the maximum lifetime.
func (s *Store) SetExtension(ctx context.Context, id string, ext cohort.Duration) error {
	res, err := s.exec(ctx, `UPDATE sessions SET extension_us = ? WHERE id = ?`, ext.D().Microseconds(), id)
	if err != nil {
		return fmt.Errorf("set extension: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cohort.Errorf(cohort.ENOTFOUND, "session %s not found", id)
	}
	return nil
}

// DueSessions returns ready sessions whose check time is at or before t,
// or not computed yet.
func (s *Store) DueSessions(ctx context.Context, t time.Time) ([]*cohort.Session, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE state = 'ready'
		AND (check_at IS NULL OR check_at <= ?) ORDER BY id`, micros(t))
	if err != nil {
		return nil, fmt.Errorf("due sessions: %w", err)
	}
	return collect(rows, scanSession)
}

// CountSessions counts every session by state and driver.
func (s *Store) CountSessions(ctx context.Context) ([]cohort.SessionCount, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT state, driver, count(*) FROM sessions GROUP BY state, driver ORDER BY state, driver`)
	if err != nil {
		return nil, fmt.Errorf("count sessions: %w", err)
	}
	defer rows.Close()
	var out []cohort.SessionCount
	for rows.Next() {
		var c cohort.SessionCount
		if err := rows.Scan(&c.State, &c.Driver, &c.N); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
