// Package infra holds cohort's Pulumi programs. Session declares the
// cloud side of one session: a GCE VM with its GPU booted from the class's
// image, and the Cloud Scheduler job that stops it at its hard deadline.
// It is a pure function of its spec, so the gce driver runs it through the
// Automation API, tests run it under pulumi.WithMocks, and the root
// Pulumi project can run it by hand for debugging.
package infra

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/cloudscheduler"
	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/compute"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/cohortdev/cohort/catalog"
)

// Metadata keys of the contract between cohort and the session agent in
// the image: the agent starts Jupyter with these settings.
const (
	MetaSessionID = "cohort-session-id"
	MetaToken     = "cohort-notebook-token"
	MetaBasePath  = "cohort-base-path"
	MetaPort      = "cohort-notebook-port"
	MetaPublicURL = "cohort-public-url"
)

// NoEgressTag marks the VM of a class without internet: the
// installation's firewall denies it every outbound connection.
const NoEgressTag = "cohort-no-egress"

// NotebookPort is where the agent's Jupyter listens on the VM's internal
// address, and AgentPort where the agent itself does (agent/control.go);
// the firewall admits cohort's control plane only, to both.
const (
	NotebookPort = 8888
	AgentPort    = 8889
)

// SessionSpec is everything the program needs; nothing else is read.
type SessionSpec struct {
	Project, Zone string
	// Name of the instance; derived from the session ID.
	Name      string
	SessionID string
	ClassID   string
	Owner     string // the participant's email

	MachineType string
	GPUType     string
	GPUCount    int
	// Image is the boot image: "projects/P/global/images/family/F".
	Image  string
	DiskGB int
	Spot   bool
	// MaxRunDuration is GCE's own hard stop, the last layer of timeouts:
	// it holds even when cohort is down.
	MaxRunDuration time.Duration

	Network, Subnetwork string
	// NetworkTag is the tag the firewall rule admitting the control plane
	// targets.
	NetworkTag string
	// NoEgress adds NoEgressTag: the VM may open no outbound connection.
	NoEgress bool
	// ServiceAccount runs the VM, with the minimal scopes.
	ServiceAccount string

	NotebookToken, BasePath, PublicURL string

	// The Cloud Scheduler job that calls cohort's expire endpoint at the
	// hard deadline, with an OIDC token of SchedulerAccount for Audience.
	SchedulerRegion, SchedulerAccount, Audience, ExpireURL string
	HardDeadline                                           time.Time

	// Work, if set, is the participant's work disk (work.go).
	Work *WorkDisk
}

// Scopes the session VM's service account gets: logs and metrics only.
var Scopes = []string{
	"https://www.googleapis.com/auth/logging.write",
	"https://www.googleapis.com/auth/monitoring.write",
}

// Check returns a problem with a spec, or nil.
func (s SessionSpec) Check() error {
	switch {
	case s.Project == "" || s.Zone == "" || s.Name == "" || s.SessionID == "":
		return fmt.Errorf("session spec: project, zone, name and session ID are required")
	case s.Image == "" || s.DiskGB <= 0:
		return fmt.Errorf("session spec: image and disk size are required")
	case s.Network == "" && s.Subnetwork == "":
		return fmt.Errorf("session spec: a network or subnetwork is required")
	case s.MaxRunDuration < time.Minute:
		return fmt.Errorf("session spec: max run duration %s is too short", s.MaxRunDuration)
	}
	if p := catalog.Check(s.MachineType, s.GPUType, s.GPUCount, []string{s.Zone}); p != nil {
		return fmt.Errorf("session spec: %s", p.Message)
	}
	return s.Work.check()
}

// SessionProgram returns the Pulumi program of one session, with its
// VM's name, zone and internal address as outputs (for the root project
// and tests; the gce driver runs ShardProgram).
func SessionProgram(s SessionSpec) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		vm, err := Session(ctx, s)
		if err != nil {
			return err
		}
		ctx.Export("instance", vm.Name)
		ctx.Export("zone", vm.Zone)
		ctx.Export("internalIP", vm.NetworkInterfaces.Index(pulumi.Int(0)).NetworkIp())
		return nil
	}
}

