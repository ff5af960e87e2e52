package gce

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
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
// arrive while every shard of their class is busy open a new shard rather
// than queue, so a late participant waits for one update, not two.
//
// Membership is the desired state, kept in the shard's workspace
// (members.json, 0600: it holds notebook tokens) and written before each
// update, so that after a crash the next update still holds every member's
// VM and nothing else. All fields are guarded by Driver.mu.
type shard struct {
	name, class string
	members     map[string]*member
	// exists is what the state held after the last update; nil until read.
	exists map[string]Outputs
	// running: a goroutine gathers and updates (run). busy: an update is
	// in flight. dirty: members changed since it began.
	running, busy, dirty bool
	// next is the round the next update will settle.
	next     *round
	progress map[string]func(string)
}

// member is a session in a shard.
type member struct {
	Spec infra.SessionSpec `json:"spec"`
	// Zones are the class's zones in order; Spec.Zone is the one tried now.
	Zones []string `json:"zones"`
	// Tries counts transient failures in a row.
	Tries int `json:"tries"`
}

// round is one update of a shard; done is closed when it is settled.
type round struct {
	done   chan struct{}
	err    error
	failed map[string]error // members given up on, with the user-facing error
	// then is the round after this one, set when this one begins: a
	// member retried here is in it.
	then *round
}

func newRound() *round { return &round{done: make(chan struct{}), failed: map[string]error{}} }

// maxTries bounds transient failures of one session's create.
const maxTries = 3

const membersFile = "members.json"

var stackUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

type membersDoc struct {
	Class   string             `json:"class"`
	Members map[string]*member `json:"members"`
}

func (d *Driver) newShard(name, class string) *shard {
	sh := &shard{name: name, class: class, members: map[string]*member{}, next: newRound(), progress: map[string]func(string){}}
	d.shards[name] = sh
	return sh
}

// load reads the shards' members once, after a start or a crash. d.mu is held.
func (d *Driver) load() error {
	if d.loaded {
		return nil
	}
	files, err := filepath.Glob(filepath.Join(d.opts.Stacks.WorkDir("*"), membersFile))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var doc membersDoc
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		sh := d.newShard(filepath.Base(filepath.Dir(f)), doc.Class)
		if doc.Members != nil {
			sh.members = doc.Members
		}
		if len(sh.members) == 0 {
			sh.dirty = true // emptied before a crash: make sure, then remove
			d.kick(sh)
		}
	}
	d.loaded = true
	return nil
}

// persist writes a shard's members. d.mu is held.
func (d *Driver) persist(sh *shard) error {
	dir := d.opts.Stacks.WorkDir(sh.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(membersDoc{Class: sh.class, Members: sh.members})
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, membersFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, membersFile))
}

// find returns the shard a session is a member of or has a VM in (as far
// as known), and its membership. d.mu is held.
func (d *Driver) find(sessionID string) (*shard, *member) {
	for _, sh := range d.shards {
		if m, ok := sh.members[sessionID]; ok {
			return sh, m
		}
	}
	for _, sh := range d.shards {
		if _, ok := sh.exists[sessionID]; ok {
			return sh, nil
		}
	}
	return nil, nil
}

// place picks the shard a new session of a class joins: one that is not
// updating (maybe gathering) and has room, else a new one. d.mu is held.
func (d *Driver) place(class string) *shard {
	for _, name := range slices.Sorted(maps.Keys(d.shards)) {
		sh := d.shards[name]
		if sh.class == class && !sh.busy && len(sh.members) < d.opts.SeatsPerShard {
			return sh
		}
	}
	prefix := stackUnsafe.ReplaceAllString(class, "-")
	if prefix == "" {
		prefix = "class"
	}
	return d.newShard(prefix+"-"+strings.ToLower(rand.Text()[:6]), class)
}

// kick makes sure an update goroutine runs for the shard and returns the
// round that will include the changes made so far. d.mu is held.
func (d *Driver) kick(sh *shard) *round {
	if !sh.running {
		sh.running = true
		d.runs.Go(func() { d.run(sh) })
	}
	return sh.next
}

// exists returns what a shard's state holds, reading it once.
func (d *Driver) exists(ctx context.Context, sh *shard) (map[string]Outputs, error) {
	d.mu.Lock()
	known := sh.exists
	d.mu.Unlock()
	if known != nil {
		return known, nil
	}
	read, err := d.opts.Stacks.State(ctx, sh.name)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if sh.exists == nil {
		sh.exists = read
	}
	return sh.exists, nil
}

