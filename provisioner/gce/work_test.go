package gce_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/infra"
	"github.com/cohortdev/cohort/provisioner/gce"
	"github.com/cohortdev/cohort/provisioner/gce/gcptest"
)

// workDriver is a driver that keeps work disks, with the fake's Compute
// Engine API.
func workDriver(t *testing.T) (*seats, *gcptest.Fake) {
	t.Helper()
	stacks, fake := newStacks(t)
	vms, err := gce.NewCompute(context.Background(), fake.ComputeURL())
	if err != nil {
		t.Fatal(err)
	}
	return driver(t, gce.Options{Stacks: stacks, Project: "workshop-123", Subnetwork: subnet, Compute: vms, WorkGB: 20}), fake
}

// participant is a seat of a participant (warm seats have none).
func participant(id, class, user string, zones ...string) cohort.NotebookSpec {
	s := seat(id, class, zones...)
	s.UserID = user
	return s
}

func diskID(class, user, zone string) string {
	return "projects/workshop-123/zones/" + zone + "/disks/" + infra.WorkDiskName(class, user)
}

// users of each disk, by the disk's ID.
func disks(fake *gcptest.Fake) map[string][]string { return fake.Disks() }

func vmLink(session, zone string) string {
	return "https://www.googleapis.com/compute/v1/projects/workshop-123/zones/" + zone + "/instances/" + gce.InstanceName(session)
}

