package gce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"

	"github.com/cohortdev/cohort/infra"
)

// project is the Pulumi project of session stacks.
const project = "cohort-sessions"

// StackOptions configure Stacks.
type StackOptions struct {
	// WorkRoot holds one workspace directory per stack: two operations in
	// one workspace race on its files (pulumi/pulumi#8186, #7782).
	WorkRoot string
	// StateURL is the backend: file:///dir locally, gs://bucket in production.
	StateURL string
	// Passphrase encrypts the stacks' secrets (the notebook token).
	Passphrase string
	// PulumiRoot is where bin/pulumi is; empty for the installed CLI.
	PulumiRoot string
	// Env is added to the engine's environment (tests attach the fake
	// provider with PULUMI_DEBUG_PROVIDERS).
	Env map[string]string
}

// Stacks runs session programs, one stack per session.
type Stacks struct {
	opts StackOptions
	cli  auto.PulumiCommand
}

// NewStacks checks the options and finds the Pulumi CLI.
func NewStacks(opts StackOptions) (*Stacks, error) {
	if opts.WorkRoot == "" || opts.StateURL == "" || opts.Passphrase == "" {
		return nil, errors.New("gce stacks: WorkRoot, StateURL and Passphrase are required")
	}
	if err := os.MkdirAll(opts.WorkRoot, 0o700); err != nil {
		return nil, err
	}
	if dir, ok := strings.CutPrefix(opts.StateURL, "file://"); ok {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	cli, err := newCommand(opts.PulumiRoot)
	if err != nil {
		return nil, fmt.Errorf("find the pulumi CLI (make pulumi builds one into bin/): %w", err)
	}
	return &Stacks{opts: opts, cli: cli}, nil
}

func (s *Stacks) env() map[string]string {
	env := map[string]string{
		"PULUMI_BACKEND_URL":                          s.opts.StateURL,
		"PULUMI_CONFIG_PASSPHRASE":                    s.opts.Passphrase,
		"PULUMI_SKIP_UPDATE_CHECK":                    "true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
	}
	for k, v := range s.opts.Env {
		env[k] = v
	}
	return env
}

// WorkDir is the workspace directory of a session's stack.
func (s *Stacks) WorkDir(sessionID string) string { return filepath.Join(s.opts.WorkRoot, sessionID) }

func (s *Stacks) stack(ctx context.Context, sessionID string, prog infra.SessionSpec) (auto.Stack, error) {
	dir := s.WorkDir(sessionID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return auto.Stack{}, err
	}
	return auto.UpsertStackInlineSource(ctx, sessionID, project, infra.SessionProgram(prog),
		auto.WorkDir(dir), auto.Pulumi(s.cli), auto.EnvVars(s.env()), auto.SecretsProvider("passphrase"),
		auto.Project(workspace.Project{Name: project, Runtime: workspace.NewProjectRuntimeInfo("go", nil)}))
}

// Outputs are what a session's stack reports.
type Outputs struct {
	Instance, Zone, InternalIP string
}

// Up creates or updates a session's resources, telling progress (may be
// nil) what the engine is doing.
func (s *Stacks) Up(ctx context.Context, spec infra.SessionSpec, progress func(string)) (Outputs, error) {
	st, err := s.stack(ctx, spec.SessionID, spec)
	if err != nil {
		return Outputs{}, fmt.Errorf("stack %s: %w", spec.SessionID, err)
	}
	up := func() (auto.UpResult, error) {
		stream := make(chan events.EngineEvent)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range stream {
				if msg := describe(ev, spec.Zone); msg != "" && progress != nil {
					progress(msg)
				}
			}
		}()
		res, err := st.Up(ctx, optup.SuppressProgress(), optup.EventStreams(stream))
		// The SDK closes the stream once it has read the engine's log to
		// the end; an update that failed before starting has none.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return res, err
	}
	var res auto.UpResult
	err = s.locked(ctx, st, func() (err error) { res, err = up(); return err })
	if err != nil {
		return Outputs{}, fmt.Errorf("up %s: %w", spec.SessionID, err)
	}
	str := func(k string) string { v, _ := res.Outputs[k].Value.(string); return v }
	return Outputs{Instance: str("instance"), Zone: str("zone"), InternalIP: str("internalIP")}, nil
}

