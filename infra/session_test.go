package infra_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/cohortdev/cohort/infra"
)

// recorder keeps the inputs of every resource the program declares.
type recorder struct {
	mu     sync.Mutex
	inputs map[string]resource.PropertyMap // by type token
	ignore map[string][]string             // ignoreChanges, by type token
	retain map[string]bool                 // retainOnDelete, by type token
	deps   map[string][]string             // dependencies, by type token
	with   map[string]string               // deletedWith, by type token
}

func (r *recorder) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inputs[args.TypeToken] = args.Inputs
	if args.RegisterRPC != nil {
		if r.ignore == nil {
			r.ignore = map[string][]string{}
		}
		r.ignore[args.TypeToken] = args.RegisterRPC.GetIgnoreChanges()
		if r.retain == nil {
			r.retain, r.deps, r.with = map[string]bool{}, map[string][]string{}, map[string]string{}
		}
		r.with[args.TypeToken] = args.RegisterRPC.GetDeletedWith()
		r.retain[args.TypeToken] = args.RegisterRPC.GetRetainOnDelete()
		r.deps[args.TypeToken] = args.RegisterRPC.GetDependencies()
	}
	out := args.Inputs.Copy()
	out["selfLink"] = resource.NewStringProperty("https://www.googleapis.com/compute/v1/" + args.Name)
	if args.TypeToken == "gcp:compute/instance:Instance" {
		out["networkInterfaces"] = resource.NewArrayProperty([]resource.PropertyValue{resource.NewObjectProperty(resource.PropertyMap{
			"networkIp": resource.NewStringProperty("10.128.0.7"),
		})})
	}
	return args.Name + "_id", out, nil
}

func (r *recorder) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

func baseSpec() infra.SessionSpec {
	return infra.SessionSpec{
		Project: "workshop-123", Zone: "us-central1-a", Name: "cohort-ses-abc", SessionID: "ses_abc", ClassID: "cls_xyz",
		Owner: "Ada@Example.org", MachineType: "n1-standard-4", GPUType: "nvidia-tesla-t4", GPUCount: 1,
		Image: "projects/workshop-123/global/images/family/cohort-notebook", DiskGB: 100, MaxRunDuration: 12*time.Hour + 30*time.Minute,
		Subnetwork: "projects/workshop-123/regions/us-central1/subnetworks/cohort-sessions",
		NetworkTag: "cohort-session", ServiceAccount: "cohort-session@workshop-123.iam.gserviceaccount.com",
		NotebookToken: "tok", BasePath: "/", PublicURL: "https://cohort.example.org",
		SchedulerRegion: "us-central1", SchedulerAccount: "cohort-scheduler@workshop-123.iam.gserviceaccount.com",
		Audience: "https://cohort.example.org", ExpireURL: "https://cohort.example.org/v1/scheduler/sessions/ses_abc/expire",
		HardDeadline: time.Date(2026, 11, 26, 21, 5, 0, 0, time.UTC),
	}
}

func run(t *testing.T, spec infra.SessionSpec) (vm, job resource.PropertyMap) {
	t.Helper()
	r := record(t, spec)
	return r.inputs["gcp:compute/instance:Instance"], r.inputs["gcp:cloudscheduler/job:Job"]
}

