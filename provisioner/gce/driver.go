package gce

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/infra"
	"github.com/cohortdev/cohort/jupyter"
)

var _ cohort.Driver = (*Driver)(nil)

// Options configure a Driver: where sessions run and as whom.
type Options struct {
	Stacks *Stacks
	// Project holds the VMs; ImageProject the image families (often the same).
	Project, ImageProject string
	Network, Subnetwork   string
	// NetworkTag is what the firewall admitting the control plane targets.
	NetworkTag string
	// SessionAccount runs the VMs; SchedulerAccount signs Cloud Scheduler's
	// calls to cohort at SchedulerRegion.
	SessionAccount, SchedulerAccount, SchedulerRegion string
	// PublicURL is cohort's, which the scheduler's jobs call;
	// SchedulerAudience is the audience of their tokens (the same value
	// cohort's verifier expects: both come from one setting).
	PublicURL, SchedulerAudience string
	// NotebookPort is where the session agent serves Jupyter; infra.NotebookPort.
	// AgentPort is where the agent itself listens; infra.AgentPort.
	NotebookPort, AgentPort int
	// Materials opens the versions of classes' materials the agents merge
	// into participants' work disks (nil: none are delivered).
	Materials MaterialsOpener
	// MaxRunMargin is added to a session's maximum lifetime for GCE's own
	// hard stop, so that it only acts when cohort could not;
	// cohort.HardStopMargin if zero.
	MaxRunMargin time.Duration
	// SeatsPerShard is how many sessions one stack holds at most; 25 if
	// zero. Gather is how long a shard waits for more sessions before its
	// update begins; 500ms if zero.
	SeatsPerShard int
	Gather        time.Duration
	// Compute, if set, says what became of a VM whose notebook does not
	// answer: its boot progress, a failed boot, a stop by GCE.
	Compute *Compute
	// Shards keeps the shards and their members, for every replica.
	Shards cohort.ShardStore
	// Enqueue queues an update of a shard after a while; the job calls
	// UpdateShard (package jobs).
	Enqueue func(ctx context.Context, class, shard string, after time.Duration) error
	// Lease is how long a replica's hold on a shard lasts unrenewed; 30s
	// if zero. Poll is how often Stop looks whether its VM is gone; 250ms
	// if zero.
	Lease, Poll time.Duration
	// Progress, if set, hears each step of a session's start, on whatever
	// replica runs its shard's update ("creating the VM in us-central1-b").
	Progress func(ctx context.Context, sessionID, message string)
	// WorkGB is the size of a participant's new work disk (infra/work.go);
	// 10 if zero, and no work disks if negative. Work disks need Compute.
	WorkGB int
	// Now is the clock (time.Now if nil); Logger the log (none if nil).
	Now    func() time.Time
	Logger *slog.Logger
}

// Driver runs each session as a GCE VM with a GPU. Sessions are members
// of shards: stacks of one class holding up to SeatsPerShard sessions,
// updated as a batch (shards.go).
type Driver struct {
	opts Options
	http *http.Client
	// agent calls the VMs' agents: downloads have no time limit but
	// their request's.
	agent *http.Client
	log   *slog.Logger
	now   func() time.Time
	// kept holds each class's work disks a while (KeptWork).
	kept sync.Map
	// id names this driver in the shards' leases: host/pid/random; runs
	// counts its updates, each of which holds a lease of its own.
	id   string
	runs atomic.Int64
}

