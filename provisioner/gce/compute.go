package gce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/agent"
)

// Compute reads what the Compute Engine API says of a session's VM while
// its notebook does not answer: whether GCE still runs it, and what its
// agent published as guest attributes under cohort/ (agent.GuestState,
// agent.GuestError). It also finds and deletes work disks (work.go).
type Compute struct {
	c      *compute.InstancesClient
	images *compute.ImagesClient
	disks  *compute.DisksClient
}

// NewCompute connects to the Compute Engine API at endpoint, "" for
// Google's, with the default credentials. A plain-HTTP endpoint (a local
// fake) is sent no credentials.
func NewCompute(ctx context.Context, endpoint string) (*Compute, error) {
	var opts []option.ClientOption
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
		if strings.HasPrefix(endpoint, "http://") {
			opts = append(opts, option.WithoutAuthentication())
		}
	}
	c, err := compute.NewInstancesRESTClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("compute API client: %w", err)
	}
	images, err := compute.NewImagesRESTClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("compute API client: %w", err)
	}
	disks, err := compute.NewDisksRESTClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("compute API client: %w", err)
	}
	return &Compute{c: c, images: images, disks: disks}, nil
}

// ImageSize returns the size in GB of a family's newest image; found is
// false if the family has no image.
func (g *Compute) ImageSize(ctx context.Context, project, family string) (gb int, found bool, err error) {
	img, err := g.images.GetFromFamily(ctx, &computepb.GetFromFamilyImageRequest{Project: project, Family: family})
	if notFound(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return int(img.GetDiskSizeGb()), true, nil
}

func notFound(err error) bool {
	apiErr, ok := errors.AsType[*apierror.APIError](err)
	return ok && apiErr.HTTPCode() == http.StatusNotFound
}

// Status returns a VM's status (PROVISIONING, STAGING, RUNNING,
// STOPPING, TERMINATED, ...), "" if it does not exist.
func (g *Compute) Status(ctx context.Context, project, zone, instance string) (string, error) {
	vm, err := g.c.Get(ctx, &computepb.GetInstanceRequest{Project: project, Zone: zone, Instance: instance})
	if notFound(err) {
		return "", nil
	}
	return vm.GetStatus(), err
}

// Guests returns a VM's cohort/ guest attributes by key; none while its
// agent has published nothing.
func (g *Compute) Guests(ctx context.Context, project, zone, instance string) (map[string]string, error) {
	resp, err := g.c.GetGuestAttributes(ctx, &computepb.GetGuestAttributesInstanceRequest{
		Project: project, Zone: zone, Instance: instance, QueryPath: proto.String("cohort/"),
	})
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	attrs := map[string]string{}
	for _, it := range resp.GetQueryValue().GetItems() {
		attrs[it.GetKey()] = it.GetValue()
	}
	return attrs, nil
}

// notAnswering says what became of a VM whose notebook does not answer:
// still booting (with the agent's progress), or ended, and why. Errors
// reading it leave it booting: its readiness is what counts.
func (g *Compute) notAnswering(ctx context.Context, project string, out Outputs) cohort.Instance {
	in := cohort.Instance{State: cohort.InstanceStarting, Progress: "booting the VM and starting Jupyter"}
	if g == nil {
		return in
	}
	status, err := g.Status(ctx, project, out.Zone, out.Instance)
	switch {
	case err != nil:
		return in
	case status == "":
		return cohort.Instance{State: cohort.InstanceExited, Reason: "the VM no longer exists"}
	case status != "PROVISIONING" && status != "STAGING" && status != "RUNNING":
		return cohort.Instance{State: cohort.InstanceExited, Reason: "Google Cloud stopped the VM (" + strings.ToLower(status) +
			"): a spot VM taken back, a host error, or its maximum run time"}
	}
	attrs, err := g.Guests(ctx, project, out.Zone, out.Instance)
	if err != nil {
		return in
	}
	switch attrs[agent.GuestState] {
	case "failed":
		return cohort.Instance{State: cohort.InstanceExited, Reason: "the notebook could not start on the VM: " + attrs[agent.GuestError]}
	case "starting":
		in.Progress = "the VM is up; starting Jupyter"
	case "ready":
		in.Progress = "Jupyter runs on the VM, but cohort cannot reach it yet (if this lasts, check the firewall rule in docs/gcp.md)"
	default:
		in.Progress = "booting the VM"
	}
	return in
}