// run updates a shard until its members stop changing, then removes it
// if it is empty.
func (d *Driver) run(sh *shard) {
	ctx := context.Background()
	wait := d.opts.Gather
	for {
		time.Sleep(wait)
		d.mu.Lock()
		empty := len(sh.members) == 0 && len(sh.exists) == 0
		if !sh.dirty || empty && sh.exists != nil {
			sh.running = false
			if empty {
				delete(d.shards, sh.name)
				close(sh.next.done) // nothing left to do for whoever waits
				sh.next = newRound()
			}
			d.mu.Unlock()
			if empty {
				if err := d.opts.Stacks.Remove(ctx, sh.name); err != nil {
					slog.Error("remove an empty shard", "stack", sh.name, "error", err)
				}
			}
			return
		}
		sh.dirty, sh.busy = false, true
		r := sh.next
		sh.next = newRound()
		r.then = sh.next
		specs := make([]infra.SessionSpec, 0, len(sh.members))
		for _, id := range slices.Sorted(maps.Keys(sh.members)) {
			specs = append(specs, sh.members[id].Spec)
		}
		progress := maps.Clone(sh.progress)
		err := d.persist(sh)
		d.mu.Unlock()

		var rep Report
		if err == nil {
			rep, err = d.opts.Stacks.Update(ctx, sh.name, specs, func(id, msg string) {
				if p := progress[id]; p != nil {
					p(msg)
				}
			})
		}
		d.mu.Lock()
		sh.busy = false
		if rep.Exists != nil {
			sh.exists = rep.Exists
		}
		r.err = err
		notes, backoff := d.settle(sh, r, specs, rep, err)
		close(r.done)
		d.mu.Unlock()
		for id, msg := range notes {
			if p := progress[id]; p != nil {
				p(msg)
			}
		}
		wait = backoff
	}
}

// settle decides, after an update, what becomes of each session it
// included: up; retried in another zone (stockout) or the same one
// (transient, up to maxTries); or given up on with a message for the
// participant (quota, anything else). Whatever a given-up session left is
// deleted by the next update. It returns progress notes by session and how
// long to wait before the next update. d.mu is held.
func (d *Driver) settle(sh *shard, r *round, specs []infra.SessionSpec, rep Report, updateErr error) (map[string]string, time.Duration) {
	notes := map[string]string{}
	var backoff time.Duration
	changed := false
	giveUp := func(id, msg string) {
		delete(sh.members, id)
		delete(sh.progress, id)
		r.failed[id] = cohort.Errorf(cohort.EUNAVAILABLE, "%s", msg)
		if _, ok := sh.exists[id]; ok {
			sh.dirty = true
		}
		changed = true
	}
	for _, spec := range specs {
		id := spec.SessionID
		m := sh.members[id]
		if m == nil {
			continue // stopped during the update
		}
		_, up := rep.Exists[id]
		cause := rep.Failed[id]
		if up && cause == nil {
			if m.Tries > 0 {
				m.Tries, changed = 0, true
			}
			continue
		}
		if cause == nil {
			cause = updateErr
		}
		if cause == nil {
			cause = errors.New("the update ended before the VM was created")
		}
		f := Classify(cause)
		switch f.Kind {
		case FailStockout:
			i := slices.Index(m.Zones, m.Spec.Zone)
			if i < 0 || i+1 >= len(m.Zones) {
				giveUp(id, fmt.Sprintf("no zone of %s had capacity; add zones to the class or try again later", strings.Join(m.Zones, ", ")))
				continue
			}
			notes[id] = fmt.Sprintf("%s: %s; trying %s", m.Spec.Zone, f.Message, m.Zones[i+1])
			m.Spec.Zone, m.Tries = m.Zones[i+1], 0
		case FailTransient:
			if m.Tries++; m.Tries > maxTries {
				giveUp(id, f.Message+" "+fmt.Sprint(maxTries)+" times; try again later")
				continue
			}
			backoff = max(backoff, time.Duration(1<<(m.Tries-1))*time.Second)
		default:
			giveUp(id, f.Message)
			continue
		}
		sh.dirty, changed = true, true
	}
	if len(sh.members) == 0 {
		sh.dirty = true // to remove the shard
	}
	if changed {
		if err := d.persist(sh); err != nil && r.err == nil {
			r.err = err
		}
	}
	return notes, backoff
}
