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

// Guests reads what session agents publish as guest attributes under
// cohort/ (agent.GuestState, agent.GuestError) while a VM boots.
type Guests struct {
	c *compute.InstancesClient
}

// NewGuests connects to the Compute Engine API at endpoint, "" for
// Google's, with the default credentials. A plain-HTTP endpoint (a local
// fake) is sent no credentials.
func NewGuests(ctx context.Context, endpoint string) (*Guests, error) {
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
	return &Guests{c: c}, nil
}

// Read returns a VM's cohort/ guest attributes by key; none while its
// agent has published nothing (or the VM is gone).
func (g *Guests) Read(ctx context.Context, project, zone, instance string) (map[string]string, error) {
	resp, err := g.c.GetGuestAttributes(ctx, &computepb.GetGuestAttributesInstanceRequest{
		Project: project, Zone: zone, Instance: instance, QueryPath: proto.String("cohort/"),
	})
	if apiErr, ok := errors.AsType[*apierror.APIError](err); ok && apiErr.HTTPCode() == http.StatusNotFound {
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

// boot turns a VM's guest attributes into what Inspect reports while its
// notebook does not answer yet.
func boot(attrs map[string]string) (state cohort.InstanceState, progress string) {
	switch attrs[agent.GuestState] {
	case "failed":
		return cohort.InstanceExited, "the notebook could not start on the VM: " + attrs[agent.GuestError]
	case "starting":
		return cohort.InstanceStarting, "the VM is up; starting Jupyter"
	case "ready":
		return cohort.InstanceStarting, "Jupyter runs on the VM, but cohort cannot reach it yet (if this lasts, check the firewall rule in docs/gcp.md)"
	}
	return cohort.InstanceStarting, "booting the VM"
}