// ShardProgram returns the program of a shard: one stack holding the
// resources of many sessions, so that one update creates many VMs at
// once. Each session's resources are named after it (Session).
func ShardProgram(specs []SessionSpec) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		for _, s := range specs {
			if _, err := Session(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}
}

// ExpireSuffix ends the name of a session's Cloud Scheduler job resource;
// its VM resource is named the session ID.
const ExpireSuffix = "-expire"

// Session declares one session's resources: its VM, and the Cloud
// Scheduler job that stops it at its hard deadline when ExpireURL is set.
func Session(ctx *pulumi.Context, s SessionSpec) (*compute.Instance, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	// The boot image is a family: the provider keeps a VM whose image's
	// name does not contain the family's name only by planning to replace
	// it, which a shard's update would do to every running VM of the
	// shard when one participant joins or leaves. A running session keeps
	// the image it booted; the next session gets the family's newest.
	// The work disk is attached by a resource of its own: the instance
	// must ignore its attached disks, or an update of the instance would
	// detach it (terraform-provider-google, google_compute_attached_disk's
	// documentation).
	vm, err := compute.NewInstance(ctx, s.SessionID, instanceArgs(s), pulumi.IgnoreChanges([]string{"bootDisk.initializeParams.image", "attachedDisks"}))
	if err != nil {
		return vm, err
	}
	if err := workDisk(ctx, s, vm); err != nil || s.ExpireURL == "" {
		return vm, err
	}
	_, err = cloudscheduler.NewJob(ctx, s.SessionID+ExpireSuffix, &cloudscheduler.JobArgs{
		Project:     pulumi.String(s.Project),
		Region:      pulumi.String(s.SchedulerRegion),
		Name:        pulumi.String("cohort-expire-" + labelValue(s.SessionID)),
		Description: pulumi.String("cohort: stop session " + s.SessionID + " at its hard deadline"),
		Schedule:    pulumi.String(OneShot(s.HardDeadline)),
		TimeZone:    pulumi.String("Etc/UTC"),
		HttpTarget: &cloudscheduler.JobHttpTargetArgs{
			Uri:        pulumi.String(s.ExpireURL),
			HttpMethod: pulumi.String("POST"),
			OidcToken: &cloudscheduler.JobHttpTargetOidcTokenArgs{
				ServiceAccountEmail: pulumi.String(s.SchedulerAccount),
				Audience:            pulumi.String(s.Audience),
			},
		},
		// Delivery is at least once; cohort's endpoint is idempotent.
		RetryConfig: &cloudscheduler.JobRetryConfigArgs{RetryCount: pulumi.Int(5), MinBackoffDuration: pulumi.String("30s")},
	})
	return vm, err
}