// TestReturningParticipantGetsTheirDisk: a participant's first session
// makes their work disk where its VM comes up (past a zone out of GPUs);
// each later session runs in that zone and attaches the same disk, even
// when the class's first zone has GPUs again; a stop leaves the disk.
// When the disk's zone has no GPUs, the session fails saying the work is
// safe, and the disk is untouched.
func TestReturningParticipantGetsTheirDisk(t *testing.T) {
	t.Parallel()
	d, fake := workDriver(t)
	ctx := context.Background()
	fake.Stockout("us-central1-a", true)
	if err := d.Start(ctx, participant("ses_ada1", "cls_1", "usr_ada", "us-central1-a", "us-central1-b")); err != nil {
		t.Fatal(err)
	}
	ada := diskID("cls_1", "usr_ada", "us-central1-b")
	if got := disks(fake); !slices.Equal(got[ada], []string{vmLink("ses_ada1", "us-central1-b")}) || len(got) != 1 {
		t.Fatalf("after the first session: disks %v, want %s on the session's VM in us-central1-b", got, ada)
	}
	if disk := fake.Inventory()[ada]; disk.Inputs["size"] != float64(20) || disk.Inputs["type"] != "pd-balanced" {
		t.Errorf("disk %v", disk.Inputs)
	}
	if notes := d.store.of("ses_ada1"); !slices.Contains(notes, "creating your work disk in us-central1-b") || !slices.Contains(notes, "attaching your work disk") {
		t.Errorf("progress %q", notes)
	}
	if err := d.Stop(ctx, "ses_ada1"); err != nil {
		t.Fatal(err)
	}
	if got := disks(fake); len(got) != 1 || len(got[ada]) != 0 || len(fake.Instances()) != 0 {
		t.Fatalf("after a stop: disks %v, instances %v; want ada's disk, detached, and no VM", got, fake.Instances())
	}
	if n := fake.HotDetaches(); n != 0 {
		t.Fatalf("the stop detached the work disk from the running VM (%d times): it goes with the VM's delete", n)
	}

	// The class's first zone has GPUs again: the returning participant
	// still runs where their work is.
	fake.Stockout("us-central1-a", false)
	if err := d.Start(ctx, participant("ses_ada2", "cls_1", "usr_ada", "us-central1-a", "us-central1-b")); err != nil {
		t.Fatal(err)
	}
	if got := disks(fake); len(got) != 1 || !slices.Equal(got[ada], []string{vmLink("ses_ada2", "us-central1-b")}) {
		t.Fatalf("the second session's disks: %v, want ada's disk on its VM in us-central1-b", got)
	}
	if notes := d.store.of("ses_ada2"); slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "creating your work disk") }) {
		t.Errorf("a second disk was made: %q", notes)
	}
	// Someone else's first session gets a disk of their own.
	if err := d.Start(ctx, participant("ses_bob1", "cls_1", "usr_bob", "us-central1-a", "us-central1-b")); err != nil {
		t.Fatal(err)
	}
	if got := disks(fake)[diskID("cls_1", "usr_bob", "us-central1-a")]; !slices.Equal(got, []string{vmLink("ses_bob1", "us-central1-a")}) {
		t.Fatalf("bob's disk: %v (disks %v)", got, disks(fake))
	}
	for _, id := range []string{"ses_ada2", "ses_bob1"} {
		if err := d.Stop(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	// No GPU where the work is: the session fails and says why.
	fake.Stockout("us-central1-b", true)
	err := d.Start(ctx, participant("ses_ada3", "cls_1", "usr_ada", "us-central1-a", "us-central1-b"))
	if err == nil || !strings.Contains(err.Error(), "us-central1-b has no GPU") || !strings.Contains(err.Error(), "your work is safe") {
		t.Fatalf("a start where the work's zone has no GPUs = %v", err)
	}
	if in, _ := d.Inspect(ctx, participant("ses_ada3", "cls_1", "usr_ada")); in.State != cohort.InstanceExited || !strings.Contains(in.Reason, "your work is safe") {
		t.Errorf("inspect = %+v", in)
	}
	if err := d.Stop(ctx, "ses_ada3"); err != nil {
		t.Fatal(err)
	}
	if got := disks(fake); len(got) != 2 || len(got[ada]) != 0 || !slices.Contains(slices.Collect(maps.Keys(got)), ada) {
		t.Fatalf("after the failed start: disks %v, want ada's and bob's, detached", got)
	}
}

// TestWorkRetention: DeleteWork deletes a class's work disks and no
// other class's; GCE refuses to delete a disk a VM still uses, and the
// error says which.
func TestWorkRetention(t *testing.T) {
	t.Parallel()
	d, fake := workDriver(t)
	ctx := context.Background()
	for _, s := range []cohort.NotebookSpec{participant("ses_a", "cls_1", "usr_ada"), participant("ses_b", "cls_1", "usr_bob"), participant("ses_c", "cls_2", "usr_ada")} {
		if err := d.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if classes, err := d.WorkClasses(ctx); err != nil || !slices.Equal(classes, []string{"cls_1", "cls_2"}) {
		t.Fatalf("WorkClasses = %v, %v", classes, err)
	}
	// ses_a runs: its disk is in use.
	for _, id := range []string{"ses_b", "ses_c"} {
		if err := d.Stop(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := d.DeleteWork(ctx, "cls_1")
	inUse := diskID("cls_1", "usr_ada", "us-central1-a")
	if !removed || err == nil || !strings.Contains(err.Error(), infra.WorkDiskName("cls_1", "usr_ada")) || !strings.Contains(err.Error(), "is already being used by") {
		t.Fatalf("DeleteWork with a disk in use = %v, %v", removed, err)
	}
	if got := slices.Sorted(maps.Keys(disks(fake))); !slices.Equal(got, []string{inUse, diskID("cls_2", "usr_ada", "us-central1-a")}) {
		t.Fatalf("disks %v: want bob's deleted, ada's in use kept, and class 2's", got)
	}
	if err := d.Stop(ctx, "ses_a"); err != nil {
		t.Fatal(err)
	}
	if removed, err := d.DeleteWork(ctx, "cls_1"); !removed || err != nil {
		t.Fatalf("DeleteWork = %v, %v", removed, err)
	}
	if got := slices.Sorted(maps.Keys(disks(fake))); !slices.Equal(got, []string{diskID("cls_2", "usr_ada", "us-central1-a")}) {
		t.Fatalf("disks %v: want only class 2's", got)
	}
	if classes, err := d.WorkClasses(ctx); err != nil || !slices.Equal(classes, []string{"cls_2"}) {
		t.Fatalf("WorkClasses = %v, %v", classes, err)
	}
	if removed, err := d.DeleteWork(ctx, "cls_1"); removed || err != nil {
		t.Fatalf("DeleteWork again = %v, %v", removed, err)
	}
}

// TestClaimedSeatAttachesTheWork: a warm seat runs with no work disk; a
// participant may claim only a seat in their disk's zone, and the claim
// attaches their disk to the running VM (created there for a newcomer)
// without replacing it.
func TestClaimedSeatAttachesTheWork(t *testing.T) {
	t.Parallel()
	d, fake := workDriver(t)
	ctx := context.Background()
	// Ada's work is in us-central1-b.
	if err := d.Start(ctx, participant("ses_ada1", "cls_1", "usr_ada", "us-central1-b")); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, "ses_ada1"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []cohort.NotebookSpec{participant("ses_wa", "cls_1", cohort.PoolUserID, "us-central1-a"), participant("ses_wb", "cls_1", cohort.PoolUserID, "us-central1-b")} {
		if err := d.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if len(disks(fake)) != 1 {
		t.Fatalf("warm seats made disks: %v", disks(fake))
	}
	fits, err := d.ClaimFilter(ctx, "cls_1", "usr_ada")
	if err != nil || fits("ses_wa") || !fits("ses_wb") {
		t.Fatalf("ada may claim a: %v, b: %v (%v); want b only", fits("ses_wa"), fits("ses_wb"), err)
	}
	if fits, err := d.ClaimFilter(ctx, "cls_1", "usr_new"); err != nil || !fits("ses_wa") || !fits("ses_wb") {
		t.Fatalf("a newcomer may not claim every seat: %v", err)
	}
	ids := map[string]any{}
	for _, vm := range fake.Instances() {
		ids[vm.ID] = vm.Outputs["instanceId"]
	}
	claim := func(seatID, user, zone string) {
		t.Helper()
		spec := participant(seatID, "cls_1", user)
		spec.UserEmail = user + "@example.org"
		if err := d.Claimed(ctx, spec); err != nil {
			t.Fatal(err)
		}
		want := diskID("cls_1", user, zone)
		waitUntil(t, func() bool { return slices.Equal(disks(fake)[want], []string{vmLink(seatID, zone)}) })
	}
	claim("ses_wb", "usr_ada", "us-central1-b")
	claim("ses_wa", "usr_new", "us-central1-a")
	// A later update of the VM (its backstop, a claim's token) keeps the
	// disk attached.
	spec := participant("ses_wb", "cls_1", "usr_ada")
	spec.UserEmail, spec.Token = "usr_ada@example.org", "another"
	if err := d.Claimed(ctx, spec); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		vm := fake.Inventory()["projects/workshop-123/zones/us-central1-b/instances/"+gce.InstanceName("ses_wb")]
		return vm.Inputs["metadata"].(map[string]any)[infra.MetaToken] == "another"
	})
	if got := disks(fake)[diskID("cls_1", "usr_ada", "us-central1-b")]; !slices.Equal(got, []string{vmLink("ses_wb", "us-central1-b")}) {
		t.Errorf("after an update of the VM, ada's disk is on %v", got)
	}
	for _, vm := range fake.Instances() {
		if ids[vm.ID] != vm.Outputs["instanceId"] {
			t.Errorf("%s was replaced by the claim", vm.ID)
		}
		if meta := vm.Inputs["metadata"].(map[string]any); meta[infra.MetaWorkDevice] != infra.WorkDevice {
			t.Errorf("%s metadata %v: the agent is not told of the disk", vm.ID, meta)
		}
	}
}
