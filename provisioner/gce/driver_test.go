package gce_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/agent"
	"github.com/cohortdev/cohort/infra"
	"github.com/cohortdev/cohort/provisioner/gce"
	"github.com/cohortdev/cohort/provisioner/gce/gcptest"
)

func TestDriverRunsSessionOnFakeGCE(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	fake.BootAgents(agent.Options{Home: t.TempDir()}, t.Cleanup)
	guests, err := gce.NewCompute(context.Background(), fake.ComputeURL())
	if err != nil {
		t.Fatal(err)
	}
	d := driver(t, gce.Options{Stacks: stacks, Project: "workshop-123", Subnetwork: subnet, SessionAccount: "s@x", SchedulerAccount: "sched@x",
		SchedulerRegion: "us-central1", PublicURL: "https://cohort.example.org", Compute: guests})
	ctx := context.Background()
	class := cohort.DefaultClass()
	spec := cohort.NotebookSpec{SessionID: "ses_gce1", ClassID: "cls_1", UserEmail: "ada@example.org", Token: cohort.NewSecret(""),
		BasePath: "/", Runtime: class.Runtime, MaxLifetime: 12 * time.Hour}
	if in, err := d.Inspect(ctx, spec); err != nil || in.State != cohort.InstanceAbsent {
		t.Fatalf("before start: %+v, %v", in, err)
	}
	if err := d.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var in cohort.Instance
	for in.State != cohort.InstanceReady {
		if in, err = d.Inspect(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %+v", in)
		}
		time.Sleep(200 * time.Millisecond)
	}
	vmName, zone := fake.Instances()[0].Inputs["name"].(string), fake.Instances()[0].Inputs["zone"].(string)
	// The agent publishes "ready" when it sees Jupyter answer, which may
	// be a moment after cohort does.
	waitUntil(t, func() bool {
		attrs, err := guests.Guests(ctx, "workshop-123", zone, vmName)
		if err != nil {
			t.Fatalf("the agent's guest attributes through the compute API: %v", err)
		}
		return attrs[agent.GuestState] == "ready"
	})
	if ids, _ := d.List(ctx); len(ids) != 1 || ids[0] != "ses_gce1" {
		t.Fatalf("List = %v", ids)
	}
	vm := fake.Instances()[0]
	if vm.Inputs["name"] != "cohort-ses-gce1" {
		t.Errorf("instance name %v", vm.Inputs["name"])
	}
	sched := vm.Inputs["scheduling"].(map[string]any)
	if sched["maxRunDuration"].(map[string]any)["seconds"].(float64) != (12*time.Hour + 30*time.Minute).Seconds() {
		t.Errorf("max run duration = %v", sched["maxRunDuration"])
	}
	if err := d.Stop(ctx, "ses_gce1"); err != nil {
		t.Fatal(err)
	}
	if inv := fake.Inventory(); len(inv) != 0 {
		t.Fatalf("inventory after stop: %v", inv)
	}
	if in, _ := d.Inspect(ctx, spec); in.State != cohort.InstanceAbsent {
		t.Fatalf("after stop: %+v", in)
	}
}

// TestDriverQuotaIsAnActionableError: both shapes of a GPU quota refusal
// (the project's GPUS_ALL_REGIONS, a type's quota in a region) fail the
// seat with the quota's name, without trying other zones.
func TestDriverQuotaIsAnActionableError(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		limit func(*gcptest.Fake)
		want  string
	}{
		"global":   {func(f *gcptest.Fake) { f.SetGPUQuota(0) }, "the quota GPUS_ALL_REGIONS"},
		"regional": {func(f *gcptest.Fake) { f.SetRegionalGPUQuota("nvidia-tesla-t4", "us-central1", 0) }, "the quota NVIDIA_T4_GPUS (region us-central1)"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stacks, fake := newStacks(t)
			tt.limit(fake)
			d := driver(t, gce.Options{Stacks: stacks, Project: "workshop-123", Subnetwork: subnet})
			err := d.Start(context.Background(), seat("ses_q", "cls_q"))
			if cohort.ErrorCode(err) != cohort.EUNAVAILABLE || !strings.Contains(cohort.ErrorMessage(err), tt.want) {
				t.Fatalf("Start with no quota = %v, want %q", err, tt.want)
			}
			if fake.Creates() != 1 {
				t.Fatalf("%d creates: a quota refusal must not be tried in other zones", fake.Creates())
			}
		})
	}
}

