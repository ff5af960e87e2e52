package catalog

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	central := []string{"us-central1-a"}
	tests := []struct {
		name, machine, gpu string
		count              int
		zones              []string
		field, contains    string
	}{
		{"t4 on n1", "n1-standard-4", "nvidia-tesla-t4", 1, central, "", ""},
		{"l4 built into g2", "g2-standard-4", "nvidia-l4", 1, central, "", ""},
		{"a100 built into a2", "a2-highgpu-1g", "nvidia-tesla-a100", 1, central, "", ""},
		{"cpu only", "e2-standard-4", "", 0, central, "", ""},
		{"unknown machine", "n9-huge", "", 0, central, "runtime.machine_type", "unknown machine type"},
		{"unknown gpu", "n1-standard-4", "nvidia-rtx-9090", 1, central, "runtime.gpu_type", "unknown GPU type"},
		{"l4 on n1", "n1-standard-4", "nvidia-l4", 1, central, "runtime.machine_type", "use g2-standard-"},
		{"t4 on g2", "g2-standard-4", "nvidia-tesla-t4", 1, central, "runtime.gpu_type", "use n1-"},
		{"wrong builtin count", "g2-standard-4", "nvidia-l4", 2, central, "runtime.gpu_count", "set gpu_count 1"},
		{"three t4", "n1-standard-4", "nvidia-tesla-t4", 3, central, "runtime.gpu_count", "[1 2 4]"},
		{"g2 without gpu", "g2-standard-4", "", 0, central, "runtime.gpu_type", "nvidia-l4"},
		{"count without type", "n1-standard-4", "", 1, central, "runtime.gpu_count", "gpu_type is empty"},
		{"no zones", "n1-standard-4", "nvidia-tesla-t4", 1, nil, "runtime.zones", "at least one zone"},
		{"zone without gpu", "n1-standard-4", "nvidia-tesla-a100", 1, central, "runtime.machine_type", "a2-highgpu-1g"},
		{"gpu not in zone", "g2-standard-4", "nvidia-l4", 1, []string{"us-central1-f"}, "runtime.zones", "not offered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Check(tt.machine, tt.gpu, tt.count, tt.zones)
			if tt.field == "" {
				if p != nil {
					t.Fatalf("Check = %+v, want ok", p)
				}
				return
			}
			if p == nil {
				t.Fatalf("Check = ok, want problem with %s", tt.field)
			}
			if p.Field != tt.field || !strings.Contains(p.Message, tt.contains) {
				t.Fatalf("Check = %+v, want field %s and message containing %q", p, tt.field, tt.contains)
			}
		})
	}
}