// describe turns the engine's events into the steps a participant sees.
func describe(ev events.EngineEvent, zone string) string {
	pre := ev.ResourcePreEvent
	if pre == nil || pre.Planning || pre.Metadata.Op != apitype.OpCreate {
		return ""
	}
	switch pre.Metadata.Type {
	case "gcp:compute/instance:Instance":
		return "creating the VM in " + zone
	case "gcp:cloudscheduler/job:Job":
		return "scheduling the session's stop at its maximum lifetime"
	}
	return ""
}

// Destroy deletes a session's resources and its stack; a stack that does
// not exist is already destroyed.
func (s *Stacks) Destroy(ctx context.Context, sessionID string) error {
	st, err := s.stack(ctx, sessionID, infra.SessionSpec{})
	if err != nil {
		return fmt.Errorf("stack %s: %w", sessionID, err)
	}
	err = s.locked(ctx, st, func() error { _, err := st.Destroy(ctx, optdestroy.SuppressProgress()); return err })
	if err != nil {
		return fmt.Errorf("destroy %s: %w", sessionID, err)
	}
	if err := st.Workspace().RemoveStack(ctx, sessionID); err != nil {
		return fmt.Errorf("remove stack %s: %w", sessionID, err)
	}
	return os.RemoveAll(filepath.Join(s.opts.WorkRoot, sessionID))
}

// locked runs op on a stack and deals with a lock another operation left.
// A lock whose pulumi process is gone was left by a crash (cohort killed
// mid-update, which kills its engine too): it is removed, the state is
// repaired, and op runs again. A lock whose process still runs is waited
// for, up to lockWait.
func (s *Stacks) locked(ctx context.Context, st auto.Stack, op func() error) error {
	deadline := time.Now().Add(lockWait)
	for {
		err := op()
		if err == nil || !auto.IsConcurrentUpdateError(err) && !strings.Contains(err.Error(), "currently locked") {
			return err
		}
		stale, held := s.locks(st.Name())
		switch {
		case len(stale) > 0:
			for _, l := range stale {
				if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("remove the stale lock %s: %w", l, err)
				}
				os.Remove(l + ".attrs") // the file backend's metadata of it
			}
			if err := s.repair(ctx, st); err != nil {
				return fmt.Errorf("repair %s after a crashed update: %w", st.Name(), err)
			}
		case held && time.Now().Before(deadline):
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Second):
			}
		default:
			return err
		}
	}
}

// lockWait is how long an operation waits for another one's lock.
const lockWait = 10 * time.Minute

// locks returns the lock files of a stack on a file:// backend whose
// process is gone (pulumi/pulumi#9253), and whether one is still held.
// Locks on other backends are not looked at.
func (s *Stacks) locks(stack string) (stale []string, held bool) {
	dir, ok := strings.CutPrefix(s.opts.StateURL, "file://")
	if !ok {
		return nil, false
	}
	locks, _ := filepath.Glob(filepath.Join(dir, ".pulumi", "locks", "*", project, stack, "*.json"))
	more, _ := filepath.Glob(filepath.Join(dir, ".pulumi", "locks", project, stack, "*.json"))
	for _, l := range append(locks, more...) {
		if lockHeld(l) {
			held = true
		} else {
			stale = append(stale, l)
		}
	}
	return stale, held
}

