package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/cohortdev/cohort"
)

const (
	shardColumns  = `name, class_id, generation, settled, lease_owner, lease_until`
	memberColumns = `session_id, shard, class_id, wanted, spec, vm, failed, note`
)

func scanShard(row interface{ Scan(...any) error }) (*cohort.Shard, error) {
	var sh cohort.Shard
	var until int64
	if err := row.Scan(&sh.Name, &sh.ClassID, &sh.Generation, &sh.Settled, &sh.LeaseOwner, &until); err != nil {
		return nil, err
	}
	if until != 0 {
		sh.LeaseUntil = fromMicros(until)
	}
	return &sh, nil
}

func scanMember(row interface{ Scan(...any) error }) (*cohort.ShardMember, error) {
	var m cohort.ShardMember
	return &m, row.Scan(&m.SessionID, &m.Shard, &m.ClassID, &m.Wanted, &m.Spec, &m.VM, &m.Failed, &m.Note)
}

func leaseMicros(sh *cohort.Shard) int64 {
	if sh.LeaseUntil.IsZero() {
		return 0
	}
	return micros(sh.LeaseUntil)
}

// EditShards runs edit on a class's shards and members and writes the
// rows it added, changed or removed, in one transaction.
func (s *Store) EditShards(ctx context.Context, classID string, edit func(*cohort.ShardSet) error) error {
	return s.inTx(ctx, func(tx querier) error {
		set := &cohort.ShardSet{ClassID: classID, Shards: map[string]*cohort.Shard{}, Members: map[string]*cohort.ShardMember{}}
		rows, err := tx.QueryContext(ctx, `SELECT `+shardColumns+` FROM shards WHERE class_id = ?`, classID)
		if err != nil {
			return err
		}
		shards, err := collect(rows, scanShard)
		if err != nil {
			return err
		}
		for _, sh := range shards {
			set.Shards[sh.Name] = sh
		}
		if rows, err = tx.QueryContext(ctx, `SELECT `+memberColumns+` FROM shard_members WHERE class_id = ?`, classID); err != nil {
			return err
		}
		members, err := collect(rows, scanMember)
		if err != nil {
			return err
		}
		for _, m := range members {
			set.Members[m.SessionID] = m
		}
		was := copyShards(set)
		if err := edit(set); err != nil {
			return err
		}
		return writeShards(ctx, tx, was, set)
	})
}

// copyShards copies a set's rows, to compare with after an edit.
func copyShards(set *cohort.ShardSet) *cohort.ShardSet {
	c := &cohort.ShardSet{Shards: map[string]*cohort.Shard{}, Members: map[string]*cohort.ShardMember{}}
	for k, v := range set.Shards {
		sh := *v
		c.Shards[k] = &sh
	}
	for k, v := range set.Members {
		m := *v
		c.Members[k] = &m
	}
	return c
}

