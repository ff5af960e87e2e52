package gce

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
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
	NotebookPort int
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
}

// Driver runs each session as a GCE VM with a GPU. Sessions are members
// of shards: stacks of one class holding up to SeatsPerShard sessions,
// updated as a batch (shards.go).
type Driver struct {
	opts Options
	http *http.Client

	mu     sync.Mutex
	loaded bool
	shards map[string]*shard // by stack name
	runs   sync.WaitGroup    // shards' update goroutines
}

// New returns a Driver.
func New(opts Options) (*Driver, error) {
	if opts.Stacks == nil || opts.Project == "" {
		return nil, errors.New("gce driver: Stacks and Project are required")
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
	return &Driver{opts: opts, http: jupyter.NewClient(5 * time.Second), shards: map[string]*shard{}}, nil
}

// Wait returns when no shard has an update or a removal under way.
func (d *Driver) Wait() { d.runs.Wait() }

// Name returns "gce".
func (d *Driver) Name() string { return "gce" }

// FilesNote says what happens to a GCE session's files.
func (d *Driver) FilesNote() string {
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

// Start provisions the session's VM in the first of the class's zones that
// has capacity, as a member of one of its class's shards, and returns when
// the VM exists. An impossible request (quota, stockout everywhere) is a
// user-facing error naming what to do.
func (d *Driver) Start(ctx context.Context, spec cohort.NotebookSpec) error {
	if len(spec.Runtime.Zones) == 0 {
		return cohort.Errorf(cohort.EINVALID, "the class has no zones")
	}
	is := d.SessionSpec(spec, time.Now())
	is.Zone = spec.Runtime.Zones[0]
	if err := is.Check(); err != nil {
		return cohort.Errorf(cohort.EINVALID, "%v", err)
	}
	if _, err := d.List(ctx); err != nil { // every shard's state is known
		return err
	}
	d.mu.Lock()
	sh, m := d.find(spec.SessionID)
	if m != nil {
		if _, up := sh.exists[spec.SessionID]; up {
			d.mu.Unlock()
			return nil
		}
	} else {
		sh = d.place(spec.ClassID)
		sh.members[spec.SessionID] = &member{Spec: is, Zones: spec.Runtime.Zones}
	}
	if spec.Progress != nil {
		sh.progress[spec.SessionID] = spec.Progress
	}
	sh.dirty = true
	r := d.kick(sh)
	d.mu.Unlock()
	for {
		select {
		case <-r.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		d.mu.Lock()
		_, up := sh.exists[spec.SessionID]
		failed, member := r.failed[spec.SessionID], sh.members[spec.SessionID] != nil
		r = r.then
		d.mu.Unlock()
		switch {
		case failed != nil:
			return failed
		case up && member:
			if spec.Progress != nil {
				spec.Progress("the VM is up; waiting for it to boot and start Jupyter")
			}
			return nil
		case !member:
			return nil // stopped while it started
		}
		// Retried in the next update (another zone, a transient error).
	}
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
	if _, err := d.List(ctx); err != nil { // every shard's members are known
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	sh, m := d.find(sessionID)
	at := deadline.Add(time.Minute).Truncate(time.Minute)
	if m == nil || m.Spec.ExpireURL == "" || !at.After(m.Spec.HardDeadline) {
		return nil
	}
	m.Spec.HardDeadline = at
	if err := d.persist(sh); err != nil {
		return err
	}
	sh.dirty = true
	d.kick(sh)
	return nil
}

// Inspect says whether the session's VM is being created, and once it
// exists, asks the notebook at its internal address whether it answers.
func (d *Driver) Inspect(ctx context.Context, spec cohort.NotebookSpec) (cohort.Instance, error) {
	d.mu.Lock()
	if err := d.load(); err != nil {
		d.mu.Unlock()
		return cohort.Instance{}, err
	}
	sh, m := d.find(spec.SessionID)
	if sh == nil {
		d.mu.Unlock()
		return cohort.Instance{State: cohort.InstanceAbsent}, nil
	}
	if _, ok := sh.exists[spec.SessionID]; !ok && m != nil && (sh.running || sh.dirty) {
		d.mu.Unlock()
		return cohort.Instance{State: cohort.InstanceStarting, Progress: "creating the VM"}, nil
	}
	d.mu.Unlock()
	exists, err := d.exists(ctx, sh)
	if err != nil {
		return cohort.Instance{}, err
	}
	out, ok := exists[spec.SessionID]
	if !ok || out.InternalIP == "" {
		return cohort.Instance{State: cohort.InstanceAbsent}, nil
	}
	addr := fmt.Sprintf("http://%s:%d", out.InternalIP, d.opts.NotebookPort)
	if _, err := jupyter.GetStatus(ctx, d.http, addr, spec.BasePath, spec.Token); err != nil {
		in := d.opts.Compute.notAnswering(ctx, d.opts.Project, out)
		in.Address = addr
		return in, nil
	}
	in := cohort.Instance{State: cohort.InstanceReady, Address: addr}
	if a, err := jupyter.GetActivity(ctx, d.http, addr, spec.BasePath, spec.Token); err == nil {
		in.KernelActivityKnown, in.LastKernelActivity, in.KernelBusy = true, a.LastActivity, a.Busy
	}
	return in, nil
}

// Stop removes the session from its shard and returns once an update has
// deleted its VM, disk and scheduler job. A session whose VM is being
// created is deleted by the update after that one.
func (d *Driver) Stop(ctx context.Context, sessionID string) error {
	if _, err := d.List(ctx); err != nil { // every shard's state is known
		return err
	}
	d.mu.Lock()
	sh, m := d.find(sessionID)
	if sh == nil {
		d.mu.Unlock()
		return nil
	}
	delete(sh.members, sessionID)
	delete(sh.progress, sessionID)
	_, exists := sh.exists[sessionID]
	creating := m != nil && sh.busy // the update in flight may be making it
	if !exists && !creating && len(sh.members) > 0 {
		err := d.persist(sh)
		d.mu.Unlock()
		return err // nothing of it was made
	}
	sh.dirty = true
	r := d.kick(sh) // an empty shard is removed after its update
	d.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := sh.exists[sessionID]; ok {
		return errors.Join(fmt.Errorf("stop %s: its VM still exists after an update of %s", sessionID, sh.name), r.err)
	}
	return nil
}

// List returns the sessions that are members of a shard or have a VM.
func (d *Driver) List(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	if err := d.load(); err != nil {
		d.mu.Unlock()
		return nil, err
	}
	shards := make([]*shard, 0, len(d.shards))
	for _, sh := range d.shards {
		shards = append(shards, sh)
	}
	d.mu.Unlock()
	seen := map[string]bool{}
	for _, sh := range shards {
		exists, err := d.exists(ctx, sh)
		if err != nil {
			return nil, err
		}
		d.mu.Lock()
		for id := range sh.members {
			seen[id] = true
		}
		d.mu.Unlock()
		for id := range exists {
			seen[id] = true
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}
