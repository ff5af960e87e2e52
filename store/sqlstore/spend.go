package sqlstore

import (
	"context"
	"fmt"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
)

// addSpend adds what a session that just ended cost to its months' spend.
func addSpend(ctx context.Context, tx querier, sess *cohort.Session) error {
	for month, amount := range cost.ByMonth(sess, cost.Rate{VM: sess.BillVM, Disk: sess.BillDisk}, *sess.EndedAt) {
		_, err := tx.ExecContext(ctx, `INSERT INTO spend (month, class_id, class_name, amount, sessions)
			VALUES (?, ?, coalesce((SELECT name FROM classes WHERE id = ?), ''), ?, 1)
			ON CONFLICT (month, class_id) DO UPDATE SET amount = spend.amount + excluded.amount, sessions = spend.sessions + 1,
				class_name = CASE WHEN excluded.class_name = '' THEN spend.class_name ELSE excluded.class_name END`,
			string(month), sess.ClassID, sess.ClassID, amount)
		if err != nil {
			return fmt.Errorf("add to the month's spend: %w", err)
		}
	}
	return nil
}

// ListSpend returns what ended sessions cost in a month, by class; in
// every month if month is "".
func (s *Store) ListSpend(ctx context.Context, month string) ([]*cohort.Spend, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT month, class_id, class_name, amount, sessions FROM spend
		WHERE ? = '' OR month = ? ORDER BY month DESC, amount DESC, class_id`, month, month)
	if err != nil {
		return nil, fmt.Errorf("list spend: %w", err)
	}
	return collect(rows, func(row interface{ Scan(...any) error }) (*cohort.Spend, error) {
		var sp cohort.Spend
		return &sp, row.Scan(&sp.Month, &sp.ClassID, &sp.ClassName, &sp.Amount, &sp.Sessions)
	})
}

// GetSettings returns the installation's settings.
func (s *Store) GetSettings(ctx context.Context) (*cohort.Settings, error) {
	var set cohort.Settings
	if err := s.read.QueryRowContext(ctx, `SELECT monthly_budget FROM settings WHERE id = 1`).Scan(&set.MonthlyBudget); err != nil {
		return nil, fmt.Errorf("get settings: %w", err)
	}
	return &set, nil
}

// SetSettings replaces the installation's settings.
func (s *Store) SetSettings(ctx context.Context, set *cohort.Settings) error {
	if _, err := s.exec(ctx, `UPDATE settings SET monthly_budget = ? WHERE id = 1`, set.MonthlyBudget); err != nil {
		return fmt.Errorf("set settings: %w", err)
	}
	return nil
}
