package timeouts_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/materials"
	"github.com/cohortdev/cohort/materials/materialstest"
	"github.com/cohortdev/cohort/timeouts"
)

// keeper is the kernels driver keeping work: it records what it deletes.
type keeper struct {
	*kernels
	mu      sync.Mutex
	kept    map[string]bool // classes with work
	deleted []string
}

func (k *keeper) WorkClasses(context.Context) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ids []string
	for id := range k.kept {
		ids = append(ids, id)
	}
	return ids, nil
}

func (k *keeper) DeleteWork(_ context.Context, classID string) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	had := k.kept[classID]
	if had {
		k.deleted = append(k.deleted, classID)
	}
	delete(k.kept, classID)
	return had, nil
}

// TestWorkIsDeletedAfterItsRetention: a class's work goes once its end
// and its retention have passed and none of its sessions runs; a class
// with no end, or still within its retention, keeps its work.
func TestWorkIsDeletedAfterItsRetention(t *testing.T) {
	t.Parallel()
	ends := t0.Add(3 * time.Hour)
	w := newWorld(t, func(p *cohort.Policy) { p.EndsAt = &ends; p.KeepWork = cohort.Duration(48 * time.Hour) })
	ended := w.class
	running := w.readySession("ada@example.com") // still running past the end (a stop that failed)
	endless := cohort.DefaultClass()
	endless.Name, endless.OwnerID = "no end", ended.OwnerID
	if err := w.store.CreateClass(context.Background(), &endless); err != nil {
		t.Fatal(err)
	}
	k := &keeper{kernels: w.kernels, kept: map[string]bool{ended.ID: true, endless.ID: true, "cls_gone": true}}
	sweeper := timeouts.New(timeouts.Options{Store: w.store, Driver: k, Enqueuer: w.queue, Now: func() time.Time { return w.now }})
	sweep := func(at time.Duration) []string {
		t.Helper()
		w.now = ends.Add(at)
		st, err := sweeper.Sweep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st.WorkDeleted
	}
	if got := sweep(47 * time.Hour); !slices.Equal(got, []string{"cls_gone"}) {
		t.Fatalf("within the retention, deleted %v; want only the work of a class that is gone", got)
	}
	if got := sweep(49 * time.Hour); len(got) != 0 {
		t.Fatalf("with a session of the class still active, deleted %v", got)
	}
	stopped := w.session(running.ID) // the sweep asked for its stop: it ends
	stopped.State = cohort.StateStopped
	if err := w.store.UpdateSession(context.Background(), stopped, nil); err != nil {
		t.Fatal(err)
	}
	if got := sweep(49*time.Hour + time.Minute); len(got) != 0 {
		t.Fatalf("a minute after the last look (looks are %s apart), deleted %v", 10*time.Minute, got)
	}
	if got := sweep(50 * time.Hour); !slices.Equal(got, []string{ended.ID}) {
		t.Fatalf("after the retention, deleted %v; want only the ended class %s", got, ended.ID)
	}
	if got := sweep(60 * time.Hour); len(got) != 0 || !k.kept[endless.ID] {
		t.Fatalf("later, deleted %v (the class with no end must keep its work: %v)", got, k.kept)
	}
}

// TestSweepPrunesMaterials: an hourly sweep prunes the materials versions
// no class has and no session was given for a week, through a real
// library; the class's own version stays.
func TestSweepPrunesMaterials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, func(*cohort.Policy) {})
	now := time.Now() // the versions' files are written at the real time
	lib, err := materials.New(materials.Options{Dir: t.TempDir(), AllowLocal: true, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	repo := materialstest.NewRepo(t, map[string]string{"a.ipynb": "1"})
	old, err := lib.Fetch(ctx, repo.Dir, "main", "")
	if err != nil {
		t.Fatal(err)
	}
	repo.Commit(map[string]string{"a.ipynb": "2"})
	m, err := lib.Fetch(ctx, repo.Dir, "main", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.SetMaterials(ctx, w.class.ID, m); err != nil {
		t.Fatal(err)
	}
	sweeper := timeouts.New(timeouts.Options{Store: w.store, Driver: w.kernels, Enqueuer: w.queue, Materials: lib, Now: func() time.Time { return now }})
	sweep := func(after time.Duration) int {
		t.Helper()
		now = now.Add(after)
		st, err := sweeper.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.VersionsPruned
	}
	if n := sweep(time.Hour); n != 0 {
		t.Fatalf("an hour after the push, pruned %d versions", n)
	}
	if n := sweep(7 * 24 * time.Hour); n != 1 {
		t.Fatalf("a week later, pruned %d versions; want the one no class has", n)
	}
	if _, err := lib.Open(old.Version); cohort.ErrorCode(err) != cohort.ENOTFOUND {
		t.Errorf("the old version: %v", err)
	}
	if f, err := lib.Open(m.Version); err != nil {
		t.Errorf("the class's version was pruned: %v", err)
	} else {
		f.Close()
	}
	// The class leaves its materials: its version is nobody's now, and
	// goes at the next prune, an hour after the last.
	if err := w.store.SetMaterials(ctx, w.class.ID, nil); err != nil {
		t.Fatal(err)
	}
	if n := sweep(30 * time.Minute); n != 0 {
		t.Fatalf("half an hour after a prune (prunes are an hour apart), pruned %d", n)
	}
	if n := sweep(31 * time.Minute); n != 1 {
		t.Fatalf("an hour after the last prune, pruned %d versions; want the class's former one", n)
	}
}
