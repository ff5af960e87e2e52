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
