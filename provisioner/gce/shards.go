package gce

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/infra"
)

// A shard is one stack holding the VMs of up to SeatsPerShard sessions of
// a class. Engine work is mostly per run, not per VM (docs/benchmarks.md),
// so a class start batches: sessions that arrive while nothing runs on a
// shard wait Gather for company and go up in one update; sessions that
// arrive while every shard of their class is updating open a new shard
// rather than queue, so a late participant waits for one update, not two.
//
// Shards and their members are rows in the store (cohort.ShardStore), so
// any replica can run any shard's update: a change bumps the shard's
// generation and queues an update (Options.Enqueue); the update takes
// the shard's lease, makes the stack hold every wanted member's VM and
// nothing else, and records what exists. A replica that dies mid-update
// lets its lease run out, and the next update, on any replica, finds the
// engine's lock stale (Stacks.locked) and repairs the state.

// member is what the driver keeps of a session in a shard
// (cohort.ShardMember.Spec).
type member struct {
	Spec infra.SessionSpec `json:"spec"`
	// Zones are the class's zones in order; Spec.Zone is the one tried now.
	Zones []string `json:"zones"`
	// Tries counts transient failures in a row.
	Tries int `json:"tries"`
}

// errLeaseLost ends an update whose replica could not renew its lease.
var errLeaseLost = errors.New("lost the lease of shard")

// errInterrupted is an update cut short by its context.
type errInterrupted struct{ cause error }

func (e errInterrupted) Error() string { return "the update was interrupted: " + e.cause.Error() }

// maxTries bounds transient failures of one session's create.
const maxTries = 3

var stackUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func readMember(m *cohort.ShardMember) (member, error) {
	var mb member
	if err := json.Unmarshal([]byte(m.Spec), &mb); err != nil {
		return mb, fmt.Errorf("read the spec of session %s in shard %s: %w", m.SessionID, m.Shard, err)
	}
	return mb, nil
}

func writeMember(m *cohort.ShardMember, mb member) {
	b, _ := json.Marshal(mb) // plain data
	m.Spec = string(b)
}

func readVM(m *cohort.ShardMember) (Outputs, bool) {
	var out Outputs
	if m.VM == "" || json.Unmarshal([]byte(m.VM), &out) != nil {
		return out, false
	}
	return out, true
}

// membersOf returns a shard's members in the order of their sessions.
func membersOf(set *cohort.ShardSet, shard string) []*cohort.ShardMember {
	var out []*cohort.ShardMember
	for _, id := range slices.Sorted(maps.Keys(set.Members)) {
		if m := set.Members[id]; m.Shard == shard {
			out = append(out, m)
		}
	}
	return out
}

// owe records a change to what a shard should hold and says whether the
// caller must queue an update: no update was owed before it.
func owe(sh *cohort.Shard) bool {
	due := sh.Generation == sh.Settled
	sh.Generation++
	return due
}

// place picks the shard a new session of a class joins: one that no
// replica updates and that has room, else a new one.
func (d *Driver) place(set *cohort.ShardSet, now time.Time) *cohort.Shard {
	count := map[string]int{}
	for _, m := range set.Members {
		count[m.Shard]++
	}
	for _, name := range slices.Sorted(maps.Keys(set.Shards)) {
		if sh := set.Shards[name]; !sh.Leased(now) && count[name] < d.opts.SeatsPerShard {
			return sh
		}
	}
	prefix := stackUnsafe.ReplaceAllString(set.ClassID, "-")
	if prefix == "" {
		prefix = "class"
	}
	sh := &cohort.Shard{Name: prefix + "-" + strings.ToLower(rand.Text()[:6]), ClassID: set.ClassID}
	set.Shards[sh.Name] = sh
	return sh
}

// queue asks for an update of a shard after a while.
func (d *Driver) queue(ctx context.Context, class, shard string, after time.Duration) error {
	if d.opts.Enqueue == nil {
		return errors.New("gce driver: no queue for shard updates (Options.Enqueue)")
	}
	if err := d.opts.Enqueue(ctx, class, shard, after); err != nil {
		return fmt.Errorf("queue an update of shard %s: %w", shard, err)
	}
	return nil
}

