package infra_test

import (
	"strings"
	"testing"

	"github.com/cohortdev/cohort/infra"
)

const (
	diskType   = "gcp:compute/disk:Disk"
	attachType = "gcp:compute/attachedDisk:AttachedDisk"
)

func TestWorkDiskName(t *testing.T) {
	t.Parallel()
	a := infra.WorkDiskName("cls_a", "usr_1")
	if a != infra.WorkDiskName("cls_a", "usr_1") {
		t.Fatal("the name changes between sessions")
	}
	for _, other := range []string{infra.WorkDiskName("cls_a", "usr_2"), infra.WorkDiskName("cls_b", "usr_1"), infra.WorkDiskName("cls_au", "sr_1")} {
		if other == a {
			t.Fatalf("two participants' disks share the name %s", a)
		}
	}
	if !strings.HasPrefix(a, "cohort-work-") || len(a) > 63 {
		t.Fatalf("name %q", a)
	}
}

func TestSessionProgramCreatesANewWorkDisk(t *testing.T) {
	t.Parallel()
	spec := baseSpec()
	spec.Work = &infra.WorkDisk{Name: infra.WorkDiskName("cls_xyz", "usr_ada"), New: true, SizeGB: 20}
	r := record(t, spec)
	disk, attach := r.inputs[diskType], r.inputs[attachType]
	if disk == nil || attach == nil {
		t.Fatalf("resources: %v", r.inputs)
	}
	if str(disk, "name") != spec.Work.Name || str(disk, "zone") != "us-central1-a" || str(disk, "size") != "20" || str(disk, "type") != "pd-balanced" {
		t.Errorf("disk = %v", disk)
	}
	if str(disk, "labels", "cohort-class") != "cls_xyz" || str(disk, "labels", "cohort-work") != "true" || str(disk, "labels", "cohort-owner") != "ada-example-org" {
		t.Errorf("disk labels = %v", disk["labels"])
	}
	// Kept when the session ends; made after the VM, so that a zone
	// without GPUs leaves no disk behind.
	if !r.retain[diskType] || r.retain[attachType] || r.retain["gcp:compute/instance:Instance"] {
		t.Errorf("retainOnDelete = %v, want the disk only", r.retain)
	}
	if deps := r.deps[diskType]; len(deps) != 1 || !strings.HasSuffix(deps[0], "::ses_abc") {
		t.Errorf("the disk depends on %v, want the VM", deps)
	}
	// Never detached from the running VM: the VM's delete takes it.
	if with := r.with[attachType]; !strings.HasSuffix(with, "::ses_abc") {
		t.Errorf("the attachment is deleted with %q, want the VM", with)
	}
	if str(attach, "disk") != "https://www.googleapis.com/compute/v1/ses_abc-work" || str(attach, "deviceName") != "cohort-work" ||
		str(attach, "mode") != "READ_WRITE" || str(attach, "zone") != "us-central1-a" || str(attach, "instance") != "https://www.googleapis.com/compute/v1/ses_abc" {
		t.Errorf("attachment = %v", attach)
	}
	if vm := r.inputs["gcp:compute/instance:Instance"]; str(vm, "metadata", infra.MetaWorkDevice) != "cohort-work" || str(vm, "metadata", infra.MetaWorkNew) != "true" {
		t.Errorf("metadata = %v", vm["metadata"])
	}
}

func TestSessionProgramAttachesAnExistingWorkDisk(t *testing.T) {
	t.Parallel()
	spec := baseSpec()
	spec.Work = &infra.WorkDisk{Name: "cohort-work-0123456789abcdef0123"}
	r := record(t, spec)
	if r.inputs[diskType] != nil {
		t.Fatalf("an existing disk was declared: %v", r.inputs[diskType])
	}
	if got := str(r.inputs[attachType], "disk"); got != "projects/workshop-123/zones/us-central1-a/disks/cohort-work-0123456789abcdef0123" {
		t.Errorf("attached %q", got)
	}
	// Never to be formatted.
	if vm := r.inputs["gcp:compute/instance:Instance"]; str(vm, "metadata", infra.MetaWorkNew) != "" {
		t.Errorf("metadata = %v", vm["metadata"])
	}
}

func TestSessionProgramWithoutWork(t *testing.T) {
	t.Parallel()
	r := record(t, baseSpec())
	if r.inputs[diskType] != nil || r.inputs[attachType] != nil {
		t.Fatalf("work resources without work: %v", r.inputs)
	}
	if vm := r.inputs["gcp:compute/instance:Instance"]; str(vm, "metadata", infra.MetaWorkDevice) != "" {
		t.Errorf("metadata = %v", vm["metadata"])
	}
}
