package materials

import (
	"archive/tar"
	"archive/zip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/materials/materialstest"
	"github.com/cohortdev/cohort/seal"
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
	m, err := l.Fetch(ctx, repo.Dir, "main", "")
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
	// The same over https with a token, as a private repository on a git
	// host (git's own smart HTTP on this machine, TLS and basic auth).
	b.Run("lookup/unchanged-private-https", func(b *testing.B) {
		srv := materialstest.ServePrivate(b, repo, "x-access-token", "github_pat_bench")
		key, _ := seal.ParseKey(seal.NewKeyText())
		l, err := New(Options{Dir: b.TempDir(), Key: key, CAFile: srv.CAFile})
		if err != nil {
			b.Fatal(err)
		}
		cred, err := l.Seal(srv.URL, cohort.RepoToken{Token: "github_pat_bench"})
		if err != nil {
			b.Fatal(err)
		}
		m, err := l.Fetch(ctx, srv.URL, "main", cred)
		if err != nil {
			b.Fatal(err)
		}
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

// BenchmarkWorkZip is a download of a participant's work (50 files, about
// 1 MB): made from the folder (the local driver), and through a tar as a
// GCE session's agent sends it (Tar on the VM, ZipFromTar in cohort).
func BenchmarkWorkZip(b *testing.B) {
	dir := b.TempDir()
	for name, content := range workshop(50) {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			zw := zip.NewWriter(io.Discard)
			if _, err := Zip(ctx, zw, root, "", nil); err != nil {
				b.Fatal(err)
			}
			zw.Close()
		}
	})
	b.Run("through-tar", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pr, pw := io.Pipe()
			go func() {
				tw := tar.NewWriter(pw)
				_, err := Tar(ctx, tw, root, nil)
				if err == nil {
					err = tw.Close()
				}
				pw.CloseWithError(err)
			}()
			zw := zip.NewWriter(io.Discard)
			if _, err := ZipFromTar(ctx, zw, pr, "", nil); err != nil {
				b.Fatal(err)
			}
			zw.Close()
		}
	})
}
