package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
)

// testShards: a class's shards and members are written as edited, only
// for that class, all or nothing, and concurrent edits do not lose each
// other's changes.
func testShards(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	if _, err := s.ShardMember(ctx, "ses_none"); cohort.ErrorCode(err) != cohort.ENOTFOUND {
		t.Fatalf("ShardMember of no session = %v, want ENOTFOUND", err)
	}
	until := clock.Now().Add(30 * time.Second)
	must0(s.EditShards(ctx, "cls_a", func(set *cohort.ShardSet) error {
		if len(set.Shards)+len(set.Members) != 0 || set.ClassID != "cls_a" {
			t.Fatalf("a new class's set = %+v", set)
		}
		set.Shards["a-1"] = &cohort.Shard{Name: "a-1", ClassID: "cls_a", Generation: 1, LeaseOwner: "r1", LeaseUntil: until}
		for _, id := range []string{"ses_1", "ses_2"} {
			set.Members[id] = &cohort.ShardMember{SessionID: id, Shard: "a-1", ClassID: "cls_a", Wanted: true, Spec: `{"zone":"z"}`}
		}
		return nil
	}))
	must0(s.EditShards(ctx, "cls_b", func(set *cohort.ShardSet) error {
		set.Shards["b-1"] = &cohort.Shard{Name: "b-1", ClassID: "cls_b"}
		set.Members["ses_3"] = &cohort.ShardMember{SessionID: "ses_3", Shard: "b-1", ClassID: "cls_b", Wanted: true}
		return nil
	}))
	m := must(s.ShardMember(ctx, "ses_1"))
	if *m != (cohort.ShardMember{SessionID: "ses_1", Shard: "a-1", ClassID: "cls_a", Wanted: true, Spec: `{"zone":"z"}`}) {
		t.Fatalf("ShardMember = %+v", m)
	}
	must0(s.EditShards(ctx, "cls_a", func(set *cohort.ShardSet) error {
		if len(set.Members) != 2 || len(set.Shards) != 1 {
			t.Fatalf("cls_a's set holds %d members and %d shards, want 2 and 1", len(set.Members), len(set.Shards))
		}
		sh := set.Shards["a-1"]
		if sh.LeaseOwner != "r1" || !sh.LeaseUntil.Equal(until) || !sh.Leased(clock.Now()) || sh.Leased(until) {
			t.Fatalf("shard read back as %+v", sh)
		}
		sh.Settled, sh.LeaseOwner, sh.LeaseUntil = 1, "", time.Time{}
		set.Members["ses_1"].VM, set.Members["ses_1"].Failed = `{"ip":"10.0.0.2"}`, ""
		set.Members["ses_2"].Wanted, set.Members["ses_2"].Failed = false, "out of zones"
		return nil
	}))
	if m := must(s.ShardMember(ctx, "ses_1")); m.VM != `{"ip":"10.0.0.2"}` {
		t.Fatalf("after an edit: %+v", m)
	}
	if m := must(s.ShardMember(ctx, "ses_2")); m.Wanted || m.Failed != "out of zones" {
		t.Fatalf("after an edit: %+v", m)
	}

	// A failed edit, or one that puts a row in another class or a member
	// in no shard, writes nothing.
	boom := errors.New("boom")
	for name, edit := range map[string]func(*cohort.ShardSet) error{
		"error": func(set *cohort.ShardSet) error {
			delete(set.Members, "ses_1")
			return boom
		},
		"other class": func(set *cohort.ShardSet) error {
			delete(set.Members, "ses_1")
			set.Shards["x"] = &cohort.Shard{Name: "x", ClassID: "cls_b"}
			return nil
		},
		"no shard": func(set *cohort.ShardSet) error {
			delete(set.Members, "ses_1")
			set.Members["ses_9"] = &cohort.ShardMember{SessionID: "ses_9", Shard: "gone", ClassID: "cls_a"}
			return nil
		},
	} {
		if err := s.EditShards(ctx, "cls_a", edit); err == nil {
			t.Fatalf("edit %s succeeded", name)
		}
		if _, err := s.ShardMember(ctx, "ses_1"); err != nil {
			t.Fatalf("after the refused edit %s: %v", name, err)
		}
	}

	// Edits of one class at once: none is lost.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			must0(s.EditShards(ctx, "cls_a", func(set *cohort.ShardSet) error {
				set.Shards["a-1"].Generation++
				return nil
			}))
		})
	}
	wg.Wait()
	shards := must(s.ListShards(ctx))
	if len(shards) != 2 || shards[0].Name != "a-1" || shards[0].Generation != 9 || shards[0].Members != 2 || shards[1].Name != "b-1" || shards[1].Members != 1 {
		t.Fatalf("ListShards = %+v, want a-1 at generation 9 with 2 members and b-1 with 1", shards)
	}
	if sh := must(s.GetShard(ctx, "b-1")); sh.ClassID != "cls_b" || sh.Members != 1 {
		t.Fatalf("GetShard = %+v", sh)
	}
	if _, err := s.GetShard(ctx, "none"); cohort.ErrorCode(err) != cohort.ENOTFOUND {
		t.Fatalf("GetShard of no shard = %v, want ENOTFOUND", err)
	}

	// A lease is renewed by its owner only.
	later := clock.Now().Add(time.Minute)
	if ok := must(s.RenewShardLease(ctx, "b-1", "r1", later)); ok {
		t.Fatal("renewed a lease nobody holds")
	}
	must0(s.EditShards(ctx, "cls_b", func(set *cohort.ShardSet) error {
		set.Shards["b-1"].LeaseOwner, set.Shards["b-1"].LeaseUntil = "r2", clock.Now()
		return nil
	}))
	if ok := must(s.RenewShardLease(ctx, "b-1", "r1", later)); ok {
		t.Fatal("renewed another's lease")
	}
	if ok := must(s.RenewShardLease(ctx, "b-1", "r2", later)); !ok {
		t.Fatal("the owner could not renew its lease")
	}
	if sh := must(s.GetShard(ctx, "b-1")); !sh.LeaseUntil.Equal(later) {
		t.Fatalf("renewed lease until %s, want %s", sh.LeaseUntil, later)
	}

	// Removing members then their shard.
	must0(s.EditShards(ctx, "cls_a", func(set *cohort.ShardSet) error {
		delete(set.Members, "ses_1")
		delete(set.Members, "ses_2")
		delete(set.Shards, "a-1")
		return nil
	}))
	members := must(s.ListShardMembers(ctx))
	if len(members) != 1 || members[0].SessionID != "ses_3" {
		t.Fatalf("ListShardMembers = %+v, want ses_3 alone", members)
	}
	if shards := must(s.ListShards(ctx)); len(shards) != 1 {
		t.Fatalf("ListShards after a removal = %+v", shards)
	}
}
