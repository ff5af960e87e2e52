package provisioner_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/store/sqlite"
)

// bootingDriver reports a start's progress as a VM's boot would, one
// observation per Inspect.
type bootingDriver struct {
	cohort.Driver
	steps     []string
	seen      int
	deadlines []time.Time // the spec's deadline at each Inspect
}

func (d *bootingDriver) Inspect(_ context.Context, spec cohort.NotebookSpec) (cohort.Instance, error) {
	d.deadlines = append(d.deadlines, spec.Deadline)
	step := d.steps[min(d.seen, len(d.steps)-1)]
	d.seen++
	if step == "ready" {
		return cohort.Instance{State: cohort.InstanceReady, Address: "http://10.0.0.2:8888"}, nil
	}
	return cohort.Instance{State: cohort.InstanceStarting, Progress: step}, nil
}

func (d *bootingDriver) Name() string      { return "fake" }
func (d *bootingDriver) FilesNote() string { return "" }

// newSession stores a session like s in a class of its own, in a store of
// its own.
func newSession(t *testing.T, s *cohort.Session) (*sqlite.Store, *cohort.Class, *cohort.Session) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cohort.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	u, err := store.EnsureUser(ctx, "ada@example.org", cohort.RoleInstructor)
	if err != nil {
		t.Fatal(err)
	}
	c := cohort.DefaultClass()
	c.Name, c.OwnerID = "reconcile", u.ID
	if err := store.CreateClass(ctx, &c); err != nil {
		t.Fatal(err)
	}
	s.ID, s.ClassID, s.UserID, s.Driver, s.NotebookToken = cohort.NewID("ses"), c.ID, u.ID, "fake", "t"
	s, _, err = store.StartSession(ctx, s, 10)
	if err != nil {
		t.Fatal(err)
	}
	return store, &c, s
}

// TestReconcileRecordsBootProgress: what the driver observes of a start
// becomes the participant's events, each step once.
func TestReconcileRecordsBootProgress(t *testing.T) {
	ctx := context.Background()
	store, c, s := newSession(t, &cohort.Session{State: cohort.StateProvisioning})
	d := &bootingDriver{steps: []string{"booting the VM", "booting the VM", "the VM is up; starting Jupyter", "the VM is up; starting Jupyter", "ready"}}
	now := time.Now()
	r := provisioner.New(provisioner.Options{Store: store, Driver: d, Now: func() time.Time { return now },
		Timing: provisioner.Timing{StartTimeout: 15 * time.Minute}})
	for range d.steps {
		if _, err := r.Reconcile(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	events, err := store.ListEvents(ctx, s.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.Message)
	}
	want := []string{"booting the VM", "the VM is up; starting Jupyter", "notebook ready"}
	if len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
		t.Fatalf("events %q, want them to end with %q", got, want)
	}
	// Before it is ready, the latest a session can run is bounded by the
	// start timeout and the class's lifetime: what a driver's own
	// backstop is set to.
	if want := now.Add(15*time.Minute + c.Policy.MaxLifetime.D()); !d.deadlines[0].Equal(want) {
		t.Fatalf("deadline while starting %v, want %v", d.deadlines[0], want)
	}
}

// meddlingDriver observes a ready notebook and, while the pass looks, has
// someone else change the session (a stop request arriving).
type meddlingDriver struct {
	cohort.Driver
	meddle func()
}

func (d *meddlingDriver) Inspect(context.Context, cohort.NotebookSpec) (cohort.Instance, error) {
	if d.meddle != nil {
		d.meddle()
		d.meddle = nil
	}
	return cohort.Instance{State: cohort.InstanceReady, Address: "http://10.0.0.2:8888"}, nil
}

func (d *meddlingDriver) Name() string      { return "fake" }
func (d *meddlingDriver) FilesNote() string { return "" }

// TestReconcileLooksAgainAfterAChange: one job carries a session (jobs),
// so a pass that finds nothing to do asks for another if the session
// changed while it looked; a pass over an unchanged session rests.
func TestReconcileLooksAgainAfterAChange(t *testing.T) {
	ctx := context.Background()
	store, _, s := newSession(t, &cohort.Session{State: cohort.StateReady, Address: "http://10.0.0.2:8888"})
	d := &meddlingDriver{}
	r := provisioner.New(provisioner.Options{Store: store, Driver: d})
	if res, err := r.Reconcile(ctx, s.ID); err != nil || res != (provisioner.Result{}) {
		t.Fatalf("a pass over a ready, unchanged session = %+v, %v; want rest", res, err)
	}
	d.meddle = func() {
		stop, err := store.GetSession(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		stop.State, stop.Reason = cohort.StateStopping, "stopped by ada@example.org"
		if err := store.UpdateSession(ctx, stop, nil); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := r.Reconcile(ctx, s.ID); err != nil || !res.Requeue {
		t.Fatalf("a pass during which the session was asked to stop = %+v, %v; want another pass", res, err)
	}
}
