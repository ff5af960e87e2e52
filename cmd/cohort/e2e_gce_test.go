package main

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/agent"
	"github.com/cohortdev/cohort/client"
	installation "github.com/cohortdev/cohort/infra/foundation"
	"github.com/cohortdev/cohort/provisioner/gce"
	"github.com/cohortdev/cohort/provisioner/gce/gcptest"
)

// TestE2EGCEDriver runs the product with --driver gce: the real Pulumi
// engine (bin/pulumi) creates the session's "VM" with the fake gcp
// provider, whose boot serves a real Jupyter at the VM's internal address;
// the participant's code runs through cohort's proxy; stopping the session
// leaves nothing in the fake's inventory.
func TestE2EGCEDriver(t *testing.T) {
	t.Parallel()
	fake := startFakeGCE(t)
	fake.Stockout("us-central1-a", true) // the class's first zone is out of T4s

	ctx := context.Background()
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, gceEnv(t, fake)...)
	teacher := client.New(srv.url, token(t, dataDir, "teacher@example.com", cohort.RoleInstructor))
	// GCE would refuse every seat of these: refused when the class is made.
	for _, tt := range []struct {
		runtime map[string]any
		want    string
	}{
		{map[string]any{"disk_gb": 20}, `disk_gb (20) is smaller than the image "cohort-notebook" (60 GB): use at least 60`},
		{map[string]any{"image": "spacy-gpu"}, `the image family "spacy-gpu" does not exist in project workshop-123`},
	} {
		rt := map[string]any{"machine_type": "n1-standard-4", "gpu_type": "nvidia-tesla-t4", "gpu_count": 1,
			"zones": []string{"us-central1-a"}, "image": "cohort-notebook", "disk_gb": 100}
		maps.Copy(rt, tt.runtime)
		_, err := teacher.CreateClass(ctx, map[string]any{"name": "GPU class", "runtime": rt})
		if cohort.ErrorCode(err) != cohort.EINVALID || !strings.Contains(cohort.ErrorMessage(err), tt.want) {
			t.Errorf("class with runtime %v = %v, want %q", tt.runtime, err, tt.want)
		}
	}
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
	if out := runKernel(t, srv.notebook(s.ID), teacher.Token, "print(6*7)"); out != "42\n" {
		t.Fatalf("kernel on the GCE path printed %q", out)
	}
	if _, err := teacher.StopSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, teacher, s.ID, cohort.StateStopped)
	if len(fake.Leftovers()) != 0 {
		t.Fatalf("left in the cloud after stop: %+v", fake.Leftovers())
	}
	// The participant's work disk stays for their next session, until
	// the class goes.
	if d := fake.Disks(); len(d) != 1 {
		t.Fatalf("work disks after the stop: %v, want the participant's", d)
	}
	if err := teacher.DeleteClass(ctx, class.ID); err != nil {
		t.Fatal(err)
	}
	if d := fake.Disks(); len(d) != 0 {
		t.Fatalf("work disks after the class was deleted: %v", d)
	}
}

// startFakeGCE serves the fake gcp provider; its VMs boot a real Jupyter.
func startFakeGCE(t testing.TB) *gcptest.Fake {
	t.Helper()
	root, _ := filepath.Abs("../..")
	if _, err := os.Stat(filepath.Join(root, "bin", "pulumi")); err != nil {
		t.Fatal("bin/pulumi is missing: run `make pulumi` (make test does)")
	}
	fake, err := gcptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)
	fake.BootAgents(agent.Options{Home: t.TempDir()}, t.Cleanup)
	return fake
}

// gceEnv configures `cohort serve` for the fake's project with the
// settings the installation's program (infra/foundation) gives the control
// plane: its subnetwork and the session VMs' account.
func gceEnv(t testing.TB, fake *gcptest.Fake) []string {
	root, _ := filepath.Abs("../..")
	env := []string{"COHORT_DRIVER=gce", "COHORT_GCE_PROJECT=workshop-123",
		"COHORT_PULUMI_ROOT=" + root, "PULUMI_DEBUG_PROVIDERS=" + fake.DebugProviders(), "PULUMI_HOME=" + t.TempDir(),
		"COHORT_GCE_COMPUTE_ENDPOINT=" + fake.ComputeURL()}
	for _, kv := range strings.Split(foundationEnv(t), "\n") {
		if strings.HasPrefix(kv, "COHORT_GCE_SUBNETWORK=") || strings.HasPrefix(kv, "COHORT_GCE_SESSION_ACCOUNT=") {
			env = append(env, kv)
		}
	}
	if len(env) != 8 {
		t.Fatalf("the foundation's settings lack the subnetwork or the session account: %v", env)
	}
	return env
}

