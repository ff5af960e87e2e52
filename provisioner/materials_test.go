package provisioner_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/materials"
	"github.com/cohortdev/cohort/materials/materialstest"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/seal"
	"github.com/cohortdev/cohort/store/sqlstore"
)

// startingDriver starts every notebook it is asked to, and never sees one
// running: each reconcile of a provisioning session starts it again.
type startingDriver struct {
	cohort.Driver
	starts int
}

func (d *startingDriver) Inspect(context.Context, cohort.NotebookSpec) (cohort.Instance, error) {
	return cohort.Instance{State: cohort.InstanceAbsent}, nil
}
func (d *startingDriver) Start(context.Context, cohort.NotebookSpec) error { d.starts++; return nil }
func (d *startingDriver) Name() string                                     { return "fake" }
func (d *startingDriver) FilesNote() string                                { return "" }

// swapCounter counts the writes of a class's materials a start makes.
type swapCounter struct {
	*sqlstore.Store
	swaps int
}

func (s *swapCounter) SwapMaterials(ctx context.Context, classID string, old, m *cohort.Materials) error {
	s.swaps++
	return s.Store.SwapMaterials(ctx, classID, old, m)
}

// TestStartsShowTheClassAFailedLookup: a repository that refuses the
// class's token (it expired) is shown on the class as its problem, written
// once however many sessions start meanwhile, and cleared by the next
// lookup that succeeds.
func TestStartsShowTheClassAFailedLookup(t *testing.T) {
	ctx := context.Background()
	db, c, s := provisioningSeat(t, nil, "")
	store := &swapCounter{Store: db}
	repo := materialstest.NewRepo(t, map[string]string{"train.ipynb": "{}"})
	srv := materialstest.ServePrivate(t, repo, "x-access-token", "github_pat_1")
	key, _ := seal.ParseKey(seal.NewKeyText())
	lib, err := materials.New(materials.Options{Dir: t.TempDir(), Key: key, CAFile: srv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := lib.Seal(srv.URL, cohort.RepoToken{Token: "github_pat_1"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := lib.Fetch(ctx, srv.URL, "main", cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetMaterials(ctx, c.ID, m); err != nil {
		t.Fatal(err)
	}
	d := &startingDriver{}
	r := provisioner.New(provisioner.Options{Store: store, Driver: d, Materials: lib})
	start := func() *cohort.Materials {
		t.Helper()
		if _, err := r.Reconcile(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		got, err := store.GetClass(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Materials
	}
	if got := start(); got.Problem != "" || store.swaps != 0 {
		t.Fatalf("a lookup that found the version shown: problem %q, %d writes", got.Problem, store.swaps)
	}
	srv.Rotate("github_pat_2") // the class's token expired
	for range 3 {
		if got := start(); !strings.Contains(got.Problem, "refused the token") || got.Version != m.Version {
			t.Fatalf("with the token refused, the class shows %+v", got)
		}
	}
	if store.swaps != 1 {
		t.Errorf("three starts with the token refused wrote the class's materials %d times, want once", store.swaps)
	}
	srv.Rotate("github_pat_1")
	if got := start(); got.Problem != "" || store.swaps != 2 {
		t.Fatalf("after a lookup succeeded again: problem %q, %d writes", got.Problem, store.swaps)
	}
	if d.starts != 5 {
		t.Errorf("the driver started %d notebooks, want 5 (a failed lookup keeps no one from their work)", d.starts)
	}
}