func record(t *testing.T, spec infra.SessionSpec) *recorder {
	t.Helper()
	r := &recorder{inputs: map[string]resource.PropertyMap{}}
	err := pulumi.RunErr(infra.SessionProgram(spec), pulumi.WithMocks("cohort", "ses_abc", r))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func str(m resource.PropertyMap, path ...string) string {
	v := resource.NewObjectProperty(m)
	for _, p := range path {
		if !v.IsObject() {
			return ""
		}
		v = v.ObjectValue()[resource.PropertyKey(p)]
	}
	switch {
	case v.IsString():
		return v.StringValue()
	case v.IsNumber():
		return fmt.Sprint(v.NumberValue())
	case v.IsBool():
		if v.BoolValue() {
			return "true"
		}
		return "false"
	}
	return ""
}

func TestSessionProgramGPUs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, machine, gpu string
		accelerators       int // attached GPUs expected in guestAccelerators
	}{
		{"T4 attached to N1", "n1-standard-4", "nvidia-tesla-t4", 1},
		{"L4 built into G2", "g2-standard-4", "nvidia-l4", 0},
		{"A100 built into A2", "a2-highgpu-1g", "nvidia-tesla-a100", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := baseSpec()
			spec.MachineType, spec.GPUType = tt.machine, tt.gpu
			vm, _ := run(t, spec)
			if got := str(vm, "machineType"); got != tt.machine {
				t.Errorf("machineType = %q", got)
			}
			acc := vm["guestAccelerators"]
			n := 0
			if acc.IsArray() {
				n = len(acc.ArrayValue())
			}
			if n != tt.accelerators {
				t.Fatalf("guestAccelerators = %v, want %d entries", acc, tt.accelerators)
			}
			if n == 1 {
				a := acc.ArrayValue()[0].ObjectValue()
				if a["type"].StringValue() != tt.gpu || a["count"].NumberValue() != 1 {
					t.Errorf("accelerator = %v", a)
				}
			}
			if got := str(vm, "scheduling", "onHostMaintenance"); got != "TERMINATE" {
				t.Errorf("onHostMaintenance = %q, want TERMINATE (GPUs cannot migrate)", got)
			}
			if got := str(vm, "scheduling", "automaticRestart"); got != "false" {
				t.Errorf("automaticRestart = %q", got)
			}
		})
	}
}