var foundation struct {
	once sync.Once
	env  string
	err  error
}

// foundationEnv installs cohort in the fake project once (pulumi up of the
// root project's program, on a fake of its own) and returns the control
// plane's environment it outputs.
func foundationEnv(t testing.TB) string {
	foundation.once.Do(func() {
		fake, err := gcptest.Start()
		if err != nil {
			foundation.err = err
			return
		}
		defer fake.Stop()
		fake.Latency = 0
		root, _ := filepath.Abs("../..")
		dir, err := os.MkdirTemp("", "cohort-foundation-")
		if err != nil {
			foundation.err = err
			return
		}
		defer os.RemoveAll(dir)
		_, up, err := fake.Up(context.Background(), root, dir, installation.Program(installation.Config{Project: "workshop-123", Region: "us-central1",
			Domain: "cohort.example.org", NotebookDomain: "example-notebooks.org", OAuthClientID: "id", OAuthClientSecret: pulumi.String("secret")}))
		foundation.err = err
		foundation.env, _ = up.Outputs["controlPlaneEnv"].Value.(string)
	})
	if foundation.err != nil {
		t.Fatalf("install cohort in the fake project: %v", foundation.err)
	}
	return foundation.env
}

// TestE2EGCEKilledMidUpdate kills cohort while the engine creates a
// session's VM. GCE finishes the create anyway; the engine dies with
// cohort and leaves its lock and a pending create. After a restart the
// lock is recovered, the VM found and adopted rather than created twice,
// and the cloud holds exactly what the store says should run.
func TestE2EGCEKilledMidUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := midUpdate(t, 3*time.Second)
	fake, dataDir, env, srv, tok, s := u.fake, u.dataDir, u.env, u.srv, u.tok, u.session
	srv.kill()
	waitFor(t, "GCE to finish the create", func() bool { return fake.CreatesInFlight() == 0 })
	if n := len(fake.Instances()); n != 1 {
		t.Fatalf("%d instances exist after the kill, want the one GCE finished", n)
	}
	if len(lockFiles(dataDir)) == 0 {
		t.Fatal("the killed update left no lock; the test proves nothing")
	}

	srv = startServer(t, dataDir, env...)
	teacher := client.New(srv.url, tok)
	waitState(t, teacher, s.ID, cohort.StateReady)
	if !strings.Contains(srv.log.String(), "removed a stale lock") {
		t.Errorf("the restart did not say it repaired the stack:\n%s", srv.log)
	}
	vms := fake.Instances()
	if len(vms) != 1 || vms[0].Inputs["name"] != gce.InstanceName(s.ID) {
		t.Fatalf("instances after the restart = %+v, want only %s", vms, gce.InstanceName(s.ID))
	}
	if out := runKernel(t, srv.notebook(s.ID), tok, "print(6*7)"); out != "42\n" {
		t.Fatalf("kernel printed %q", out)
	}
	if _, err := teacher.StopSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, teacher, s.ID, cohort.StateStopped)
	if inv := fake.Leftovers(); len(inv) != 0 {
		t.Fatalf("left in the cloud after stop: %+v", inv)
	}
	if locks := lockFiles(dataDir); len(locks) != 0 {
		t.Fatalf("locks left: %v", locks)
	}
}