// repair makes a stack's state true again after its last operation was
// killed. A create the engine had sent may have completed in the cloud
// (GCE finishes an accepted insert whoever waits for it) while the state
// only records it as pending, and the next update would create a second
// one. Each pending create goes into the state under the ID GCE gives it,
// and a refresh asks the provider whether it exists: kept if so, dropped
// if not.
func (s *Stacks) repair(ctx context.Context, st auto.Stack) error {
	dep, err := st.Export(ctx)
	if err != nil {
		return err
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(dep.Deployment, &d); err != nil {
		return fmt.Errorf("read the state: %w", err)
	}
	var ops []struct {
		Resource map[string]any `json:"resource"`
		Type     string         `json:"type"`
	}
	if err := json.Unmarshal(d["pending_operations"], &ops); err != nil || len(ops) == 0 {
		return err
	}
	var resources []any
	if err := json.Unmarshal(d["resources"], &resources); err != nil {
		return fmt.Errorf("read the state: %w", err)
	}
	for _, op := range ops {
		if op.Type != "creating" {
			continue // updates and deletes keep their resource in the state
		}
		if id := createdID(op.Resource); id != "" {
			op.Resource["id"] = id
			resources = append(resources, op.Resource)
		}
	}
	if d["resources"], err = json.Marshal(resources); err != nil {
		return err
	}
	delete(d, "pending_operations")
	if dep.Deployment, err = json.Marshal(d); err != nil {
		return err
	}
	if err := st.Import(ctx, dep); err != nil {
		return err
	}
	_, err = st.Refresh(ctx, optrefresh.SuppressProgress())
	return err
}

// createdID is the ID GCE gives a resource the session program creates,
// from its inputs; "" for other types.
func createdID(res map[string]any) string {
	in, _ := res["inputs"].(map[string]any)
	str := func(k string) string { v, _ := in[k].(string); return v }
	switch res["type"] {
	case "gcp:compute/instance:Instance":
		return fmt.Sprintf("projects/%s/zones/%s/instances/%s", str("project"), str("zone"), str("name"))
	case "gcp:cloudscheduler/job:Job":
		return fmt.Sprintf("projects/%s/locations/%s/jobs/%s", str("project"), str("region"), str("name"))
	}
	return ""
}

// lockHeld reports whether the process that took a lock still runs here.
func lockHeld(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var lock struct {
		Pid      int    `json:"pid"`
		Hostname string `json:"hostname"`
	}
	if json.Unmarshal(b, &lock) != nil || lock.Pid <= 0 {
		return false
	}
	if host, _ := os.Hostname(); host != lock.Hostname {
		return false // taken elsewhere: only one cohort operates on a session
	}
	return syscall.Kill(lock.Pid, 0) == nil
}

// Attempt is one zone tried by Provision.
type Attempt struct {
	Zone    string
	Failure Failure
}

// Provision brings a session up in the first zone of zones that has
// capacity. Stockouts move on to the next zone, transient errors are
// retried, quota and other errors stop at once. Whatever a failed attempt
// left is destroyed, so a failure leaves nothing billing.
func (s *Stacks) Provision(ctx context.Context, spec infra.SessionSpec, zones []string, progress func(string)) (Outputs, []Attempt, error) {
	var attempts []Attempt
	for i, zone := range zones {
		spec.Zone = zone
		if i > 0 && progress != nil {
			progress(fmt.Sprintf("%s: %s; trying %s", zones[i-1], attempts[len(attempts)-1].Failure.Message, zone))
		}
		for try := 0; ; try++ {
			out, err := s.Up(ctx, spec, progress)
			if err == nil {
				return out, attempts, nil
			}
			f := Classify(err)
			attempts = append(attempts, Attempt{Zone: zone, Failure: f})
			if derr := s.Destroy(context.WithoutCancel(ctx), spec.SessionID); derr != nil {
				return Outputs{}, attempts, fmt.Errorf("clean up after a failed attempt: %w (after: %w)", derr, err)
			}
			if f.Kind == FailTransient && try < 3 && ctx.Err() == nil {
				time.Sleep(time.Duration(1<<try) * time.Second)
				continue
			}
			if f.Kind == FailStockout || f.Kind == FailTransient {
				break // next zone
			}
			return Outputs{}, attempts, &ProvisionError{Failure: f, Attempts: attempts}
		}
	}
	return Outputs{}, attempts, &ProvisionError{Failure: Failure{FailStockout,
		fmt.Sprintf("no zone of %s had capacity; add zones to the class or try again later", strings.Join(zones, ", "))}, Attempts: attempts}
}

// ProvisionError is a session that could not be provisioned anywhere.
type ProvisionError struct {
	Failure  Failure
	Attempts []Attempt
}

func (e *ProvisionError) Error() string { return e.Failure.Message }
