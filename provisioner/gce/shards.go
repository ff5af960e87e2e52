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
	"sync"
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
	// UserID is the session's participant (the pool's for a warm seat).
	UserID string `json:"user_id,omitempty"`
	// Materials is the version of the class's materials the session
	// gets at its start; Delivered the one its work has had since.
	Materials string `json:"materials,omitempty"`
	Delivered string `json:"delivered,omitempty"`
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

// UpdateShard runs the update a shard is owed, unless a replica holds its
// lease (which looks again when it is done), and returns how soon to look
// at the shard again: 0 when nothing more is owed, a failure's backoff
// otherwise. Jobs call it (package jobs).
func (d *Driver) UpdateShard(ctx context.Context, class, name string) (time.Duration, error) {
	var (
		specs        []infra.SessionSpec
		gen          int64
		took, remove bool
	)
	owner := fmt.Sprintf("%s/%d", d.id, d.runs.Add(1)) // this run's, not this process's: one update at a time
	err := d.opts.Shards.EditShards(ctx, class, func(set *cohort.ShardSet) error {
		specs, took, remove = nil, false, false
		now := d.now()
		sh := set.Shards[name]
		if sh == nil || sh.Leased(now) {
			return nil // removed, or updating
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
		return 0, err
	}
	held, release := d.hold(ctx, name, owner)
	defer release()
	if remove {
		return 0, d.removeShard(held, release, class, name, owner)
	}
	rep, uerr := d.opts.Stacks.Update(held, name, specs, func(id, msg string) { d.progress(held, id, msg) })
	if uerr != nil {
		d.log.Warn("shard update failed", "shard", name, "error", uerr)
	}
	// An interrupted update (cohort stopping, the lease lost) says
	// nothing about the seats it did not make: they wait for the next.
	if cause := context.Cause(held); cause != nil {
		uerr = errInterrupted{cause}
	}
	release()
	var again time.Duration
	var notes map[string]string
	// Record what exists even when the job's context has ended: the
	// engine wrote it to the state.
	err = d.opts.Shards.EditShards(context.WithoutCancel(ctx), class, func(set *cohort.ShardSet) error {
		again, notes = 0, nil
		sh := set.Shards[name]
		if sh == nil || sh.LeaseOwner != owner {
			return nil // the lease was lost: its holder settles the shard
		}
		var err error
		if again, notes, err = settle(set, sh, specs, rep, uerr); err != nil {
			return err
		}
		sh.Settled = max(sh.Settled, gen)
		sh.LeaseOwner, sh.LeaseUntil = "", time.Time{}
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
func (d *Driver) removeShard(held context.Context, release func(), class, name, owner string) error {
	rerr := d.opts.Stacks.Remove(held, name)
	release()
	return d.opts.Shards.EditShards(context.WithoutCancel(held), class, func(set *cohort.ShardSet) error {
		sh := set.Shards[name]
		if sh == nil || sh.LeaseOwner != owner {
			return nil
		}
		if len(membersOf(set, name)) == 0 && rerr == nil {
			delete(set.Shards, name)
			return nil
		}
		sh.LeaseOwner, sh.LeaseUntil = "", time.Time{}
		if rerr != nil {
			return fmt.Errorf("remove the empty shard %s: %w", name, rerr)
		}
		return nil
	})
}

// hold keeps owner's lease on a shard while its engine runs, renewing it
// every third of Lease; release stops it (and may be called again). A
// renewal that fails is tried again each second while a third of the
// lease is left; a lease lost, or about to run out, kills the engine at
// once (Stacks.kill) and ends the context with errLeaseLost: the engine
// must never outlive the lease, for then another replica may take the
// stack's lock as stale. What a killed engine leaves is what a crash
// leaves, which the next update repairs. An engine interrupted by
// cohort's stop keeps the lease renewed until it has finished.
func (d *Driver) hold(ctx context.Context, name, owner string) (context.Context, func()) {
	held, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		renewed := d.now()
		tick := time.NewTicker(d.opts.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if lost := d.renew(ctx, name, owner, &renewed, done); lost != nil {
				d.log.Error("lost a shard's lease; killing its engine", "shard", name, "error", lost)
				d.opts.Stacks.kill(name)
				cancel(fmt.Errorf("%w %s: %w", errLeaseLost, name, lost))
				return
			}
		}
	}()
	var once sync.Once
	return held, func() {
		once.Do(func() {
			close(done)
			<-stopped
			cancel(nil)
		})
	}
}

// renew renews owner's lease, trying again each second while the store
// fails and a third of the lease is left; it returns why the lease is
// lost, or nil (also when done closes meanwhile).
func (d *Driver) renew(ctx context.Context, name, owner string, renewed *time.Time, done <-chan struct{}) error {
	for {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.Lease/6)
		ok, err := d.opts.Shards.RenewShardLease(rctx, name, owner, d.now().Add(d.opts.Lease))
		cancel()
		switch {
		case err == nil && ok:
			*renewed = d.now()
			return nil
		case err == nil:
			return errors.New("another replica holds it")
		case d.now().Sub(*renewed) > d.opts.Lease*2/3:
			return err
		}
		select {
		case <-done:
			return nil
		case <-time.After(time.Second):
		}
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
			case !m.Wanted && m.VM == "" && rep.Exists != nil:
				delete(set.Members, id)
			case m.VM != "" || rep.Exists == nil:
				changed = true // still to delete, or not known to be gone
			}
			continue
		}
		if !tried[id] {
			continue // joined during the update: owed the next
		}
		if rep.Exists == nil {
			changed = true // the state could not be read: judge nothing
			continue
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
		if f.Kind == FailStockout && up {
			// Its VM is in this zone, and so may be its new work disk:
			// moving zones would replace the disk, and drop the old one
			// from the state (RetainOnDelete). Tried again here.
			f.Kind = FailTransient
		}
		switch f.Kind {
		case FailStockout:
			i := slices.Index(mb.Zones, mb.Spec.Zone)
			if w := mb.Spec.Work; w != nil && !w.New {
				m.Failed = fmt.Sprintf("%s has no GPU of this class's kind left right now, and your work is on a disk there, so the session cannot run elsewhere: your work is safe; start again in a while, as GPUs free up", mb.Spec.Zone)
				continue
			}
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