// New returns a Driver.
func New(opts Options) (*Driver, error) {
	if opts.Stacks == nil || opts.Project == "" || opts.Shards == nil {
		return nil, errors.New("gce driver: Stacks, Shards and Project are required")
	}
	if opts.Network == "" && opts.Subnetwork == "" {
		// GCE needs one; the project's default network would let session
		// VMs reach each other (default-allow-internal).
		return nil, errors.New("gce driver: a subnetwork (or network) for session VMs is required: --gce-subnetwork, from the foundation's outputs (docs/gcp.md)")
	}
	if opts.ImageProject == "" {
		opts.ImageProject = opts.Project
	}
	if opts.NotebookPort == 0 {
		opts.NotebookPort = infra.NotebookPort
	}
	if opts.AgentPort == 0 {
		opts.AgentPort = infra.AgentPort
	}
	if opts.MaxRunMargin == 0 {
		opts.MaxRunMargin = cohort.HardStopMargin
	}
	if opts.NetworkTag == "" {
		opts.NetworkTag = "cohort-session"
	}
	if opts.SeatsPerShard == 0 {
		opts.SeatsPerShard = 25
	}
	if opts.Gather == 0 {
		opts.Gather = 500 * time.Millisecond
	}
	if opts.Lease == 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Poll == 0 {
		opts.Poll = 250 * time.Millisecond
	}
	switch {
	case opts.WorkGB == 0:
		opts.WorkGB = infra.MinWorkGB
	case opts.WorkGB > 0 && (opts.WorkGB < infra.MinWorkGB || opts.WorkGB > infra.MaxWorkGB):
		return nil, fmt.Errorf("gce driver: a work disk of %d GB is outside %d-%d GB", opts.WorkGB, infra.MinWorkGB, infra.MaxWorkGB)
	}
	d := &Driver{opts: opts, http: jupyter.NewClient(5 * time.Second), agent: agentClient(), log: opts.Logger, now: opts.Now}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	host, _ := os.Hostname()
	d.id = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), strings.ToLower(rand.Text()[:8]))
	return d, nil
}

// Name returns "gce".
func (d *Driver) Name() string { return "gce" }

// FilesNote says what happens to a GCE session's files.
func (d *Driver) FilesNote() string {
	if d.keepsWork() {
		return "Your work folder is on a disk of your own, kept between your sessions of this class; everything outside it goes with the session's VM."
	}
	return "The session's VM and its disk are deleted when it ends: download what you want to keep."
}

var nameUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// InstanceName is a session's VM name: lower case, digits and dashes.
func InstanceName(sessionID string) string {
	return "cohort-" + nameUnsafe.ReplaceAllString(strings.ToLower(sessionID), "-")
}

// SessionSpec builds the program's spec for a session.
func (d *Driver) SessionSpec(spec cohort.NotebookSpec, now time.Time) infra.SessionSpec {
	o := d.opts
	s := infra.SessionSpec{
		Project: o.Project, Name: InstanceName(spec.SessionID), SessionID: spec.SessionID, ClassID: spec.ClassID, Owner: spec.UserEmail,
		MachineType: spec.Runtime.MachineType, GPUType: spec.Runtime.GPUType, GPUCount: spec.Runtime.GPUCount,
		Image:  fmt.Sprintf("projects/%s/global/images/family/%s", o.ImageProject, spec.Runtime.Image),
		DiskGB: spec.Runtime.DiskGB, Spot: spec.Runtime.Spot, MaxRunDuration: spec.MaxLifetime + o.MaxRunMargin,
		Network: o.Network, Subnetwork: o.Subnetwork, NetworkTag: o.NetworkTag, NoEgress: spec.Runtime.NoEgress, ServiceAccount: o.SessionAccount,
		NotebookToken: spec.Token, BasePath: spec.BasePath, PublicURL: o.PublicURL,
	}
	if o.SchedulerAccount != "" && o.PublicURL != "" {
		s.SchedulerRegion, s.SchedulerAccount, s.Audience = o.SchedulerRegion, o.SchedulerAccount, cmp.Or(o.SchedulerAudience, o.PublicURL)
		s.ExpireURL = strings.TrimRight(o.PublicURL, "/") + "/v1/scheduler/sessions/" + spec.SessionID + "/expire"
		// A minute after the latest the session may live: cohort's own
		// sweep acts first; this call is the backstop. An extension moves
		// it (Reschedule).
		deadline := spec.Deadline
		if deadline.IsZero() {
			deadline = now.Add(spec.MaxLifetime)
		}
		s.HardDeadline = deadline.Add(time.Minute).Truncate(time.Minute)
	}
	return s
}

