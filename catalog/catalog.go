// Package catalog holds the GCE machine types and GPUs a class may ask for:
// which GPU fits which machine type, and in which zones (their prices are
// package cost's).
// It is data, checked by hand against Google's documentation on the date
// below; `gcloud compute accelerator-types list` shows the live truth.
package catalog

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Checked is the date the data below was last compared with Google's
// documentation.
const Checked = "2026-11-26"

// GPU is one GPU model.
type GPU struct {
	Type  string // GCE accelerator type, e.g. "nvidia-tesla-t4"
	Name  string // what people call it, e.g. "NVIDIA T4"
	Zones []string
}

// MachineType is one GCE machine type.
type MachineType struct {
	Name string
	// AttachGPU lists GPUs that can be attached (N1), with the counts allowed.
	AttachGPU map[string][]int
	// BuiltinGPU is the GPU built into the machine type (G2, A2), if any.
	BuiltinGPU      string
	BuiltinGPUCount int
}

var t4Zones = []string{
	"us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f",
	"us-east1-c", "us-east1-d", "us-east4-a", "us-east4-b", "us-east4-c",
	"us-west1-a", "us-west1-b", "europe-west1-b", "europe-west1-c", "europe-west1-d",
	"europe-west4-a", "europe-west4-b", "europe-west4-c", "asia-east1-a", "asia-east1-c",
}

var l4Zones = []string{
	"us-central1-a", "us-central1-b", "us-central1-c", "us-east1-b", "us-east1-c", "us-east1-d",
	"us-east4-a", "us-east4-c", "us-west1-a", "us-west1-b", "us-west1-c",
	"europe-west1-b", "europe-west1-c", "europe-west4-a", "europe-west4-b", "europe-west4-c",
	"asia-east1-a", "asia-east1-c",
}

var a100Zones = []string{
	"us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f",
	"us-east1-b", "us-west1-b", "us-west4-b", "europe-west4-a", "europe-west4-b", "asia-northeast1-a",
}

var gpus = []GPU{
	{Type: "nvidia-tesla-t4", Name: "NVIDIA T4", Zones: t4Zones},
	{Type: "nvidia-tesla-v100", Name: "NVIDIA V100", Zones: []string{"us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f", "us-west1-a", "us-west1-b", "europe-west4-a", "europe-west4-b", "europe-west4-c"}},
	{Type: "nvidia-tesla-p100", Name: "NVIDIA P100", Zones: []string{"us-central1-c", "us-central1-f", "us-east1-b", "us-east1-c", "us-west1-a", "us-west1-b", "europe-west1-b", "europe-west1-d", "europe-west4-a"}},
	{Type: "nvidia-tesla-p4", Name: "NVIDIA P4", Zones: []string{"us-central1-a", "us-central1-c", "us-east4-a", "us-east4-b", "us-east4-c", "us-west2-b", "us-west2-c", "europe-west4-b", "europe-west4-c"}},
	{Type: "nvidia-l4", Name: "NVIDIA L4", Zones: l4Zones},
	{Type: "nvidia-tesla-a100", Name: "NVIDIA A100 40GB", Zones: a100Zones},
	{Type: "nvidia-a100-80gb", Name: "NVIDIA A100 80GB", Zones: []string{"us-central1-a", "us-central1-c", "us-east4-c", "us-east5-b", "europe-west4-a", "asia-southeast1-c"}},
}

func n1(name string) MachineType {
	return MachineType{Name: name, AttachGPU: map[string][]int{
		"nvidia-tesla-t4":   {1, 2, 4},
		"nvidia-tesla-v100": {1, 2, 4, 8},
		"nvidia-tesla-p100": {1, 2, 4},
		"nvidia-tesla-p4":   {1, 2, 4},
	}}
}

func builtin(name, gpu string, count int) MachineType {
	return MachineType{Name: name, BuiltinGPU: gpu, BuiltinGPUCount: count}
}

var machineTypes = []MachineType{
	n1("n1-standard-4"), n1("n1-standard-8"), n1("n1-standard-16"),
	n1("n1-highmem-4"), n1("n1-highmem-8"), n1("n1-highmem-16"),
	builtin("g2-standard-4", "nvidia-l4", 1), builtin("g2-standard-8", "nvidia-l4", 1),
	builtin("g2-standard-12", "nvidia-l4", 1), builtin("g2-standard-16", "nvidia-l4", 1),
	builtin("g2-standard-24", "nvidia-l4", 2), builtin("g2-standard-48", "nvidia-l4", 4),
	builtin("a2-highgpu-1g", "nvidia-tesla-a100", 1), builtin("a2-highgpu-2g", "nvidia-tesla-a100", 2),
	builtin("a2-highgpu-4g", "nvidia-tesla-a100", 4), builtin("a2-ultragpu-1g", "nvidia-a100-80gb", 1),
	{Name: "e2-standard-4"}, {Name: "e2-standard-8"},
}