func TestSessionProgramInstance(t *testing.T) {
	t.Parallel()
	vm, _ := run(t, baseSpec())
	if got := str(vm, "scheduling", "maxRunDuration", "seconds"); got != "45000" {
		t.Errorf("maxRunDuration = %q seconds, want 12h30m", got)
	}
	if got := str(vm, "scheduling", "instanceTerminationAction"); got != "STOP" {
		t.Errorf("instanceTerminationAction = %q", got)
	}
	if got := str(vm, "scheduling", "provisioningModel"); got != "STANDARD" {
		t.Errorf("provisioningModel = %q", got)
	}
	nics := vm["networkInterfaces"].ArrayValue()
	if len(nics) != 1 {
		t.Fatalf("%d network interfaces", len(nics))
	}
	if ac, ok := nics[0].ObjectValue()["accessConfigs"]; ok && ac.IsArray() && len(ac.ArrayValue()) > 0 {
		t.Errorf("the VM has an external IP: %v", ac)
	}
	if tags := vm["tags"].ArrayValue(); len(tags) != 1 || tags[0].StringValue() != "cohort-session" {
		t.Errorf("tags = %v", tags)
	}
	if got := str(vm, "bootDisk", "initializeParams", "image"); got != "projects/workshop-123/global/images/family/cohort-notebook" {
		t.Errorf("image = %q", got)
	}
	if got := str(vm, "bootDisk", "initializeParams", "size"); got != "100" {
		t.Errorf("disk size = %q", got)
	}
	for k, want := range map[string]string{"cohort-class": "cls_xyz", "cohort-session": "ses_abc", "cohort-owner": "ada-example-org"} {
		if got := str(vm, "labels", k); got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	token := vm["metadata"].ObjectValue()[infra.MetaToken]
	if !token.ContainsSecrets() || token.SecretValue().Element.StringValue() != "tok" {
		t.Errorf("metadata %s = %v, want the token as a secret (encrypted in the state)", infra.MetaToken, token)
	}
	if nic := nics[0].ObjectValue(); nic["subnetwork"].StringValue() != "projects/workshop-123/regions/us-central1/subnetworks/cohort-sessions" {
		t.Errorf("network interface = %v, want the foundation's subnetwork", nic)
	}
	for k, want := range map[string]string{
		infra.MetaBasePath: "/", infra.MetaSessionID: "ses_abc",
		infra.MetaPort: "8888", infra.MetaPublicURL: "https://cohort.example.org",
		"enable-guest-attributes": "TRUE", // else the agent cannot publish its progress
	} {
		if got := str(vm, "metadata", k); got != want {
			t.Errorf("metadata %s = %q, want %q", k, got, want)
		}
	}
	if got := str(vm, "serviceAccount", "email"); got != "cohort-session@workshop-123.iam.gserviceaccount.com" {
		t.Errorf("service account = %q", got)
	}
	if scopes := vm["serviceAccount"].ObjectValue()["scopes"].ArrayValue(); len(scopes) != 2 {
		t.Errorf("scopes = %v, want logging and monitoring only", scopes)
	}
}

// TestSessionProgramKeepsTheBootImage: the image is a family reference;
// the provider plans a replace when the running VM's image name does not
// contain the family's, so the program must tell it to keep the image.
func TestSessionProgramKeepsTheBootImage(t *testing.T) {
	t.Parallel()
	r := record(t, baseSpec())
	if got := r.ignore["gcp:compute/instance:Instance"]; len(got) != 2 || got[0] != "bootDisk.initializeParams.image" || got[1] != "attachedDisks" {
		t.Fatalf("ignoreChanges = %v, want the boot image and the attached disks", got)
	}
}

func TestSessionProgramNoEgress(t *testing.T) {
	t.Parallel()
	spec := baseSpec()
	spec.NoEgress = true
	vm, _ := run(t, spec)
	if tags := vm["tags"].ArrayValue(); len(tags) != 2 || tags[1].StringValue() != infra.NoEgressTag {
		t.Fatalf("tags of a class without internet = %v", tags)
	}
}

func TestSessionProgramSpot(t *testing.T) {
	t.Parallel()
	spec := baseSpec()
	spec.Spot = true
	vm, _ := run(t, spec)
	if str(vm, "scheduling", "preemptible") != "true" || str(vm, "scheduling", "provisioningModel") != "SPOT" {
		t.Fatalf("spot scheduling = %v", vm["scheduling"])
	}
}

func TestSessionProgramSchedulerJob(t *testing.T) {
	t.Parallel()
	_, job := run(t, baseSpec())
	if got := str(job, "schedule"); got != "5 21 26 11 *" {
		t.Errorf("schedule = %q, want the hard deadline pinned", got)
	}
	if got := str(job, "timeZone"); got != "Etc/UTC" {
		t.Errorf("timeZone = %q", got)
	}
	if got := str(job, "httpTarget", "uri"); got != "https://cohort.example.org/v1/scheduler/sessions/ses_abc/expire" {
		t.Errorf("uri = %q", got)
	}
	if got := str(job, "httpTarget", "httpMethod"); got != "POST" {
		t.Errorf("method = %q", got)
	}
	if got := str(job, "httpTarget", "oidcToken", "serviceAccountEmail"); got != "cohort-scheduler@workshop-123.iam.gserviceaccount.com" {
		t.Errorf("OIDC account = %q", got)
	}
	if got := str(job, "httpTarget", "oidcToken", "audience"); got != "https://cohort.example.org" {
		t.Errorf("OIDC audience = %q", got)
	}
	if got := str(job, "region"); got != "us-central1" {
		t.Errorf("region = %q", got)
	}
}

func TestSessionProgramRefusesImpossibleSpecs(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(*infra.SessionSpec){
		"L4 on N1":        func(s *infra.SessionSpec) { s.GPUType = "nvidia-l4" },
		"T4 not in zone":  func(s *infra.SessionSpec) { s.Zone = "asia-south1-a" },
		"no image":        func(s *infra.SessionSpec) { s.Image = "" },
		"no max duration": func(s *infra.SessionSpec) { s.MaxRunDuration = 0 },
		"no network":      func(s *infra.SessionSpec) { s.Subnetwork = "" },
		"bad work name":   func(s *infra.SessionSpec) { s.Work = &infra.WorkDisk{Name: "Work_1", SizeGB: 10, New: true} },
		"small work disk": func(s *infra.SessionSpec) { s.Work = &infra.WorkDisk{Name: "w", SizeGB: 9, New: true} },
	} {
		spec := baseSpec()
		edit(&spec)
		r := &recorder{inputs: map[string]resource.PropertyMap{}}
		if err := pulumi.RunErr(infra.SessionProgram(spec), pulumi.WithMocks("cohort", "s", r)); err == nil {
			t.Errorf("%s: the program ran", name)
		}
		if len(r.inputs) != 0 {
			t.Errorf("%s: resources were declared: %v", name, r.inputs)
		}
	}
}

func TestOneShot(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 3, 7, 9, 0, 0, time.FixedZone("X", 3600))
	if got := infra.OneShot(at); got != "9 6 3 1 *" {
		t.Fatalf("OneShot = %q", got)
	}
}