func TestDriverOneStartAtATime(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	fake.Latency = time.Second
	d := driver(t, gce.Options{Stacks: stacks, Project: "workshop-123", Subnetwork: subnet})
	class := cohort.DefaultClass()
	spec := cohort.NotebookSpec{SessionID: "ses_twice", Token: "t", BasePath: "/", Runtime: class.Runtime, MaxLifetime: time.Hour}
	ctx := context.Background()
	errs := make(chan error, 2)
	go func() { errs <- d.Start(ctx, spec) }()
	for fake.Instances() == nil && len(fake.Inventory()) == 0 {
		if in, _ := d.Inspect(ctx, spec); in.State == cohort.InstanceStarting {
			break // the first start is under way and says so
		}
		time.Sleep(10 * time.Millisecond)
	}
	go func() { errs <- d.Start(ctx, spec) }() // a second reconcile pass
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fake.Instances()); n != 1 {
		t.Fatalf("%d instances after two concurrent starts, want 1", n)
	}
	if err := d.Stop(ctx, "ses_twice"); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Inventory()); n != 0 {
		t.Fatalf("%d resources after stop", n)
	}
}

// TestDriverZoneFallback: a zone out of stock, in each of the ways GCE
// words it, moves the seat to the class's next zone.
func TestDriverZoneFallback(t *testing.T) {
	t.Parallel()
	d, _, fake := newDriver(t)
	for _, z := range []string{"us-central1-a", "us-central1-b", "us-central1-c"} {
		fake.Stockout(z, true)
	}
	s := seat("ses_z", "cls_z", "us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f")
	if err := d.Start(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	vms := fake.Instances()
	if len(vms) != 1 || vms[0].Inputs["zone"] != "us-central1-f" {
		t.Fatalf("instances %+v, want one in f", vms)
	}
	up := "the VM is up; waiting for it to boot and start Jupyter" // told once the VM is recorded
	waitUntil(t, func() bool { return slices.Contains(d.store.of("ses_z"), up) })
	seen := strings.Join(d.store.of("ses_z"), "\n")
	for _, want := range []string{"creating the VM in us-central1-a", "us-central1-a: the zone has no GPUs of this type left right now; trying us-central1-b",
		"us-central1-b: the zone has no GPUs of this type left right now; trying us-central1-c",
		"us-central1-c: the zone has no GPUs of this type left right now; trying us-central1-f",
		"creating the VM in us-central1-f", up} {
		if !strings.Contains(seen, want) {
			t.Errorf("progress lacks %q:\n%s", want, seen)
		}
	}
	fake.Stockout("us-central1-f", true)
	fake.Stockout("us-central1-b", true)
	err := d.Start(context.Background(), seat("ses_none", "cls_z", "us-central1-a", "us-central1-b"))
	if cohort.ErrorCode(err) != cohort.EUNAVAILABLE || !strings.Contains(cohort.ErrorMessage(err), "no zone of us-central1-a, us-central1-b had capacity") {
		t.Fatalf("Start with every zone out of stock = %v", err)
	}
	if err := d.Stop(context.Background(), "ses_z"); err != nil {
		t.Fatal(err)
	}
	if inv := fake.Inventory(); len(inv) != 0 {
		t.Fatalf("inventory after stop = %+v", inv)
	}
}

// TestDriverFlakyCloudEndsEverySeat: with 30% of creates failing
// transiently, every seat ends up or failed with a reason, and what
// exists is exactly the seats that came up.
func TestDriverFlakyCloudEndsEverySeat(t *testing.T) {
	t.Parallel()
	d, _, fake := newDriver(t)
	fake.Latency = 50 * time.Millisecond
	fake.SetFailRate(0.3)
	var seats []cohort.NotebookSpec
	for i := range 6 {
		seats = append(seats, seat(fmt.Sprintf("ses_f%d", i), "cls_f"))
	}
	up := 0
	for id, err := range startAll(d, seats) {
		switch {
		case err == nil:
			up++
		case cohort.ErrorCode(err) == cohort.EUNAVAILABLE && cohort.ErrorMessage(err) != "":
		default:
			t.Fatalf("%s ended without a reason: %v", id, err)
		}
	}
	if up == 0 {
		t.Fatal("no seat came up: transient failures are not retried")
	}
	if n := len(fake.Instances()); n != up {
		t.Fatalf("%d instances exist for %d seats up", n, up)
	}
	fake.SetFailRate(0)
	for _, s := range seats {
		if err := d.Stop(context.Background(), s.SessionID); err != nil {
			t.Fatal(err)
		}
	}
	if inv := fake.Inventory(); len(inv) != 0 {
		t.Fatalf("inventory after stopping every seat = %+v", inv)
	}
}

// TestDriverBatchesAClass: seats that start together share a few
// updates; a seat that starts while they are busy opens its own shard
// instead of waiting for theirs; a new driver over the same store (cohort
// restarted, or another replica) knows them all.
func TestDriverBatchesAClass(t *testing.T) {
	t.Parallel()
	d, stacks, fake := newDriver(t)
	fake.Latency = time.Second
	var seats []cohort.NotebookSpec
	for i := range 10 {
		seats = append(seats, seat(fmt.Sprintf("ses_b%d", i), "cls_b"))
	}
	late := make(chan error, 1)
	go func() {
		for fake.CreatesInFlight() == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		late <- d.Start(context.Background(), seat("ses_late", "cls_b"))
	}()
	for id, err := range startAll(d, seats) {
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if err := <-late; err != nil {
		t.Fatal(err)
	}
	if shards := d.shards(t); len(shards) < 2 || len(shards) > 4 {
		t.Fatalf("%d shards for 10 seats started at once and one late: want the 10 batched and the late one apart", len(shards))
	}
	if n := len(fake.Instances()); n != 11 {
		t.Fatalf("%d instances, want 11", n)
	}
	again := driverOn(t, d.store, gce.Options{Stacks: stacks, Project: "workshop-123", Subnetwork: subnet})
	ids, err := again.List(context.Background())
	if err != nil || len(ids) != 11 {
		t.Fatalf("List after a restart = %v, %v", ids, err)
	}
	if in, err := again.Inspect(context.Background(), seats[3]); err != nil || in.State != cohort.InstanceStarting || in.Address == "" {
		t.Fatalf("Inspect after a restart = %+v, %v (the VM exists; its fake notebook does not answer)", in, err)
	}
	var wg sync.WaitGroup
	for _, id := range ids { // stop all: batched as well
		wg.Go(func() {
			if err := again.Stop(context.Background(), id); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if inv := fake.Inventory(); len(inv) != 0 {
		t.Fatalf("inventory after stopping every seat = %+v", inv)
	}
	// Empty shards are removed after their last update.
	waitUntil(t, func() bool {
		left, _ := filepath.Glob(stacks.WorkDir("*"))
		return len(left) == 0 && len(d.shards(t)) == 0
	})
}

// TestDriverBackstopFollowsTheDeadline: the session's Cloud Scheduler
// job fires a minute after its deadline; an extension moves it later in
// place (the VM untouched), and an earlier deadline leaves it.
func TestDriverBackstopFollowsTheDeadline(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	fake.Latency = 50 * time.Millisecond
	d := driver(t, gce.Options{Stacks: stacks, Project: "workshop-123", Subnetwork: subnet, SchedulerAccount: "sched@x",
		SchedulerRegion: "us-central1", PublicURL: "https://cohort.example.org", Gather: 50 * time.Millisecond})
	ctx := context.Background()
	deadline := time.Date(2026, 12, 2, 14, 30, 20, 0, time.UTC)
	s := seat("ses_d", "cls_d")
	s.Deadline = deadline
	if err := d.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	job := func() (schedule string, instance any) {
		for _, r := range fake.Inventory() {
			switch r.Type {
			case "gcp:cloudscheduler/job:Job":
				schedule = r.Inputs["schedule"].(string)
			case "gcp:compute/instance:Instance":
				instance = r.Outputs["instanceId"]
			}
		}
		return schedule, instance
	}
	schedule, vm := job()
	if schedule != infra.OneShot(deadline.Add(time.Minute)) {
		t.Fatalf("job schedule %q, want a minute after the deadline %s", schedule, deadline)
	}
	later := deadline.Add(2 * time.Hour)
	if err := d.Reschedule(ctx, "ses_d", later); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { got, _ := job(); return got == infra.OneShot(later.Add(time.Minute)) })
	if _, now := job(); now != vm {
		t.Fatalf("rescheduling the job replaced the VM (instance %v, now %v)", vm, now)
	}
	m, err := d.store.ShardMember(ctx, "ses_d")
	if err != nil {
		t.Fatal(err)
	}
	before, err := d.store.GetShard(ctx, m.Shard)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Reschedule(ctx, "ses_d", deadline); err != nil {
		t.Fatal(err)
	}
	if after, err := d.store.GetShard(ctx, m.Shard); err != nil || after.Generation != before.Generation {
		t.Fatalf("an earlier deadline changed the shard (generation %d, now %d; %v)", before.Generation, after.Generation, err)
	}
	if got, _ := job(); got != infra.OneShot(later.Add(time.Minute)) {
		t.Fatalf("an earlier deadline moved the job to %q", got)
	}
	if err := d.Reschedule(ctx, "ses_unknown", later); err != nil {
		t.Fatalf("Reschedule of a session the driver does not hold = %v", err)
	}
}

// TestDriverJoinAndLeaveKeepRunningVMs: a class on an image family whose
// image names do not contain the family's name (the provider then plans a
// replace of the boot disk), and a newer image built mid-class. A seat
// that joins the shard and one that leaves it must not touch the others'
// VMs; the newcomer boots the family's newest image.
func TestDriverJoinAndLeaveKeepRunningVMs(t *testing.T) {
	t.Parallel()
	d, _, fake := newDriver(t)
	fake.Latency = 50 * time.Millisecond
	fake.AddImage("workshop-123", "spacy-gpu", gcptest.Image{Name: "cohort-notebook-v1", SizeGB: 50})
	var seats []cohort.NotebookSpec
	for i := range 10 {
		s := seat(fmt.Sprintf("ses_j%d", i), "cls_j")
		s.Runtime.Image = "spacy-gpu"
		seats = append(seats, s)
	}
	for id, err := range startAll(d, seats[:9]) {
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	before := map[string]any{}
	for _, vm := range fake.Instances() {
		before[vm.ID] = vm.Outputs["instanceId"]
	}
	fake.AddImage("workshop-123", "spacy-gpu", gcptest.Image{Name: "cohort-notebook-v2", SizeGB: 50})
	if err := d.Start(context.Background(), seats[9]); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(context.Background(), seats[0].SessionID); err != nil {
		t.Fatal(err)
	}
	delete(before, "projects/workshop-123/zones/us-central1-a/instances/"+gce.InstanceName(seats[0].SessionID))
	after := map[string]any{}
	for _, vm := range fake.Instances() {
		after[vm.ID] = vm.Outputs["instanceId"]
		image := vm.Outputs["bootDisk"].(map[string]any)["initializeParams"].(map[string]any)["image"].(string)
		if newcomer := vm.Inputs["name"] == gce.InstanceName(seats[9].SessionID); newcomer != strings.HasSuffix(image, "/cohort-notebook-v2") {
			t.Errorf("%s boots %s", vm.ID, image)
		}
	}
	for id, instance := range before {
		if after[id] != instance {
			t.Errorf("%s was replaced (instance %v, now %v) by a join or a leave", id, instance, after[id])
		}
	}
	if len(after) != 9 {
		t.Errorf("%d VMs, want 9", len(after))
	}
}

// TestDriverStopWhileCreating: a participant stops while the VM is being
// created; the VM is deleted by the next update and Start returns.
func TestDriverStopWhileCreating(t *testing.T) {
	t.Parallel()
	d, _, fake := newDriver(t)
	fake.Latency = time.Second
	started := make(chan error, 1)
	go func() { started <- d.Start(context.Background(), seat("ses_s", "cls_s")) }()
	for fake.CreatesInFlight() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.Stop(context.Background(), "ses_s"); err != nil {
		t.Fatal(err)
	}
	if inv := fake.Inventory(); len(inv) != 0 {
		t.Fatalf("inventory after a stop during the create = %+v", inv)
	}
	if err := <-started; err != nil {
		t.Fatalf("Start of a session stopped while it started = %v", err)
	}
	if in, _ := d.Inspect(context.Background(), seat("ses_s", "cls_s")); in.State != cohort.InstanceAbsent {
		t.Fatalf("after stop: %+v", in)
	}
}

// TestDriverReportsAFailedBoot: the agent on the VM cannot start Jupyter;
// Inspect says so, with the agent's reason, instead of "starting" until
// the start timeout.
func TestDriverReportsAFailedBoot(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	fake.BootAgents(agent.Options{Home: t.TempDir(), Jupyter: "/bin/false"}, t.Cleanup)
	guests, err := gce.NewCompute(context.Background(), fake.ComputeURL())
	if err != nil {
		t.Fatal(err)
	}
	d := driver(t, gce.Options{Stacks: stacks, Project: "workshop-123", Subnetwork: subnet, Compute: guests})
	s := seat("ses_broken", "cls_broken")
	if err := d.Start(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	var in cohort.Instance
	waitUntil(t, func() bool {
		in, err = d.Inspect(context.Background(), s)
		return err != nil || in.State != cohort.InstanceStarting
	})
	if err != nil || in.State != cohort.InstanceExited || !strings.Contains(in.Reason, "the notebook could not start on the VM: the notebook server exited while starting") {
		t.Fatalf("Inspect of a VM whose agent failed = %+v, %v", in, err)
	}
	if err := d.Stop(context.Background(), s.SessionID); err != nil {
		t.Fatal(err)
	}
}

// TestDriverNoticesAStoppedVM: GCE takes back a spot VM; the session's
// notebook is gone at once, not after the idle timeout.
func TestDriverNoticesAStoppedVM(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	fake.BootAgents(agent.Options{Home: t.TempDir()}, t.Cleanup)
	vms, err := gce.NewCompute(context.Background(), fake.ComputeURL())
	if err != nil {
		t.Fatal(err)
	}
	d := driver(t, gce.Options{Stacks: stacks, Project: "workshop-123", Subnetwork: subnet, Compute: vms})
	s := seat("ses_spot", "cls_spot")
	s.Runtime.Spot = true
	if err := d.Start(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { in, _ := d.Inspect(context.Background(), s); return in.State == cohort.InstanceReady })
	fake.Preempt(gce.InstanceName(s.SessionID))
	in, err := d.Inspect(context.Background(), s)
	if err != nil || in.State != cohort.InstanceExited || !strings.Contains(in.Reason, "Google Cloud stopped the VM (terminated)") {
		t.Fatalf("Inspect of a preempted VM = %+v, %v", in, err)
	}
	if err := d.Stop(context.Background(), s.SessionID); err != nil {
		t.Fatal(err)
	}
	if inv := fake.Inventory(); len(inv) != 0 {
		t.Fatalf("a stopped VM's disk is still there after the session's stop: %+v", inv)
	}
}

// TestSchedulerAudienceIsCohorts: the scheduler job mints its tokens for
// the audience cohort's verifier expects (both are the one setting that
// cmd/cohort passes to each), and calls cohort's own URL.
func TestSchedulerAudienceIsCohorts(t *testing.T) {
	t.Parallel()
	for _, aud := range []string{"", "https://scheduler-audience.example.org"} {
		d := driver(t, gce.Options{Stacks: &gce.Stacks{}, Project: "p", Network: "default", SchedulerAccount: "sched@x", SchedulerRegion: "us-central1",
			PublicURL: "https://cohort.example.org", SchedulerAudience: aud})
		s := d.SessionSpec(cohort.NotebookSpec{SessionID: "ses_a", Runtime: cohort.DefaultClass().Runtime, MaxLifetime: time.Hour}, time.Now())
		want := aud
		if want == "" {
			want = "https://cohort.example.org"
		}
		if s.Audience != want || s.ExpireURL != "https://cohort.example.org/v1/scheduler/sessions/ses_a/expire" {
			t.Errorf("audience setting %q: job audience %q, URL %q", aud, s.Audience, s.ExpireURL)
		}
	}
}