func instanceArgs(s SessionSpec) *compute.InstanceArgs {
	sched := &compute.InstanceSchedulingArgs{
		// GPUs cannot live-migrate: maintenance stops the VM.
		OnHostMaintenance: pulumi.String("TERMINATE"),
		AutomaticRestart:  pulumi.Bool(false),
		ProvisioningModel: pulumi.String("STANDARD"),
		MaxRunDuration:    &compute.InstanceSchedulingMaxRunDurationArgs{Seconds: pulumi.Int(int(s.MaxRunDuration.Seconds()))},
		// STOP, not DELETE: the GPU stops billing and the participant's
		// disk survives until cohort, back up, cleans up.
		InstanceTerminationAction: pulumi.String("STOP"),
	}
	if s.Spot {
		sched.Preemptible = pulumi.Bool(true)
		sched.ProvisioningModel = pulumi.String("SPOT")
	}
	metadata := pulumi.StringMap{
		MetaSessionID: pulumi.String(s.SessionID),
		// A secret: encrypted in the state with the stack's secrets
		// provider, never in plain text.
		MetaToken:     pulumi.ToSecret(pulumi.String(s.NotebookToken)).(pulumi.StringOutput),
		MetaBasePath:  pulumi.String(s.BasePath),
		MetaPort:      pulumi.String(fmt.Sprint(NotebookPort)),
		MetaPublicURL: pulumi.String(s.PublicURL),
		// The agent publishes its progress as guest attributes,
		// which GCE accepts only when this is set.
		"enable-guest-attributes": pulumi.String("TRUE"),
	}
	args := &compute.InstanceArgs{
		Project:     pulumi.String(s.Project),
		Zone:        pulumi.String(s.Zone),
		Name:        pulumi.String(s.Name),
		MachineType: pulumi.String(s.MachineType),
		BootDisk: &compute.InstanceBootDiskArgs{
			AutoDelete: pulumi.Bool(true),
			InitializeParams: &compute.InstanceBootDiskInitializeParamsArgs{
				Image: pulumi.String(s.Image),
				Size:  pulumi.Int(s.DiskGB),
				Type:  pulumi.String("pd-balanced"),
			},
		},
		// No access configs: no external IP. Only cohort reaches the VM.
		NetworkInterfaces: compute.InstanceNetworkInterfaceArray{&compute.InstanceNetworkInterfaceArgs{
			Network:    optional(s.Network),
			Subnetwork: optional(s.Subnetwork),
		}},
		Scheduling:     sched,
		Tags:           tags(s),
		ServiceAccount: &compute.InstanceServiceAccountArgs{Email: pulumi.String(s.ServiceAccount), Scopes: pulumi.ToStringArray(Scopes)},
		Labels: pulumi.StringMap{
			"cohort-class":   pulumi.String(labelValue(s.ClassID)),
			"cohort-session": pulumi.String(labelValue(s.SessionID)),
			"cohort-owner":   pulumi.String(labelValue(s.Owner)),
		},
		Metadata:               metadata,
		AllowStoppingForUpdate: pulumi.Bool(true),
	}
	if s.Work != nil {
		metadata[MetaWorkDevice] = pulumi.String(WorkDevice)
		if s.Work.New {
			metadata[MetaWorkNew] = pulumi.String("true")
		}
	}
	// N1 takes attached GPUs; G2 and A2 have theirs built in.
	if m, ok := catalog.LookupMachineType(s.MachineType); ok && m.BuiltinGPU == "" && s.GPUType != "" {
		args.GuestAccelerators = compute.InstanceGuestAcceleratorArray{&compute.InstanceGuestAcceleratorArgs{
			Type: pulumi.String(s.GPUType), Count: pulumi.Int(s.GPUCount),
		}}
	}
	return args
}

func tags(s SessionSpec) pulumi.StringArray {
	t := pulumi.StringArray{pulumi.String(s.NetworkTag)}
	if s.NoEgress {
		t = append(t, pulumi.String(NoEgressTag))
	}
	return t
}

func optional(v string) pulumi.StringPtrInput {
	if v == "" {
		return nil
	}
	return pulumi.String(v)
}

// OneShot is a Cloud Scheduler schedule that fires once, at t (UTC):
// Cloud Scheduler has no one-shot jobs, so minute, hour, day and month are
// pinned and the job is deleted with the session. (It would fire again a
// year later; no session lives that long.)
func OneShot(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%d %d %d %d *", t.Minute(), t.Hour(), t.Day(), int(t.Month()))
}

var labelUnsafe = regexp.MustCompile(`[^a-z0-9_-]+`)

// labelValue makes a GCE label value: lower case letters, digits, _ and -,
// at most 63 characters ("ada@example.org" becomes "ada-example-org").
func labelValue(v string) string {
	v = labelUnsafe.ReplaceAllString(strings.ToLower(v), "-")
	if len(v) > 63 {
		v = v[:63]
	}
	return v
}
