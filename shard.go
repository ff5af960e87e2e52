package cohort

import (
	"context"
	"time"
)

// ShardStore keeps the shards of a driver that batches sessions into
// stacks (provisioner/gce): which sessions each stack holds, and the
// lease of the replica updating it. Every replica reads and writes them
// here, so that any replica can run any shard's update.
type ShardStore interface {
	// EditShards runs edit on a class's shards and their members, then
	// writes what edit changed, all in one transaction. edit may run more
	// than once (a transaction that lost a race runs again).
	EditShards(ctx context.Context, classID string, edit func(*ShardSet) error) error
	// ShardMember returns a session's membership; ENOTFOUND if it has none.
	ShardMember(ctx context.Context, sessionID string) (*ShardMember, error)
	// GetShard returns a shard, with its member count; ENOTFOUND if gone.
	GetShard(ctx context.Context, name string) (*Shard, error)
	// ListShards returns every shard, with its member count.
	ListShards(ctx context.Context) ([]*Shard, error)
	// RenewShardLease moves the end of owner's lease on a shard to until,
	// and says whether owner still held it.
	RenewShardLease(ctx context.Context, name, owner string, until time.Time) (bool, error)
	// ListShardMembers returns every member of every shard.
	ListShardMembers(ctx context.Context) ([]*ShardMember, error)
}

// ShardSet is a class's shards (by name) and their members (by session).
type ShardSet struct {
	ClassID string
	Shards  map[string]*Shard
	Members map[string]*ShardMember
}

// Shard is one stack of a class's sessions.
type Shard struct {
	Name, ClassID string
	// Generation counts changes to what the stack should hold; Settled is
	// the generation the last finished update made true. An update is
	// owed while Generation > Settled.
	Generation, Settled int64
	// LeaseOwner updates the stack until LeaseUntil, renewing as it goes.
	LeaseOwner string
	LeaseUntil time.Time
	// Members counts the shard's members, as GetShard and ListShards read
	// it; EditShards neither sets nor writes it.
	Members int
}

// Leased says whether a replica holds the shard's lease at now.
func (s *Shard) Leased(now time.Time) bool { return s.LeaseOwner != "" && now.Before(s.LeaseUntil) }

// ShardMember is a session in a shard.
type ShardMember struct {
	SessionID, Shard, ClassID string
	// Wanted is false once the session stopped: its VM, if any, is to go,
	// and the row with it.
	Wanted bool
	// Spec is what the driver creates for the session, VM what exists of
	// it after the last update ("" for nothing): the driver's JSON.
	Spec, VM string
	// Failed says why the driver gave up on the session's start.
	Failed string
	// Note is the last thing an update said of it (a zone out of stock).
	Note string
}