// TestE2EGCEStopsGracefullyMidUpdate: cohort told to stop (SIGTERM)
// while GCE creates a seat's VM interrupts its engine, which finishes the
// create and releases the stack's lock: nothing is left to repair, and
// after a restart the seat is ready on the VM that was made.
func TestE2EGCEStopsGracefullyMidUpdate(t *testing.T) {
	t.Parallel()
	// Longer than cohort waits for jobs before it interrupts them, and
	// than the 10 s it used to wait before exiting with the engine killed.
	u := midUpdate(t, 20*time.Second)
	fake, dataDir, env, srv, tok, s := u.fake, u.dataDir, u.env, u.srv, u.tok, u.session
	if len(lockFiles(dataDir)) == 0 {
		t.Fatal("no lock while the update runs; the test proves nothing")
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- srv.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("cohort stopped with %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("cohort did not stop within 2 minutes of SIGTERM")
	}
	if locks := lockFiles(dataDir); len(locks) != 0 {
		t.Fatalf("a graceful stop left the locks %v", locks)
	}
	if n := len(fake.Instances()); n != 1 {
		t.Fatalf("%d instances after the stop, want the one whose create was under way", n)
	}

	srv = startServer(t, dataDir, env...)
	teacher := client.New(srv.url, tok)
	waitState(t, teacher, s.ID, cohort.StateReady)
	if vms := fake.Instances(); len(vms) != 1 || vms[0].Inputs["name"] != gce.InstanceName(s.ID) {
		t.Fatalf("instances after the restart = %+v, want only %s", vms, gce.InstanceName(s.ID))
	}
	if strings.Contains(srv.log.String(), "removed a stale lock") {
		t.Fatalf("the restart repaired a stack:\n%s", srv.log)
	}
}

// update is cohort on the fake GCE, a seat's VM being created.
type update struct {
	fake         *gcptest.Fake
	dataDir, tok string
	env          []string
	srv          *server
	session      *client.Session
}

// midUpdate starts cohort on a fake GCE whose creates take latency, and a
// seat, and returns once GCE works on the seat's VM.
func midUpdate(t *testing.T, latency time.Duration) update {
	t.Helper()
	u := update{fake: startFakeGCE(t), dataDir: t.TempDir()}
	u.fake.Latency = latency
	u.env = gceEnv(t, u.fake)
	u.srv = startServer(t, u.dataDir, u.env...)
	u.tok = token(t, u.dataDir, "teacher@example.com", cohort.RoleInstructor)
	teacher := client.New(u.srv.url, u.tok)
	class, err := teacher.CreateClass(context.Background(), map[string]any{"name": "mid-update"})
	if err != nil {
		t.Fatal(err)
	}
	if u.session, _, err = teacher.StartSession(context.Background(), class.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the VM's create to begin", func() bool { return u.fake.CreatesInFlight() > 0 })
	return u
}

// lockFiles lists the stack locks in the data dir's file:// backend.
func lockFiles(dataDir string) []string { return stateLocks(filepath.Join(dataDir, "pulumi-state")) }

// stateLocks lists the stack locks in a file:// backend.
func stateLocks(state string) []string {
	var locks []string
	filepath.WalkDir(filepath.Join(state, ".pulumi", "locks"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			locks = append(locks, path)
		}
		return nil
	})
	return locks
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2EGCEStartAllSeats: an instructor starts every seat of a class at
// once; the seats go up batched in shard stacks, each reaches its own
// notebook, and stop-all leaves nothing in the cloud.
func TestE2EGCEStartAllSeats(t *testing.T) {
	t.Parallel()
	fake := startFakeGCE(t)
	fake.Latency = time.Second
	ctx := context.Background()
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, gceEnv(t, fake)...)
	teacher := client.New(srv.url, token(t, dataDir, "teacher@example.com", cohort.RoleInstructor))
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "start all"})
	if err != nil {
		t.Fatal(err)
	}
	var roster []string
	for i := range 6 {
		roster = append(roster, fmt.Sprintf("p%d@example.org", i))
	}
	if _, err := teacher.AddMembers(ctx, class.ID, roster, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	r, err := teacher.StartAll(ctx, class.ID)
	if err != nil || r.Started != 6 {
		t.Fatalf("start-all = %+v, %v", r, err)
	}
	seats, err := teacher.ListSessions(ctx, class.ID)
	if err != nil || len(seats) != 6 {
		t.Fatalf("sessions = %d, %v", len(seats), err)
	}
	for _, s := range seats {
		waitState(t, teacher, s.ID, cohort.StateReady)
	}
	if n := len(fake.Instances()); n != 6 {
		t.Fatalf("%d instances for 6 seats", n)
	}
	shards, _ := filepath.Glob(filepath.Join(dataDir, "pulumi-work", "*"))
	if len(shards) == 0 || len(shards) > 3 {
		t.Fatalf("%d shard stacks for 6 seats started at once, want them batched", len(shards))
	}
	if n, err := teacher.StopAll(ctx, class.ID); err != nil || n != 6 {
		t.Fatalf("stop-all = %d, %v", n, err)
	}
	for _, s := range seats {
		waitState(t, teacher, s.ID, cohort.StateStopped)
	}
	if inv := fake.Leftovers(); len(inv) != 0 {
		t.Fatalf("left in the cloud after stop-all: %+v", inv)
	}
}

