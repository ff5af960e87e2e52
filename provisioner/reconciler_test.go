package provisioner_test

import (
	"cmp"
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/metrics"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/store/sqlite"
	"github.com/cohortdev/cohort/store/sqlstore"
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

// TestReconcileRecordsBootProgress: what the driver observes of a start
// becomes the participant's events, each step once.
func TestReconcileRecordsBootProgress(t *testing.T) {
	ctx := context.Background()
	store, c, s := provisioningSeat(t, nil, "")
	d := &bootingDriver{steps: []string{"booting the VM", "booting the VM", "the VM is up; starting Jupyter", "the VM is up; starting Jupyter", "ready"}}
	now := time.Now()
	m := metrics.New()
	r := provisioner.New(provisioner.Options{Store: store, Driver: d, Now: func() time.Time { return now },
		Timing: provisioner.Timing{StartTimeout: 15 * time.Minute}, Metrics: m})
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
	// The start is timed once, from the request.
	rec := httptest.NewRecorder()
	m.Handler(slog.Default()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `cohort_session_start_seconds_count{driver="fake"} 1`+"\n") {
		t.Fatalf("the start was not timed once:\n%s", rec.Body)
	}
	// Before it is ready, the latest a session can run is bounded by the
	// start timeout and the class's lifetime: what a driver's own
	// backstop is set to.
	if want := now.Add(15*time.Minute + c.Policy.MaxLifetime.D()); !d.deadlines[0].Equal(want) {
		t.Fatalf("deadline while starting %v, want %v", d.deadlines[0], want)
	}
}

// TestWarmSeatsBackstopIsTheWindowsEnd: the deadline a driver's backstop
// gets for an unclaimed warm seat is the end of its class's warm window.
func TestWarmSeatsBackstopIsTheWindowsEnd(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	until := now.Add(2 * time.Hour)
	store, _, s := provisioningSeat(t, &cohort.Warm{Seats: 2, From: &now, Until: &until}, cohort.PoolUserID)
	d := &bootingDriver{steps: []string{"booting the VM"}}
	r := provisioner.New(provisioner.Options{Store: store, Driver: d, Now: func() time.Time { return now }})
	if _, err := r.Reconcile(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	if !d.deadlines[0].Equal(until) {
		t.Fatalf("a warm seat's backstop at %s, want the window's end %s", d.deadlines[0], until)
	}
}

// provisioningSeat makes a store with a class (warm as given) and a
// provisioning seat of owner ("": the class's instructor).
func provisioningSeat(t *testing.T, warm *cohort.Warm, owner string) (*sqlstore.Store, *cohort.Class, *cohort.Session) {
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
	c.Name, c.OwnerID, c.Policy.Warm = "boot", u.ID, warm
	if err := store.CreateClass(ctx, &c); err != nil {
		t.Fatal(err)
	}
	s, _, err := store.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: c.ID, UserID: cmp.Or(owner, u.ID),
		State: cohort.StateProvisioning, Driver: "fake", NotebookToken: "t"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	return store, &c, s
}
