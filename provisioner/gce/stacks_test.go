package gce_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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
func newStacks(t testing.TB, mods ...func(*gce.StackOptions)) (*gce.Stacks, *gcptest.Fake) {
	t.Helper()
	fake, err := gcptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)
	dir := t.TempDir()
	opts := gce.StackOptions{
		WorkRoot: filepath.Join(dir, "work"), StateURL: "file://" + filepath.Join(dir, "state"), Passphrase: "test",
		PulumiRoot: repoRoot(t),
		Env:        map[string]string{"PULUMI_DEBUG_PROVIDERS": fake.DebugProviders(), "PULUMI_HOME": filepath.Join(dir, "home")},
	}
	for _, mod := range mods {
		mod(&opts)
	}
	s, err := gce.NewStacks(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, fake
}

func spec(id string) infra.SessionSpec {
	return infra.SessionSpec{
		Project: "workshop-123", Zone: "us-central1-a", Name: gce.InstanceName(id), SessionID: id, ClassID: "cls_x", Owner: "ada@example.org",
		MachineType: "n1-standard-4", GPUType: "nvidia-tesla-t4", GPUCount: 1,
		Image: "projects/workshop-123/global/images/family/cohort-notebook", DiskGB: 100, MaxRunDuration: 13 * time.Hour,
		Subnetwork: subnet, NetworkTag: "cohort-session", ServiceAccount: "cohort-session@workshop-123.iam.gserviceaccount.com",
		NotebookToken: "tok", BasePath: "/",
		SchedulerRegion: "us-central1", SchedulerAccount: "sched@workshop-123.iam.gserviceaccount.com", Audience: "https://cohort.example.org",
		ExpireURL: "https://cohort.example.org/v1/scheduler/sessions/" + id + "/expire", HardDeadline: time.Now().Add(12 * time.Hour),
	}
}

func TestStacksUpdateReportsEachSession(t *testing.T) {
	t.Parallel()
	stacks, fake := newStacks(t)
	fake.Stockout("us-central1-b", true)
	ctx := context.Background()
	inB := spec("ses_b")
	inB.Zone = "us-central1-b"
	rep, err := stacks.Update(ctx, "cls-x-1", []infra.SessionSpec{spec("ses_a"), inB}, nil)
	if err == nil {
		t.Fatal("an update with a failed create reported success")
	}
	if a := rep.Exists["ses_a"]; a.Zone != "us-central1-a" || a.InternalIP != fake.InternalIP || a.Instance != "cohort-ses-a" {
		t.Fatalf("ses_a: %+v (the stockout of another session's zone must not hold it up)", rep.Exists)
	}
	if _, ok := rep.Exists["ses_b"]; ok || gce.Classify(rep.Failed["ses_b"]).Kind != gce.FailStockout {
		t.Fatalf("ses_b: exists %v, failure %v", rep.Exists, rep.Failed["ses_b"])
	}
	if len(rep.Failed) != 1 {
		t.Fatalf("failures %v, want only ses_b's", rep.Failed)
	}
	if got, err := stacks.State(ctx, "cls-x-1"); err != nil || len(got) != 1 {
		t.Fatalf("State = %v, %v", got, err)
	}
	if err := stacks.Remove(ctx, "cls-x-1"); err != nil {
		t.Fatal(err)
	}
	if inv := fake.Inventory(); len(inv) != 0 {
		t.Fatalf("inventory after remove = %+v", inv)
	}
	if got, err := stacks.State(ctx, "cls-x-1"); err != nil || len(got) != 0 {
		t.Fatalf("State after remove = %v, %v", got, err)
	}
}

// TestStacksKeepTokensSecret: a notebook token is in no file of the
// state backend or the workspace, only encrypted.
func TestStacksKeepTokensSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stacks, fake := newStacks(t, func(o *gce.StackOptions) {
		o.StateURL, o.WorkRoot = "file://"+filepath.Join(dir, "state"), filepath.Join(dir, "work")
	})
	sp := spec("ses_tok")
	sp.NotebookToken = "nbtok-4f1c9a7e2d"
	if _, err := stacks.Update(context.Background(), "cls-x-1", []infra.SessionSpec{sp}, nil); err != nil {
		t.Fatal(err)
	}
	if vms := fake.Instances(); len(vms) != 1 || vms[0].Inputs["metadata"].(map[string]any)["cohort-notebook-token"] != sp.NotebookToken {
		t.Fatalf("the VM did not get its token: %+v", vms)
	}
	files := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if strings.Contains(string(b), sp.NotebookToken) {
			t.Errorf("%s holds the notebook token in plain text", path)
		}
		return nil
	})
	if files == 0 {
		t.Fatal("no state was written; the test proves nothing")
	}
}