// TestE2EGCEWarmSeats: a class that opens at T with 3 seats warm from
// T-15m (moved close to now: 30 s): no VM before the window, 3 VMs from it;
// participants who start once the class opens get ready seats at once
// (no engine run between their click and the answer), whose VMs then
// carry their owner's label; the pool shrinks to who is left to arrive;
// at the window's end the unclaimed seats are gone, and the next
// participant has a cold start.
func TestE2EGCEWarmSeats(t *testing.T) {
	t.Parallel()
	fake := startFakeGCE(t)
	fake.Latency = time.Second
	ctx := context.Background()
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, gceEnv(t, fake)...)
	teacher := client.New(srv.url, token(t, dataDir, "teacher@example.com", cohort.RoleInstructor))
	var roster []string
	participants := make([]*client.Client, 4)
	for i := range participants {
		roster = append(roster, fmt.Sprintf("p%d@example.org", i))
		participants[i] = client.New(srv.url, token(t, dataDir, roster[i], cohort.RoleParticipant))
	}
	now := time.Now().UTC().Truncate(time.Second)
	// Margins for a loaded machine: the seats boot before the opening,
	// the refill is made well before the window's end.
	from, opens, until := now.Add(10*time.Second), now.Add(40*time.Second), now.Add(100*time.Second)
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "warm GCE", "policy": map[string]any{
		"starts_at": opens, "warm": map[string]any{"seats": 3, "from": from, "until": until}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := teacher.AddMembers(ctx, class.ID, roster, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Instances()); n != 0 || time.Now().After(from) {
		t.Fatalf("%d VMs before the warm window (or the test was too slow to see)", n)
	}
	var pool *cohort.WarmPool
	waitFor(t, "3 warm seats ready", func() bool {
		pool, err = teacher.WarmPool(ctx, class.ID)
		return err == nil && pool.Ready == 3
	})
	t.Logf("3 warm seats ready %s after the window opened", time.Since(from).Round(100*time.Millisecond))
	if n := len(fake.Instances()); n != 3 {
		t.Fatalf("%d VMs for 3 warm seats", n)
	}
	time.Sleep(time.Until(opens))
	creates := fake.Creates()
	var got []*client.Session
	for i := range 2 {
		begin := time.Now()
		s, created, err := participants[i].StartSession(ctx, class.ID)
		if err != nil || !created || s.State != cohort.StateReady || s.ClaimedAt == nil {
			t.Fatalf("p%d: %v, %s, claimed %v; want a ready warm seat", i, err, s.State, s.ClaimedAt)
		}
		t.Logf("p%d: ready seat in %s", i, time.Since(begin).Round(time.Millisecond))
		got = append(got, s)
	}
	if fake.Creates() != creates {
		t.Fatalf("claims created VMs: %d creates, before %d", fake.Creates(), creates)
	}
	if out := runKernel(t, srv.notebook(got[0].ID), participants[0].Token, "print(6*7)"); out != "42\n" {
		t.Fatalf("kernel on a claimed GCE seat printed %q", out)
	}
	waitFor(t, "the claimed VMs labelled with their owners", func() bool {
		owners := 0
		for _, vm := range fake.Instances() {
			labels, _ := vm.Inputs["labels"].(map[string]any)
			if labels["cohort-owner"] == "p0-example-org" || labels["cohort-owner"] == "p1-example-org" {
				owners++
			}
		}
		return owners == 2
	})
	// Two are left to arrive: the pool holds two (one refill).
	waitFor(t, "the pool at 2", func() bool {
		pool, err = teacher.WarmPool(ctx, class.ID)
		return err == nil && pool.Ready+pool.Starting == 2 && len(fake.Instances()) == 4
	})
	time.Sleep(time.Until(until))
	waitFor(t, "the unclaimed seats gone at the window's end", func() bool {
		pool, err = teacher.WarmPool(ctx, class.ID)
		return err == nil && pool.Ready+pool.Starting == 0 && len(fake.Instances()) == 2
	})
	s, _, err := participants[2].StartSession(ctx, class.ID)
	if err != nil || s.ClaimedAt != nil || s.State == cohort.StateReady {
		t.Fatalf("after the window: %v, %s, claimed %v; want a cold start", err, s.State, s.ClaimedAt)
	}
	if pool, err = teacher.WarmPool(ctx, class.ID); err != nil || pool.Claimed != 2 || pool.ColdStarts != 1 {
		t.Fatalf("pool at the end: %+v, %v", pool, err)
	}
	if _, err := teacher.StopAll(ctx, class.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "nothing left in the cloud", func() bool { return len(fake.Leftovers()) == 0 })
}