// Start makes the session a member of one of its class's shards and
// queues the shard's update; it returns once that is recorded. Inspect
// then says how the VM comes up, or why it could not (quota, stockout
// everywhere: a message naming what to do).
func (d *Driver) Start(ctx context.Context, spec cohort.NotebookSpec) error {
	if len(spec.Runtime.Zones) == 0 {
		return cohort.Errorf(cohort.EINVALID, "the class has no zones")
	}
	is := d.SessionSpec(spec, d.now())
	work, zones, err := d.work(ctx, spec, spec.Runtime.Zones)
	if err != nil {
		return err
	}
	is.Work, is.Zone = work, zones[0]
	if err := is.Check(); err != nil {
		if work != nil && !work.New {
			return cohort.Errorf(cohort.EINVALID, "your work is on a disk in %s, where this class's runtime cannot run (%v): ask the instructor", is.Zone, err)
		}
		return cohort.Errorf(cohort.EINVALID, "%v", err)
	}
	var due string
	err = d.opts.Shards.EditShards(ctx, spec.ClassID, func(set *cohort.ShardSet) error {
		due = ""
		m := set.Members[spec.SessionID]
		if m != nil && m.Wanted && m.Failed == "" {
			return nil // joined already
		}
		if m == nil {
			sh := d.place(set, d.now())
			m = &cohort.ShardMember{SessionID: spec.SessionID, Shard: sh.Name, ClassID: spec.ClassID}
			set.Members[spec.SessionID] = m
		}
		m.Wanted, m.Failed, m.Note = true, "", ""
		writeMember(m, member{Spec: is, Zones: zones, UserID: spec.UserID, Materials: d.version(spec.Materials, work)})
		if owe(set.Shards[m.Shard]) {
			due = m.Shard
		}
		return nil
	})
	if err != nil || due == "" {
		return err
	}
	if err := d.queue(ctx, spec.ClassID, due, d.opts.Gather); err != nil {
		// Recorded: the resync queues the update the shard is owed.
		d.log.Warn("queue a shard update; the resync will", "shard", due, "error", err)
	}
	return nil
}

// CheckRuntime refuses a class whose image family does not exist or
// whose disk is smaller than the image: GCE would refuse every seat.
func (d *Driver) CheckRuntime(ctx context.Context, r cohort.Runtime) error {
	if d.opts.Compute == nil {
		return nil
	}
	size, found, err := d.opts.Compute.ImageSize(ctx, d.opts.ImageProject, r.Image)
	switch {
	case err != nil:
		return cohort.Errorf(cohort.EUNAVAILABLE, "cohort could not read the image family %q of project %s from the Compute Engine API: %v", r.Image, d.opts.ImageProject, err)
	case !found:
		return cohort.Invalid("runtime.image", "the image family %q does not exist in project %s: build it first (docs/gcp.md, \"The notebook image\")", r.Image, d.opts.ImageProject)
	case r.DiskGB < size:
		return cohort.Invalid("runtime.disk_gb", "disk_gb (%d) is smaller than the image %q (%d GB): use at least %d", r.DiskGB, r.Image, size, size)
	}
	return nil
}

// Reschedule moves a session's Cloud Scheduler job to a minute after a
// later hard deadline, so that the backstop never fires before cohort's
// deadline (it would find nothing to do, and a pinned schedule would not
// fire again for a year). An earlier deadline leaves the job: cohort's
// sweep acts first and the job finds nothing to do. It returns once the
// change is recorded; the shard's next update applies it.
func (d *Driver) Reschedule(ctx context.Context, sessionID string, deadline time.Time) error {
	return d.editMember(ctx, sessionID, func(mb *member) bool { return later(&mb.Spec, deadline) })
}

// later moves a spec's backstop to a minute after deadline, if that is
// later; it says whether it did.
func later(s *infra.SessionSpec, deadline time.Time) bool {
	at := deadline.Add(time.Minute).Truncate(time.Minute)
	if s.ExpireURL == "" || !at.After(s.HardDeadline) {
		return false
	}
	s.HardDeadline = at
	return true
}

