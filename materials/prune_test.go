package materials

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/materials/materialstest"
)

// Prune deletes the versions and clones no class needs and no session
// used lately, and nothing else.
func TestPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Files are written at the real time: the clock starts there.
	now := time.Now()
	l, err := New(Options{Dir: t.TempDir(), AllowLocal: true, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	current := materialstest.NewRepo(t, map[string]string{"a.ipynb": "1"})
	old, err := l.Fetch(ctx, current.Dir, "main", "")
	if err != nil {
		t.Fatal(err)
	}
	current.Commit(map[string]string{"a.ipynb": "2"})
	m, err := l.Fetch(ctx, current.Dir, "main", "")
	if err != nil {
		t.Fatal(err)
	}
	gone := materialstest.NewRepo(t, map[string]string{"b.ipynb": "1"}) // a class named it once
	goneVersion, err := l.Fetch(ctx, gone.Dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	archive, err := l.AddArchive("w.zip", bytes.NewReader(materialstest.Zip(t, map[string]string{"c.txt": "c"})))
	if err != nil {
		t.Fatal(err)
	}
	classes := []*cohort.Class{{ID: "cls_a", Materials: m}, {ID: "cls_b", Materials: archive}}

	recent := materialstest.NewRepo(t, map[string]string{"d.ipynb": "1"}) // no class's, looked up lately
	// A week later: a session was given the old version just now, and a
	// lookup used recent's clone; the rest was last used a week ago (the
	// classes' own are kept however old).
	weekAgo := now
	now = now.Add(7 * 24 * time.Hour)
	l.stored(old.Version)
	if _, err := l.Fetch(ctx, recent.Dir, "", ""); err != nil {
		t.Fatal(err)
	}
	past := weekAgo.Add(time.Hour)
	versions, clones, err := l.Prune(ctx, classes, past)
	if err != nil || versions != 1 || clones != 1 {
		t.Fatalf("Prune = %d versions, %d clones, %v; want the unnamed repository's version and clone", versions, clones, err)
	}
	if _, err := os.Stat(l.path(goneVersion.Version)); !os.IsNotExist(err) {
		t.Errorf("the version of a repository no class names is still there: %v", err)
	}
	if _, err := os.Stat(l.clone(gone.Dir)); !os.IsNotExist(err) {
		t.Errorf("the clone of a repository no class names is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(l.clone(recent.Dir), "HEAD")); err != nil {
		t.Errorf("the clone of a repository looked up lately was deleted: %v", err)
	}
	// Later still, the old version and recent's are nobody's and unused
	// since: they go.
	versions, _, err = l.Prune(ctx, classes, now.Add(time.Hour))
	if err != nil || versions != 2 {
		t.Fatalf("Prune later = %d versions, %v; want the old one and recent's", versions, err)
	}
	for _, v := range []string{m.Version, archive.Version} {
		if _, err := os.Stat(l.path(v)); err != nil {
			t.Errorf("a class's version %s was deleted: %v", v, err)
		}
	}
	if _, err := os.Stat(l.path(old.Version)); !os.IsNotExist(err) {
		t.Errorf("the old version is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(l.clone(current.Dir), "HEAD")); err != nil {
		t.Errorf("the clone of a class's repository was deleted: %v", err)
	}
	// A repository pruned is fetched again when a class names it.
	if _, err := l.Fetch(ctx, gone.Dir, "", ""); err != nil {
		t.Errorf("fetch after its clone was pruned: %v", err)
	}
}
