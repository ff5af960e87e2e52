package gce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"

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
	// PublicURL is cohort's, the audience of the scheduler's tokens.
	PublicURL string
	// NotebookPort is where the session agent serves Jupyter; infra.NotebookPort.
	NotebookPort int
	// MaxRunMargin is added to a session's maximum lifetime for GCE's own
	// hard stop, so that it only acts when cohort could not; 30m if zero.
	MaxRunMargin time.Duration
}

// Driver runs each session as a GCE VM with a GPU, one stack per session.
type Driver struct {
	opts Options
	http *http.Client

	// One engine operation per session at a time: the reconciler may run
	// a session's start again while the first still creates the VM (it
	// looks absent until the update ends), and two updates of one stack
	// must never overlap. (In one process; several replicas need a lease.)
	mu       sync.Mutex
	sessions map[string]*sessionOps
}

type sessionOps struct {
	sync.Mutex
	starting bool
}

func (d *Driver) ops(id string) *sessionOps {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.sessions[id]
	if !ok {
		o = &sessionOps{}
		d.sessions[id] = o
	}
	return o
}

func (d *Driver) starting(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.sessions[id]
	return ok && o.starting
}

// New returns a Driver.
func New(opts Options) (*Driver, error) {
	if opts.Stacks == nil || opts.Project == "" {
		return nil, errors.New("gce driver: Stacks and Project are required")
	}
	if opts.ImageProject == "" {
		opts.ImageProject = opts.Project
	}
	if opts.NotebookPort == 0 {
		opts.NotebookPort = infra.NotebookPort
	}
	if opts.MaxRunMargin == 0 {
		opts.MaxRunMargin = 30 * time.Minute
	}
	if opts.NetworkTag == "" {
		opts.NetworkTag = "cohort-session"
	}
	return &Driver{opts: opts, http: &http.Client{Timeout: 5 * time.Second}, sessions: map[string]*sessionOps{}}, nil
}

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
		Network: o.Network, Subnetwork: o.Subnetwork, NetworkTag: o.NetworkTag, ServiceAccount: o.SessionAccount,
		NotebookToken: spec.Token, BasePath: spec.BasePath, PublicURL: o.PublicURL,
	}
	if o.SchedulerAccount != "" && o.PublicURL != "" {
		s.SchedulerRegion, s.SchedulerAccount, s.Audience = o.SchedulerRegion, o.SchedulerAccount, o.PublicURL
		s.ExpireURL = strings.TrimRight(o.PublicURL, "/") + "/v1/scheduler/sessions/" + spec.SessionID + "/expire"
		// A minute after the latest the session may live: cohort's own
		// sweep acts first; this call is the backstop.
		s.HardDeadline = now.Add(spec.MaxLifetime + time.Minute)
	}
	return s
}

// Start provisions the session's VM in the first of the class's zones that
// has capacity. An impossible request (quota, stockout everywhere) is a
// user-facing error naming what to do.
func (d *Driver) Start(ctx context.Context, spec cohort.NotebookSpec) error {
	o := d.ops(spec.SessionID)
	d.mu.Lock()
	if o.starting {
		d.mu.Unlock()
		return nil // a start of this session is under way
	}
	o.starting = true
	d.mu.Unlock()
	o.Lock()
	defer func() {
		o.Unlock()
		d.mu.Lock()
		o.starting = false
		d.mu.Unlock()
	}()
	_, _, err := d.opts.Stacks.Provision(ctx, d.SessionSpec(spec, time.Now()), spec.Runtime.Zones, spec.Progress)
	if err == nil && spec.Progress != nil {
		spec.Progress("the VM is up; waiting for it to boot and start Jupyter")
	}
	var pe *ProvisionError
	if errors.As(err, &pe) {
		return cohort.Errorf(cohort.EUNAVAILABLE, "%s", pe.Failure.Message)
	}
	return err
}