// Claimed records a warm seat's new owner and notebook token in its VM's
// labels and metadata (in place: neither replaces the VM, unlike its
// maximum run duration, which stays), and moves its backstop to the
// participant's deadline. The shard's next update applies it; until then
// the VM carries the pool's labels and, should its agent restart
// Jupyter, the old token (cohort would then see the seat not answer).
//
// The participant's work disk is attached to the running VM (created in
// its zone if they have none; ClaimFilter kept them off seats in other
// zones), where the agent mounts it.
func (d *Driver) Claimed(ctx context.Context, spec cohort.NotebookSpec) error {
	work, zones, err := d.work(ctx, spec, nil)
	if err != nil {
		return err
	}
	var elsewhere error
	err = d.editMember(ctx, spec.SessionID, func(mb *member) bool {
		if work != nil && !work.New && mb.Spec.Zone != zones[0] {
			elsewhere = cohort.Errorf(cohort.ECONFLICT, "the seat runs in %s and the participant's work disk is in %s", mb.Spec.Zone, zones[0])
			return false
		}
		later(&mb.Spec, spec.Deadline)
		mb.Spec.Owner, mb.Spec.NotebookToken, mb.Spec.Work = spec.UserEmail, spec.Token, work
		mb.UserID, mb.Materials = spec.UserID, d.version(spec.Materials, work)
		return true
	})
	return cmp.Or(err, elsewhere)
}

// editMember changes a wanted member with edit, and queues the update
// its shard then owes, if edit says it changed it.
func (d *Driver) editMember(ctx context.Context, sessionID string, edit func(*member) bool) error {
	m, err := d.opts.Shards.ShardMember(ctx, sessionID)
	if cohort.ErrorCode(err) == cohort.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	var due string
	err = d.opts.Shards.EditShards(ctx, m.ClassID, func(set *cohort.ShardSet) error {
		due = ""
		m := set.Members[sessionID]
		if m == nil || !m.Wanted {
			return nil
		}
		mb, err := readMember(m)
		if err != nil || !edit(&mb) {
			return err
		}
		writeMember(m, mb)
		if owe(set.Shards[m.Shard]) {
			due = m.Shard
		}
		return nil
	})
	if err != nil || due == "" {
		return err
	}
	return d.queue(ctx, m.ClassID, due, 0)
}

// Inspect says whether the session's VM is being created, and once it
// exists, asks the notebook at its internal address whether it answers.
func (d *Driver) Inspect(ctx context.Context, spec cohort.NotebookSpec) (cohort.Instance, error) {
	m, err := d.opts.Shards.ShardMember(ctx, spec.SessionID)
	if cohort.ErrorCode(err) == cohort.ENOTFOUND {
		return cohort.Instance{State: cohort.InstanceAbsent}, nil
	}
	if err != nil {
		return cohort.Instance{}, err
	}
	out, up := readVM(m)
	switch {
	case m.Failed != "":
		return cohort.Instance{State: cohort.InstanceExited, Reason: m.Failed}, nil
	case !m.Wanted:
		return cohort.Instance{State: cohort.InstanceStarting, Progress: "deleting the VM"}, nil
	case !up:
		return cohort.Instance{State: cohort.InstanceStarting, Progress: "waiting for the VM to be created"}, nil
	case out.InternalIP == "":
		return cohort.Instance{State: cohort.InstanceStarting, Progress: "the VM has no address yet"}, nil
	}
	addr := fmt.Sprintf("http://%s:%d", out.InternalIP, d.opts.NotebookPort)
	if _, err := jupyter.GetStatus(ctx, d.http, addr, spec.BasePath, spec.Token); err != nil {
		in := d.opts.Compute.notAnswering(ctx, d.opts.Project, out)
		in.Address = addr
		return in, nil
	}
	// Into the work disk once it is attached (a claimed warm seat's comes
	// after its VM); its agent waits for the mount.
	if mb, err := readMember(m); err == nil && mb.Materials != "" && mb.Delivered != mb.Materials && out.Work {
		ctx, cancel := context.WithTimeout(ctx, deliverTimeout)
		err := d.deliver(ctx, m, mb, out.InternalIP, spec.Token)
		cancel()
		if err != nil {
			return cohort.Instance{State: cohort.InstanceStarting, Address: addr, Progress: "delivering the class's materials: " + err.Error()}, nil
		}
	}
	in := cohort.Instance{State: cohort.InstanceReady, Address: addr}
	if a, err := jupyter.GetActivity(ctx, d.http, addr, spec.BasePath, spec.Token); err == nil {
		in.KernelActivityKnown, in.LastKernelActivity, in.KernelBusy = true, a.LastActivity, a.Busy
	}
	return in, nil
}

