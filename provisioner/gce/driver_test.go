package gce_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/provisioner/gce"
	"github.com/cohortdev/cohort/provisioner/gce/gcptest"
)

func TestDriverRunsSessionOnFakeGCE(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	fake.Boot = gcptest.JupyterBoot(t.TempDir(), t.Cleanup)
	d, err := gce.New(gce.Options{Stacks: stacks, Project: "workshop-123", SessionAccount: "s@x", SchedulerAccount: "sched@x",
		SchedulerRegion: "us-central1", PublicURL: "https://cohort.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	class := cohort.DefaultClass()
	spec := cohort.NotebookSpec{SessionID: "ses_gce1", ClassID: "cls_1", UserEmail: "ada@example.org", Token: cohort.NewSecret(""),
		BasePath: "/s/ses_gce1/", Runtime: class.Runtime, MaxLifetime: 12 * time.Hour}
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

func TestDriverQuotaIsAnActionableError(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	fake.SetGPUQuota(0)
	d, _ := gce.New(gce.Options{Stacks: stacks, Project: "workshop-123"})
	class := cohort.DefaultClass()
	err := d.Start(context.Background(), cohort.NotebookSpec{SessionID: "ses_q", Token: "t", BasePath: "/s/ses_q/", Runtime: class.Runtime, MaxLifetime: time.Hour})
	if cohort.ErrorCode(err) != cohort.EUNAVAILABLE || !strings.Contains(cohort.ErrorMessage(err), "GPUS_ALL_REGIONS") {
		t.Fatalf("Start with no quota = %v", err)
	}
}

func TestDriverOneStartAtATime(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	fake.Latency = time.Second
	d, _ := gce.New(gce.Options{Stacks: stacks, Project: "workshop-123"})
	class := cohort.DefaultClass()
	spec := cohort.NotebookSpec{SessionID: "ses_twice", Token: "t", BasePath: "/s/ses_twice/", Runtime: class.Runtime, MaxLifetime: time.Hour}
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
