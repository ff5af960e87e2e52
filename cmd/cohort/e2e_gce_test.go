package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/provisioner/gce/gcptest"
)

// TestE2EGCEDriver runs the product with --driver gce: the real Pulumi
// engine (bin/pulumi) creates the session's "VM" with the fake gcp
// provider, whose boot serves a real Jupyter at the VM's internal address;
// the participant's code runs through cohort's proxy; stopping the session
// leaves nothing in the fake's inventory.
func TestE2EGCEDriver(t *testing.T) {
	t.Parallel()
	root, _ := filepath.Abs("../..")
	if _, err := os.Stat(filepath.Join(root, "bin", "pulumi")); err != nil {
		t.Fatal("bin/pulumi is missing: run `make pulumi` (make test does)")
	}
	fake, err := gcptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Stop()
	fake.Boot = gcptest.JupyterBoot(t.TempDir(), t.Cleanup)
	fake.Stockout("us-central1-a", true) // the class's first zone is out of T4s

	ctx := context.Background()
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, "COHORT_DRIVER=gce", "COHORT_GCE_PROJECT=workshop-123",
		"COHORT_GCE_SESSION_ACCOUNT=cohort-session@workshop-123.iam.gserviceaccount.com",
		"COHORT_PULUMI_ROOT="+root, "PULUMI_DEBUG_PROVIDERS="+fake.DebugProviders(), "PULUMI_HOME="+t.TempDir())
	teacher := client.New(srv.url, token(t, dataDir, "teacher@example.com", cohort.RoleInstructor))
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "GPU class"})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := teacher.StartSession(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	ready := waitState(t, teacher, s.ID, cohort.StateReady)
	if ready.Driver != "gce" {
		t.Fatalf("driver %q", ready.Driver)
	}
	vms := fake.Instances()
	if len(vms) != 1 || vms[0].Inputs["zone"] != "us-central1-b" {
		t.Fatalf("instances = %+v, want one in us-central1-b (a is out of stock)", vms)
	}
	var progress []string
	err = teacher.FollowEvents(ctx, s.ID, 0, func(e cohort.Event) bool {
		progress = append(progress, e.Message)
		return e.State != cohort.StateReady
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := strings.Join(progress, "\n")
	for _, want := range []string{"us-central1-a: the zone has no GPUs of this type left right now; trying us-central1-b",
		"creating the VM in us-central1-b", "waiting for it to boot", "notebook ready"} {
		if !strings.Contains(seen, want) {
			t.Errorf("the participant's progress lacks %q:\n%s", want, seen)
		}
	}
	if out := runKernel(t, srv.url, teacher.Token, s.ID, "print(6*7)"); out != "42\n" {
		t.Fatalf("kernel on the GCE path printed %q", out)
	}
	if _, err := teacher.StopSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, teacher, s.ID, cohort.StateStopped)
	if len(fake.Inventory()) != 0 {
		t.Fatalf("left in the cloud after stop: %+v", fake.Inventory())
	}
}
