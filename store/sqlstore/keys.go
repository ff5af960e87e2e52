package sqlstore

import (
	"context"
	"fmt"
)

// RecordKey records id as the ID of the key named name unless one is
// recorded (or replace says to replace it), and returns the ID recorded.
func (s *Store) RecordKey(ctx context.Context, name, id string, replace bool) (string, error) {
	conflict := `DO NOTHING`
	if replace {
		conflict = `DO UPDATE SET id = excluded.id, recorded_at = excluded.recorded_at`
	}
	if _, err := s.exec(ctx, `INSERT INTO server_keys (name, id, recorded_at) VALUES (?, ?, ?) ON CONFLICT (name) `+conflict,
		name, id, micros(s.Now())); err != nil {
		return "", fmt.Errorf("record key %s: %w", name, err)
	}
	var recorded string
	if err := s.db.QueryRowContext(ctx, `SELECT id FROM server_keys WHERE name = ?`, name).Scan(&recorded); err != nil {
		return "", fmt.Errorf("read key %s: %w", name, err)
	}
	return recorded, nil
}