// writeShards writes the difference between was and set: new and changed
// shards, then members, then removed members, then removed shards, so
// that no member is ever without its shard.
func writeShards(ctx context.Context, tx querier, was, set *cohort.ShardSet) error {
	for name, sh := range set.Shards {
		if sh.Name != name || sh.ClassID != set.ClassID {
			return fmt.Errorf("edit shards: shard %q of class %q in the set of %s under %q", sh.Name, sh.ClassID, set.ClassID, name)
		}
		if old := was.Shards[name]; old != nil && *old == *sh {
			continue
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO shards (`+shardColumns+`) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET generation = excluded.generation, settled = excluded.settled,
				lease_owner = excluded.lease_owner, lease_until = excluded.lease_until`,
			sh.Name, sh.ClassID, sh.Generation, sh.Settled, sh.LeaseOwner, leaseMicros(sh))
		if err != nil {
			return fmt.Errorf("write shard %s: %w", name, err)
		}
	}
	for id, m := range set.Members {
		if m.SessionID != id || m.ClassID != set.ClassID || set.Shards[m.Shard] == nil {
			return fmt.Errorf("edit shards: member %q of class %q in shard %q, in the set of %s under %q", m.SessionID, m.ClassID, m.Shard, set.ClassID, id)
		}
		if old := was.Members[id]; old != nil && *old == *m {
			continue
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO shard_members (`+memberColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (session_id) DO UPDATE SET shard = excluded.shard, wanted = excluded.wanted, spec = excluded.spec,
				vm = excluded.vm, failed = excluded.failed, note = excluded.note`,
			m.SessionID, m.Shard, m.ClassID, m.Wanted, m.Spec, m.VM, m.Failed, m.Note)
		if err != nil {
			return fmt.Errorf("write shard member %s: %w", id, err)
		}
	}
	for id := range maps.Keys(was.Members) {
		if set.Members[id] == nil {
			if _, err := tx.ExecContext(ctx, `DELETE FROM shard_members WHERE session_id = ?`, id); err != nil {
				return fmt.Errorf("remove shard member %s: %w", id, err)
			}
		}
	}
	for name := range maps.Keys(was.Shards) {
		if set.Shards[name] == nil {
			if _, err := tx.ExecContext(ctx, `DELETE FROM shards WHERE name = ?`, name); err != nil {
				return fmt.Errorf("remove shard %s: %w", name, err)
			}
		}
	}
	return nil
}

// ShardMember returns a session's membership.
func (s *Store) ShardMember(ctx context.Context, sessionID string) (*cohort.ShardMember, error) {
	m, err := scanMember(s.read.QueryRowContext(ctx, `SELECT `+memberColumns+` FROM shard_members WHERE session_id = ?`, sessionID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cohort.Errorf(cohort.ENOTFOUND, "session %s is in no shard", sessionID)
	}
	if err != nil {
		return nil, s.d.Unavailable(fmt.Errorf("get shard member: %w", err))
	}
	return m, nil
}

// counted reads shards with their member counts.
const counted = `SELECT ` + shardColumns + `, (SELECT count(*) FROM shard_members m WHERE m.shard = s.name) FROM shards s`

func scanCounted(row interface{ Scan(...any) error }) (*cohort.Shard, error) {
	var sh cohort.Shard
	var until int64
	if err := row.Scan(&sh.Name, &sh.ClassID, &sh.Generation, &sh.Settled, &sh.LeaseOwner, &until, &sh.Members); err != nil {
		return nil, err
	}
	if until != 0 {
		sh.LeaseUntil = fromMicros(until)
	}
	return &sh, nil
}

// GetShard returns a shard with its member count.
func (s *Store) GetShard(ctx context.Context, name string) (*cohort.Shard, error) {
	sh, err := scanCounted(s.read.QueryRowContext(ctx, counted+` WHERE s.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cohort.Errorf(cohort.ENOTFOUND, "shard %s not found", name)
	}
	if err != nil {
		return nil, s.d.Unavailable(fmt.Errorf("get shard: %w", err))
	}
	return sh, nil
}

// ListShards returns every shard with its member count.
func (s *Store) ListShards(ctx context.Context) ([]*cohort.Shard, error) {
	rows, err := s.read.QueryContext(ctx, counted+` ORDER BY s.name`)
	if err != nil {
		return nil, s.d.Unavailable(fmt.Errorf("list shards: %w", err))
	}
	return collect(rows, scanCounted)
}

// RenewShardLease moves owner's lease on a shard to until: one row, so
// that a renewal never waits for, or fails with, a class's edits.
func (s *Store) RenewShardLease(ctx context.Context, name, owner string, until time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE shards SET lease_until = ? WHERE name = ? AND lease_owner = ?`, micros(until), name, owner)
	if err != nil {
		return false, fmt.Errorf("renew the lease of shard %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ListShardMembers returns every member of every shard.
func (s *Store) ListShardMembers(ctx context.Context) ([]*cohort.ShardMember, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+memberColumns+` FROM shard_members ORDER BY session_id`)
	if err != nil {
		return nil, s.d.Unavailable(fmt.Errorf("list shard members: %w", err))
	}
	return collect(rows, scanMember)
}