// TestStacksOpenedTwiceAtOnce opens a stack that does not exist yet from
// two callers at once, as a shard's update and a reconcile's state read
// do: both find it missing and try to create it; neither may fail.
func TestStacksOpenedTwiceAtOnce(t *testing.T) {
	t.Parallel()
	stacks, _ := newStacks(t)
	ctx := context.Background()
	if err := os.MkdirAll(stacks.WorkDir("cls-x-1"), 0o700); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := stacks.State(ctx, "cls-x-1"); errs <- err }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
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
	work := stacks.WorkDir("shard")
	done := make(chan error, 1)
	go func() {
		_, err := stacks.Update(context.Background(), "shard", []infra.SessionSpec{spec("ses_kill")}, nil)
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

	rep, err := stacks.Update(context.Background(), "shard", []infra.SessionSpec{spec("ses_kill")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if vms := fake.Instances(); len(vms) != 1 || rep.Exists["ses_kill"].Instance != "cohort-ses-kill" {
		t.Fatalf("after the repair: %+v, instances %+v", rep.Exists, vms)
	}
	if err := stacks.Remove(context.Background(), "shard"); err != nil {
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

// TestStacksWaitForALiveLock: a lock whose pulumi process runs on this
// host is another operation's, not a crash's: it is waited for and never
// removed; a lock whose pid another program reuses is stale.
func TestStacksWaitForALiveLock(t *testing.T) {
	t.Parallel()
	var state string
	stacks, fake := newStacks(t, func(o *gce.StackOptions) {
		o.LockWait, state = 2*time.Second, strings.TrimPrefix(o.StateURL, "file://")
	})
	ctx := context.Background()
	if _, err := stacks.Update(ctx, "held", nil, nil); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	lock := filepath.Join(state, ".pulumi", "locks", "organization", "cohort-sessions", "held", "other.json")
	if err := os.MkdirAll(filepath.Dir(lock), 0o700); err != nil {
		t.Fatal(err)
	}
	// A live pulumi process: sleep, under that name.
	bin := filepath.Join(t.TempDir(), "pulumi")
	if err := os.Symlink("/bin/sleep", bin); err != nil {
		t.Fatal(err)
	}
	engine := exec.Command(bin, "60")
	if err := engine.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Process.Kill(); engine.Wait() })
	write := func(pid int) {
		body := fmt.Sprintf(`{"pid":%d,"username":"root","hostname":%q,"timestamp":"2026-11-26T12:00:00Z"}`, pid, host)
		if err := os.WriteFile(lock, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(engine.Process.Pid)
	start := time.Now()
	_, err := stacks.Update(ctx, "held", []infra.SessionSpec{spec("ses_held")}, nil)
	if err == nil || time.Since(start) < 2*time.Second {
		t.Fatalf("Update on a stack another live process holds = %v after %s, want a wait, then the lock error", err, time.Since(start))
	}
	if _, err := os.Stat(lock); err != nil {
		t.Fatalf("a live process's lock was removed: %v", err)
	}
	if n := len(fake.Instances()); n != 0 {
		t.Fatalf("%d instances made under another operation's lock", n)
	}
	// A live process that is not pulumi took the crashed engine's pid (a
	// restarted container): the lock is stale.
	write(os.Getpid())
	if _, err := stacks.Update(ctx, "held", []infra.SessionSpec{spec("ses_held")}, nil); err != nil {
		t.Fatalf("Update under a lock whose pid is not pulumi's = %v", err)
	}
	if n := len(fake.Instances()); n != 1 {
		t.Fatalf("%d instances after the stale lock went, want 1", n)
	}
}

func TestNewStacksChecksTheSecretsProvider(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := gce.StackOptions{WorkRoot: filepath.Join(dir, "work"), StateURL: "file://" + filepath.Join(dir, "state"), PulumiRoot: repoRoot(t)}
	for provider, want := range map[string]string{
		"":                 "needs a passphrase",
		"passphrase":       "needs a passphrase",
		"awskms://alias/x": `"awskms://alias/x" is neither passphrase nor gcpkms://`,
		"gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k": "",
	} {
		opts.SecretsProvider = provider
		_, err := gce.NewStacks(opts)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("secrets provider %q: %v, want %q", provider, err, want)
		}
	}
}