// LookupGPU returns the GPU of the given accelerator type.
func LookupGPU(gpuType string) (GPU, bool) {
	i := slices.IndexFunc(gpus, func(g GPU) bool { return g.Type == gpuType })
	if i < 0 {
		return GPU{}, false
	}
	return gpus[i], true
}

// LookupMachineType returns the machine type of the given name.
func LookupMachineType(name string) (MachineType, bool) {
	i := slices.IndexFunc(machineTypes, func(m MachineType) bool { return m.Name == name })
	if i < 0 {
		return MachineType{}, false
	}
	return machineTypes[i], true
}

// GPUTypes returns the known accelerator types.
func GPUTypes() []string {
	out := make([]string, len(gpus))
	for i, g := range gpus {
		out[i] = g.Type
	}
	return out
}

// MachineTypeNames returns the known machine types.
func MachineTypeNames() []string {
	out := make([]string, len(machineTypes))
	for i, m := range machineTypes {
		out[i] = m.Name
	}
	return out
}

// Problem says what is wrong with a combination and which field to fix.
type Problem struct {
	Field   string
	Message string
}

// Check returns the first problem with a machine type, GPU type and count
// and zone list, or nil when GCE can run the combination. Messages name
// a valid alternative.
func Check(machineType, gpuType string, gpuCount int, zones []string) *Problem {
	m, ok := LookupMachineType(machineType)
	if !ok {
		return &Problem{"runtime.machine_type", fmt.Sprintf("unknown machine type %q; known: %s", machineType, strings.Join(MachineTypeNames(), ", "))}
	}
	if gpuType == "" {
		if gpuCount != 0 {
			return &Problem{"runtime.gpu_count", "gpu_count is set but gpu_type is empty"}
		}
		if m.BuiltinGPU != "" {
			return &Problem{"runtime.gpu_type", fmt.Sprintf("%s has %d %s built in; set gpu_type %q and gpu_count %d", m.Name, m.BuiltinGPUCount, m.BuiltinGPU, m.BuiltinGPU, m.BuiltinGPUCount)}
		}
		return checkZones(nil, zones)
	}
	g, ok := LookupGPU(gpuType)
	if !ok {
		return &Problem{"runtime.gpu_type", fmt.Sprintf("unknown GPU type %q; known: %s", gpuType, strings.Join(GPUTypes(), ", "))}
	}
	if p := checkFit(m, g, gpuCount); p != nil {
		return p
	}
	return checkZones(&g, zones)
}

func checkFit(m MachineType, g GPU, count int) *Problem {
	if m.BuiltinGPU != "" {
		if m.BuiltinGPU != g.Type {
			return &Problem{"runtime.gpu_type", fmt.Sprintf("%s has %s built in, not %s; for %s use %s", m.Name, m.BuiltinGPU, g.Type, g.Type, suggestMachine(g.Type))}
		}
		if count != m.BuiltinGPUCount {
			return &Problem{"runtime.gpu_count", fmt.Sprintf("%s has exactly %d %s; set gpu_count %d", m.Name, m.BuiltinGPUCount, g.Type, m.BuiltinGPUCount)}
		}
		return nil
	}
	counts, ok := m.AttachGPU[g.Type]
	if !ok {
		return &Problem{"runtime.machine_type", fmt.Sprintf("%s cannot take a %s; use %s", m.Name, g.Type, suggestMachine(g.Type))}
	}
	if !slices.Contains(counts, count) {
		return &Problem{"runtime.gpu_count", fmt.Sprintf("%s takes %d, not %d, of %s", m.Name, counts, count, g.Type)}
	}
	return nil
}

func checkZones(g *GPU, zones []string) *Problem {
	if len(zones) == 0 {
		return &Problem{"runtime.zones", "at least one zone is needed, e.g. us-central1-a"}
	}
	for _, z := range zones {
		if g != nil && !slices.Contains(g.Zones, z) {
			return &Problem{"runtime.zones", fmt.Sprintf("%s is not offered in zone %q; it is in %s", g.Type, z, strings.Join(g.Zones, ", "))}
		}
		if strings.Count(z, "-") != 2 {
			return &Problem{"runtime.zones", fmt.Sprintf("%q is not a zone name such as us-central1-a", z)}
		}
	}
	return nil
}

// suggestMachine names a machine type that can run the GPU.
func suggestMachine(gpuType string) string {
	var names []string
	for _, m := range machineTypes {
		if m.BuiltinGPU == gpuType {
			names = append(names, m.Name)
		} else if _, ok := m.AttachGPU[gpuType]; ok {
			names = append(names, m.Name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "no known machine type"
	}
	return names[0]
}