// UpdateShard runs the update a shard is owed, unless another replica
// holds its lease, and returns how soon to look at the shard again: when
// the lease runs out, or after a failure's backoff if another update is
// owed; 0 when nothing more is owed. Jobs call it (package jobs).
func (d *Driver) UpdateShard(ctx context.Context, class, name string) (time.Duration, error) {
	var (
		specs        []infra.SessionSpec
		gen          int64
		wait         time.Duration
		took, remove bool
	)
	owner := fmt.Sprintf("%s/%d", d.id, d.runs.Add(1)) // this run's, not this process's: one update at a time
	err := d.opts.Shards.EditShards(ctx, class, func(set *cohort.ShardSet) error {
		specs, took, remove, wait = nil, false, false, 0
		now := d.now()
		sh := set.Shards[name]
		switch {
		case sh == nil:
			return nil // removed
		case sh.Leased(now):
			wait = sh.LeaseUntil.Sub(now) + 100*time.Millisecond
			return nil
		}
		members := membersOf(set, name)
		for _, m := range members {
			if m.Wanted && m.Failed == "" {
				mb, err := readMember(m)
				if err != nil {
					return err
				}
				specs = append(specs, mb.Spec)
			}
		}
		remove = len(members) == 0
		if sh.Generation == sh.Settled && !remove {
			return nil // nothing owed
		}
		sh.LeaseOwner, sh.LeaseUntil, gen, took = owner, now.Add(d.opts.Lease), sh.Generation, true
		return nil
	})
	if err != nil || !took {
		return wait, err
	}
	held, release := d.hold(ctx, class, name, owner)
	defer release()
	if remove {
		return 0, d.removeShard(held, class, name, owner)
	}
	rep, uerr := d.opts.Stacks.Update(held, name, specs, func(id, msg string) { d.progress(held, id, msg) })
	if uerr != nil {
		d.log.Warn("shard update failed", "shard", name, "error", uerr)
	}
	var again time.Duration
	var notes map[string]string
	// Record what exists even when the job's context has ended: the
	// engine wrote it to the state.
	err = d.opts.Shards.EditShards(context.WithoutCancel(ctx), class, func(set *cohort.ShardSet) error {
		sh := set.Shards[name]
		if sh == nil {
			return fmt.Errorf("shard %s vanished while this replica held its lease", name)
		}
		var err error
		// An interrupted update (cohort stopping, the lease lost) says
		// nothing about the seats it did not make: they wait for the next.
		if cause := context.Cause(held); cause != nil {
			uerr = errInterrupted{cause}
		}
		again, notes, err = settle(set, sh, specs, rep, uerr)
		if err != nil {
			return err
		}
		sh.Settled = max(sh.Settled, gen)
		if sh.LeaseOwner == owner {
			sh.LeaseOwner, sh.LeaseUntil = "", time.Time{}
		}
		switch {
		case sh.Generation == sh.Settled && len(membersOf(set, name)) > 0:
			again = 0 // nothing owed
		case again == 0:
			again = time.Millisecond
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range slices.Sorted(maps.Keys(notes)) {
		d.progress(ctx, id, notes[id])
	}
	return again, nil
}

// progress tells a session's participant a step of its start.
func (d *Driver) progress(ctx context.Context, sessionID, msg string) {
	if d.opts.Progress != nil {
		d.opts.Progress(ctx, sessionID, msg)
	}
}

// removeShard destroys an empty shard's stack and deletes its row, unless
// a member joined meanwhile (then the next update makes it).
func (d *Driver) removeShard(ctx context.Context, class, name, owner string) error {
	rerr := d.opts.Stacks.Remove(ctx, name)
	return d.opts.Shards.EditShards(context.WithoutCancel(ctx), class, func(set *cohort.ShardSet) error {
		sh := set.Shards[name]
		if sh == nil {
			return nil
		}
		if len(membersOf(set, name)) == 0 && rerr == nil {
			delete(set.Shards, name)
			return nil
		}
		if sh.LeaseOwner == owner {
			sh.LeaseOwner, sh.LeaseUntil = "", time.Time{}
		}
		if rerr != nil {
			return fmt.Errorf("remove the empty shard %s: %w", name, rerr)
		}
		return nil
	})
}

// hold keeps a shard's lease for owner while the returned context lives,
// renewing it every third of Lease. If a renewal fails, the context ends
// with errLeaseLost, on which the engine is killed at once (command), long
// before the lease runs out and another replica may take the stack's lock
// as stale: the engine must never outlive the lease. What it leaves is
// what a crash leaves, which the next update repairs.
func (d *Driver) hold(ctx context.Context, class, name, owner string) (context.Context, func()) {
	held, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(d.opts.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.Lease/6)
			err := d.opts.Shards.EditShards(rctx, class, func(set *cohort.ShardSet) error {
				sh := set.Shards[name]
				if sh == nil || sh.LeaseOwner != owner {
					return errors.New("another replica took it")
				}
				sh.LeaseUntil = d.now().Add(d.opts.Lease)
				return nil
			})
			rcancel()
			if err != nil {
				d.log.Error("lost a shard's lease; interrupting its update", "shard", name, "error", err)
				cancel(fmt.Errorf("%w %s: %w", errLeaseLost, name, err))
				return
			}
		}
	}()
	return held, func() {
		close(done)
		<-stopped
		cancel(nil)
	}
}

// settle decides, after an update, what becomes of each member: its VM
// recorded; up; retried in another zone (stockout) or the same one
// (transient, up to maxTries); or given up on with a message for the
// participant (quota, anything else). Whatever a given-up or stopped
// member left is deleted by the next update; a stopped member with
// nothing left is removed. It returns the backoff before the next update,
// and what to tell participants.
func settle(set *cohort.ShardSet, sh *cohort.Shard, specs []infra.SessionSpec, rep Report, updateErr error) (time.Duration, map[string]string, error) {
	notes := map[string]string{}
	tried := map[string]bool{}
	for _, s := range specs {
		tried[s.SessionID] = true
	}
	var backoff time.Duration
	changed := false
	for _, m := range membersOf(set, sh.Name) {
		id := m.SessionID
		out, up := rep.Exists[id]
		if up && m.VM == "" && m.Wanted && m.Failed == "" {
			notes[id] = "the VM is up; waiting for it to boot and start Jupyter"
		}
		if rep.Exists != nil { // the state was read
			m.VM = ""
			if up {
				b, _ := json.Marshal(out) // plain data
				m.VM = string(b)
			}
		}
		if !m.Wanted || m.Failed != "" {
			switch {
			case !m.Wanted && m.VM == "":
				delete(set.Members, id)
			case m.VM != "":
				changed = true // still to delete
			}
			continue
		}
		if !tried[id] {
			continue // joined during the update: owed the next
		}
		mb, err := readMember(m)
		if err != nil {
			return 0, nil, err
		}
		cause := rep.Failed[id]
		if up && cause == nil {
			if mb.Tries > 0 {
				mb.Tries = 0
				writeMember(m, mb)
			}
			continue
		}
		if cause == nil {
			cause = updateErr
		}
		if errors.As(cause, new(errInterrupted)) {
			changed = true
			continue
		}
		if cause == nil {
			cause = errors.New("the update ended before the VM was created")
		}
		f := Classify(cause)
		changed = true
		switch f.Kind {
		case FailStockout:
			i := slices.Index(mb.Zones, mb.Spec.Zone)
			if i < 0 || i+1 >= len(mb.Zones) {
				m.Failed = fmt.Sprintf("no zone of %s had capacity; add zones to the class or try again later", strings.Join(mb.Zones, ", "))
				continue
			}
			m.Note = fmt.Sprintf("%s: %s; trying %s", mb.Spec.Zone, f.Message, mb.Zones[i+1])
			notes[id] = m.Note
			mb.Spec.Zone, mb.Tries = mb.Zones[i+1], 0
		case FailTransient:
			if mb.Tries++; mb.Tries > maxTries {
				m.Failed = f.Message + " " + fmt.Sprint(maxTries) + " times; try again later"
				continue
			}
			backoff = max(backoff, time.Duration(1<<(mb.Tries-1))*time.Second)
		default:
			m.Failed = f.Message
			continue
		}
		writeMember(m, mb)
	}
	if changed {
		sh.Generation++
	}
	if updateErr != nil {
		backoff = max(backoff, 2*time.Second) // the cloud or the engine failed: not in a tight loop
	}
	return backoff, notes, nil
}
