package gce_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cohortdev/cohort/provisioner/gce"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text     string
		kind     gce.FailureKind
		contains string
	}{
		{"error: 1 error occurred: * Error creating instance: googleapi: Error 400: The zone 'projects/p/zones/us-central1-a' does not have enough resources available to fulfill the request., ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", gce.FailStockout, "no GPUs"},
		{"googleapi: Error 400: ... ZONE_RESOURCE_POOL_EXHAUSTED", gce.FailStockout, "no GPUs"},
		{"googleapi: Error 403: Quota 'NVIDIA_T4_GPUS' exceeded. Limit: 0.0 in region us-central1., quotaExceeded", gce.FailQuota, "NVIDIA_T4_GPUS (region us-central1)"},
		{"googleapi: Error 403: Quota 'GPUS_ALL_REGIONS' exceeded. Limit: 4.0 globally., quotaExceeded", gce.FailQuota, "GPUS_ALL_REGIONS"},
		{"Operation failed: QUOTA_EXCEEDED", gce.FailQuota, "IAM & Admin > Quotas"},
		// As the real provider reports a failed insert operation: the
		// messages only, no code (compute_operation.go).
		{"error: 1 error occurred:\n\t* Error waiting for instance to create: The zone 'projects/p/zones/us-central1-a' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.\n", gce.FailStockout, "no GPUs"},
		{"Error waiting for instance to create: The zone 'projects/p/zones/us-central1-a' does not have enough resources available to fulfill the request.  '(resource type:compute)'.\n", gce.FailStockout, "no GPUs"},
		{"Error waiting for instance to create: A n1-standard-4 VM instance with 1 nvidia-tesla-t4 accelerator(s) is currently unavailable in the us-central1-a zone. Alternatively, you can try your request again with a different VM hardware configuration or at a later time.\n", gce.FailStockout, "no GPUs"},
		{"Error waiting for instance to create: Quota 'NVIDIA_T4_GPUS' exceeded.  Limit: 4.0 in region us-central1.\n\tmetric name = compute.googleapis.com/nvidia_t4_gpus\n", gce.FailQuota, "NVIDIA_T4_GPUS (region us-central1)"},
		{"Error waiting for instance to create: Quota 'GPUS_ALL_REGIONS' exceeded.  Limit: 1.0 globally.\n", gce.FailQuota, "GPUS_ALL_REGIONS"},
		{"Error waiting for instance to create: Instances with guest accelerators do not support live migration.\n", gce.FailOther, "Instances with guest accelerators do not support live migration."},
		{"googleapi: Error 503: The service is currently unavailable., backendError", gce.FailTransient, "temporary"},
		{"googleapi: Error 429: rateLimitExceeded", gce.FailTransient, "temporary"},
		{"exit status 255\nstderr: googleapi: Error 400: Invalid value for field 'resource.machineType': 'zzz'.", gce.FailOther, "Invalid value for field"},
	}
	for _, tt := range tests {
		f := gce.Classify(errors.New(tt.text))
		if f.Kind != tt.kind || !strings.Contains(f.Message, tt.contains) {
			t.Errorf("Classify(%q) = %+v, want kind %d with %q", tt.text, f, tt.kind, tt.contains)
		}
	}
}