// Inspect reads the stack's outputs and asks the notebook at the VM's
// internal address whether it answers.
func (d *Driver) Inspect(ctx context.Context, spec cohort.NotebookSpec) (cohort.Instance, error) {
	if d.starting(spec.SessionID) {
		return cohort.Instance{State: cohort.InstanceStarting, Progress: "creating the VM"}, nil
	}
	out, ok, err := d.opts.Stacks.Outputs(ctx, spec.SessionID)
	if err != nil {
		return cohort.Instance{}, err
	}
	if !ok || out.InternalIP == "" {
		return cohort.Instance{State: cohort.InstanceAbsent}, nil
	}
	addr := fmt.Sprintf("http://%s:%d", out.InternalIP, d.opts.NotebookPort)
	if _, err := jupyter.GetStatus(ctx, d.http, addr, spec.BasePath, spec.Token); err != nil {
		return cohort.Instance{State: cohort.InstanceStarting, Address: addr, Progress: "booting the VM and starting Jupyter"}, nil
	}
	in := cohort.Instance{State: cohort.InstanceReady, Address: addr}
	if a, err := jupyter.GetActivity(ctx, d.http, addr, spec.BasePath, spec.Token); err == nil {
		in.KernelActivityKnown, in.LastKernelActivity, in.KernelBusy = true, a.LastActivity, a.Busy
	}
	return in, nil
}

// Stop destroys the session's VM, disk and scheduler job, after a start
// under way has ended.
func (d *Driver) Stop(ctx context.Context, sessionID string) error {
	o := d.ops(sessionID)
	o.Lock()
	defer o.Unlock()
	if err := d.opts.Stacks.Destroy(ctx, sessionID); err != nil {
		return err
	}
	d.mu.Lock()
	if !o.starting {
		delete(d.sessions, sessionID) // ended: forget it
	}
	d.mu.Unlock()
	return nil
}

// List returns the sessions that have a stack.
func (d *Driver) List(ctx context.Context) ([]string, error) {
	return d.opts.Stacks.List(ctx)
}

// Outputs returns a session stack's outputs; ok is false when it has none.
// A session has a stack only while its workspace directory exists (Up
// makes it, Destroy removes it), which spares a `pulumi stack ls` on every
// readiness poll.
func (s *Stacks) Outputs(ctx context.Context, sessionID string) (Outputs, bool, error) {
	if _, err := os.Stat(filepath.Join(s.opts.WorkRoot, sessionID)); errors.Is(err, os.ErrNotExist) {
		return Outputs{}, false, nil
	}
	st, err := s.stack(ctx, sessionID, infra.SessionSpec{})
	if err != nil {
		return Outputs{}, false, err
	}
	outs, err := st.Outputs(ctx)
	if err != nil {
		return Outputs{}, false, fmt.Errorf("outputs of %s: %w", sessionID, err)
	}
	str := func(k string) string { v, _ := outs[k].Value.(string); return v }
	o := Outputs{Instance: str("instance"), Zone: str("zone"), InternalIP: str("internalIP")}
	return o, o.Instance != "", nil
}

// List returns the session IDs that have stacks in the backend.
func (s *Stacks) List(ctx context.Context) ([]string, error) {
	dir := filepath.Join(s.opts.WorkRoot, ".list")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ws, err := auto.NewLocalWorkspace(ctx, auto.WorkDir(dir), auto.Pulumi(s.cli),
		auto.EnvVars(s.env()), auto.Project(workspace.Project{Name: project, Runtime: workspace.NewProjectRuntimeInfo("go", nil)}))
	if err != nil {
		return nil, fmt.Errorf("list stacks: %w", err)
	}
	stacks, err := ws.ListStacks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list stacks: %w", err)
	}
	ids := make([]string, 0, len(stacks))
	for _, st := range stacks {
		ids = append(ids, st.Name[strings.LastIndex(st.Name, "/")+1:]) // file backends may say org/project/stack
	}
	return ids, nil
}
