package gce_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cohortdev/cohort/infra"
	"github.com/cohortdev/cohort/provisioner/gce"
	"github.com/cohortdev/cohort/provisioner/gce/gcptest"
)

// repoRoot is where `make pulumi` puts bin/pulumi.
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "bin", "pulumi")); err != nil {
		t.Fatalf("bin/pulumi is missing: run `make pulumi` (make test does)")
	}
	return root
}

// newStacks runs the real Pulumi engine on a file:// backend against the
// fake gcp provider.
func newStacks(t testing.TB) (*gce.Stacks, *gcptest.Fake) {
	t.Helper()
	fake, err := gcptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)
	dir := t.TempDir()
	s, err := gce.NewStacks(gce.StackOptions{
		WorkRoot: filepath.Join(dir, "work"), StateURL: "file://" + filepath.Join(dir, "state"), Passphrase: "test",
		PulumiRoot: repoRoot(t),
		Env:        map[string]string{"PULUMI_DEBUG_PROVIDERS": fake.DebugProviders(), "PULUMI_HOME": filepath.Join(dir, "home")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, fake
}

func spec(id string) infra.SessionSpec {
	return infra.SessionSpec{
		Project: "workshop-123", Zone: "us-central1-a", Name: "cohort-" + id, SessionID: id, ClassID: "cls_x", Owner: "ada@example.org",
		MachineType: "n1-standard-4", GPUType: "nvidia-tesla-t4", GPUCount: 1,
		Image: "projects/workshop-123/global/images/family/cohort-notebook", DiskGB: 100, MaxRunDuration: 13 * time.Hour,
		NetworkTag: "cohort-session", ServiceAccount: "cohort-session@workshop-123.iam.gserviceaccount.com",
		NotebookToken: "tok", BasePath: "/s/" + id + "/",
		SchedulerRegion: "us-central1", SchedulerAccount: "sched@workshop-123.iam.gserviceaccount.com", Audience: "https://cohort.example.org",
		ExpireURL: "https://cohort.example.org/v1/scheduler/sessions/" + id + "/expire", HardDeadline: time.Now().Add(12 * time.Hour),
	}
}

func TestEngineZoneFallbackAndDestroy(t *testing.T) {
	t.Parallel()
	s, fake := newStacks(t)
	fake.Stockout("us-central1-a", true)
	ctx := context.Background()
	out, attempts, err := s.Provision(ctx, spec("ses_one"), []string{"us-central1-a", "us-central1-b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Zone != "us-central1-b" || out.InternalIP != fake.InternalIP || out.Instance != "cohort-ses_one" {
		t.Fatalf("outputs = %+v", out)
	}
	if len(attempts) != 1 || attempts[0].Zone != "us-central1-a" || attempts[0].Failure.Kind != gce.FailStockout {
		t.Fatalf("attempts = %+v, want one stockout in zone a", attempts)
	}
	inv := fake.Inventory()
	instances := fake.Instances()
	if len(inv) != 2 || len(instances) != 1 || instances[0].Inputs["zone"] != "us-central1-b" {
		t.Fatalf("inventory = %+v, want one instance in zone b and its expiry job", inv)
	}
	if err := s.Destroy(ctx, "ses_one"); err != nil {
		t.Fatal(err)
	}
	if inv := fake.Inventory(); len(inv) != 0 {
		t.Fatalf("inventory after destroy = %+v", inv)
	}
	if err := s.Destroy(ctx, "ses_one"); err != nil {
		t.Fatalf("destroying again: %v", err)
	}
}

func TestEngineQuotaFailsWithNothingLeft(t *testing.T) {
	t.Parallel()
	s, fake := newStacks(t)
	fake.SetGPUQuota(0)
	_, _, err := s.Provision(context.Background(), spec("ses_two"), []string{"us-central1-a", "us-central1-b"}, nil)
	var pe *gce.ProvisionError
	if !errors.As(err, &pe) || pe.Failure.Kind != gce.FailQuota || len(pe.Attempts) != 1 {
		t.Fatalf("Provision = %v, want one quota failure (no second zone tried)", err)
	}
	if inv := fake.Inventory(); len(inv) != 0 {
		t.Fatalf("a refused session left %+v", inv)
	}
}

func TestEngineFlakyCloudEndsEverySeat(t *testing.T) {
	t.Parallel()
	s, fake := newStacks(t)
	fake.Latency = 50 * time.Millisecond
	fake.SetFailRate(0.3)
	ctx := context.Background()
	const seats = 6
	results := make(chan error, seats)
	for i := range seats {
		go func() {
			_, _, err := s.Provision(ctx, spec(fmt.Sprintf("ses_f%d", i)), []string{"us-central1-a", "us-central1-b"}, nil)
			results <- err
		}()
	}
	ready := 0
	for range seats {
		err := <-results
		var pe *gce.ProvisionError
		switch {
		case err == nil:
			ready++
		case errors.As(err, &pe) && pe.Failure.Message != "":
			// failed with a reason: acceptable
		default:
			t.Fatalf("a seat ended without a reason: %v", err)
		}
	}
	// What exists is exactly the ready seats' VMs and jobs: no orphans.
	if got := len(fake.Instances()); got != ready {
		t.Fatalf("%d instances exist for %d ready seats", got, ready)
	}
	if ready == 0 {
		t.Fatal("no seat came up: transient failures are not retried")
	}
}

// TestEngineKilledBeforeTheCreateLanded kills the engine while GCE works
// on a create that then fails: the state holds a pending create of a VM
// that does not exist. The next update removes the stale lock, finds
// (by refresh) that there is nothing to adopt, and creates the VM.
func TestEngineKilledBeforeTheCreateLanded(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	fake.Latency = 2 * time.Second
	work := stacks.WorkDir("ses_kill")
	done := make(chan error, 1)
	go func() {
		_, err := stacks.Up(context.Background(), spec("ses_kill"), nil)
		done <- err
	}()
	waitUntil(t, func() bool { return fake.CreatesInFlight() > 0 })
	fake.Stockout("us-central1-a", true) // the create in flight fails
	if n := killEngines(t, work); n == 0 {
		t.Fatal("no engine ran in the stack's workspace")
	}
	if err := <-done; err == nil {
		t.Fatal("an update whose engine was killed succeeded")
	}
	waitUntil(t, func() bool { return fake.CreatesInFlight() == 0 })
	fake.Stockout("us-central1-a", false)

	out, err := stacks.Up(context.Background(), spec("ses_kill"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if vms := fake.Instances(); len(vms) != 1 || out.Instance != "cohort-ses_kill" {
		t.Fatalf("after the repair: outputs %+v, instances %+v", out, vms)
	}
	if err := stacks.Destroy(context.Background(), "ses_kill"); err != nil {
		t.Fatal(err)
	}
	if inv := fake.Inventory(); len(inv) != 0 {
		t.Fatalf("left after destroy: %+v", inv)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killEngines SIGKILLs the pulumi processes working in dir, as a crash of
// the machine would, and says how many it found.
func killEngines(t *testing.T, dir string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cwd")
	n := 0
	for _, p := range procs {
		if cwd, err := os.Readlink(p); err == nil && cwd == dir {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				n++
			}
		}
	}
	return n
}
