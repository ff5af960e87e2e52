package materials

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cohortdev/cohort/materials/materialstest"
)

// workshop is a workshop's materials: n files of about 20 KB (notebooks,
// configs, a little data).
func workshop(n int) map[string]string {
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("part%d/notebook%d.ipynb", i%5, i)] = strings.Repeat(fmt.Sprintf("cell %d\n", i), 2500)
	}
	return files
}

// BenchmarkSessionStart is what materials add to a session's start: the
// lookup of the branch (unchanged: ls-remote alone; after a push: a
// fetch too), and the merge into a
// participant's folder (the first, and one with nothing new).
func BenchmarkSessionStart(b *testing.B) {
	ctx := context.Background()
	repo := materialstest.NewRepo(b, workshop(50))
	l, err := New(Options{Dir: b.TempDir(), AllowLocal: true})
	if err != nil {
		b.Fatal(err)
	}
	m, err := l.Fetch(ctx, repo.Dir, "main")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("lookup/unchanged", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := l.Snapshot(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lookup/after-a-push", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			repo.Commit(map[string]string{"config.cfg": fmt.Sprintf("epochs = %d", i)})
			b.StartTimer()
			if _, _, err := l.Snapshot(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	snap, _, err := l.Snapshot(ctx, m)
	if err != nil {
		b.Fatal(err)
	}
	merge := func(b *testing.B, dir string) {
		root, err := os.OpenRoot(dir)
		if err != nil {
			b.Fatal(err)
		}
		defer root.Close()
		if _, err := Merge(root, snap); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("merge/first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			dir := b.TempDir()
			b.StartTimer()
			merge(b, dir)
		}
	})
	b.Run("merge/nothing-new", func(b *testing.B) {
		dir := b.TempDir()
		merge(b, dir)
		for b.Loop() {
			merge(b, dir)
		}
	})
}