// Stop takes the session out of its shard and returns once its VM, disk
// and scheduler job are gone: at once if nothing of them was made,
// otherwise after an update (on any replica) has deleted them.
func (d *Driver) Stop(ctx context.Context, sessionID string) error {
	m, err := d.opts.Shards.ShardMember(ctx, sessionID)
	if cohort.ErrorCode(err) == cohort.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	if m.Wanted {
		d.keepCopy(ctx, m)
	}
	var due string
	var wait bool
	var stopGen int64
	err = d.opts.Shards.EditShards(ctx, m.ClassID, func(set *cohort.ShardSet) error {
		due, wait = "", false
		m := set.Members[sessionID]
		if m == nil {
			return nil
		}
		sh := set.Shards[m.Shard]
		// Nothing was made if nothing exists and no update may be making
		// it: it failed, or no replica updates the shard now (an update
		// that died is owed another, which deletes what it left).
		if m.VM == "" && (m.Failed != "" || !sh.Leased(d.now())) {
			delete(set.Members, sessionID)
			if len(membersOf(set, sh.Name)) > 0 {
				return nil
			}
		} else {
			m.Wanted, wait = false, true
		}
		if owe(sh) {
			due = sh.Name
		}
		stopGen = sh.Generation
		return nil
	})
	if err != nil {
		return err
	}
	if due != "" {
		if err := d.queue(ctx, m.ClassID, due, 0); err != nil {
			return err
		}
	}
	if !wait {
		return nil // nothing was made
	}
	for {
		left, err := d.opts.Shards.ShardMember(ctx, sessionID)
		switch {
		case cohort.ErrorCode(err) == cohort.ENOTFOUND:
			return nil
		case err != nil:
			return err
		case left.Wanted:
			return nil // started again meanwhile
		}
		// Updates that could not delete it (the cloud failed, the state
		// could not be read) leave the shard owed another, which tries
		// again; one that settles with nothing owed and the VM still there
		// means the stop was lost.
		// (The member is read again after the shard: the first read may
		// predate the update that removed it.)
		if sh, err := d.opts.Shards.GetShard(ctx, left.Shard); err == nil && sh.Settled >= stopGen && sh.Generation == sh.Settled && !sh.Leased(d.now()) {
			if again, err := d.opts.Shards.ShardMember(ctx, sessionID); err == nil && !again.Wanted && again.VM != "" {
				return fmt.Errorf("stop %s: its VM still exists after an update of %s, and no update is owed", sessionID, left.Shard)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d.opts.Poll):
		}
	}
}

// List returns the sessions that are members of a shard or have a VM.
func (d *Driver) List(ctx context.Context) ([]string, error) {
	members, err := d.opts.Shards.ListShardMembers(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.SessionID
	}
	return ids, nil
}

// OwedShards returns the shards owed an update that no replica runs: the
// resync queues them, so that an update a dead replica left is finished.
func (d *Driver) OwedShards(ctx context.Context) ([]cohort.Shard, error) {
	shards, err := d.opts.Shards.ListShards(ctx)
	if err != nil {
		return nil, err
	}
	var owed []cohort.Shard
	for _, sh := range shards {
		if !sh.Leased(d.now()) && (sh.Generation > sh.Settled || sh.Members == 0) {
			owed = append(owed, *sh)
		}
	}
	return owed, nil
}
