package materials

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/materials/materialstest"
)

func newLibrary(t *testing.T, local bool) *Library {
	t.Helper()
	l, err := New(Options{Dir: t.TempDir(), AllowLocal: local})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFetchAGitRepository(t *testing.T) {
	ctx := context.Background()
	r := materialstest.NewRepo(t, map[string]string{"train.ipynb": "v1", "configs/config.cfg": "[nlp]", "link": "->/etc/passwd"})
	repo := r.Dir
	l := newLibrary(t, true)
	m, err := l.Fetch(ctx, repo, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.Version, "git-") || m.Files != 2 || m.Repo != repo {
		t.Fatalf("Fetch = %+v, want a git version of 2 files (the symlink left out)", m)
	}
	if got := names(t, l, m.Version); !slices.Equal(got, []string{"configs/config.cfg", "train.ipynb"}) {
		t.Fatalf("version holds %v", got)
	}
	r.Tag("v1")
	again, err := l.Fetch(ctx, "file://"+repo, "main", "")
	if err != nil || again.Version != m.Version {
		t.Fatalf("the same commit by file:// and branch = %+v, %v; want %s", again, err, m.Version)
	}
	second := r.Commit(map[string]string{"train.ipynb": "v2"})
	snap, now, err := l.Snapshot(ctx, &cohort.Materials{Repo: repo, Ref: "main", Version: m.Version})
	if err != nil || snap.Version != "git-"+second || now.Version != "git-"+second {
		t.Fatalf("Snapshot after a push = %+v, %+v, %v; want commit %s", snap, now, err, second)
	}
	if pinned, err := l.Fetch(ctx, repo, strings.TrimPrefix(m.Version, "git-"), ""); err != nil || pinned.Version != m.Version {
		t.Fatalf("Fetch of the first commit by its hash = %+v, %v", pinned, err)
	}
	if tagged, err := l.Fetch(ctx, repo, "v1", ""); err != nil || tagged.Version != m.Version {
		t.Fatalf("Fetch of the first commit's annotated tag = %+v, %v; want %s", tagged, err, m.Version)
	}

	for _, tc := range []struct{ repo, ref, field, says string }{
		{repo, "no-such-branch", "materials.ref", "has no branch, tag or commit"},
		{filepath.Join(t.TempDir(), "nothing"), "", "materials.repo", "no git repository"},
		{"http://example.org/x.git", "", "materials.repo", "https://"},
		{"https://user:secret@example.org/x.git", "", "materials.repo", "credentials"},
		{repo, "--upload-pack=touch /tmp/x", "materials.ref", "not a branch"},
		{"-oProxyCommand=x", "", "materials.repo", ""},
	} {
		_, err := l.Fetch(ctx, tc.repo, tc.ref, "")
		if cohort.ErrorField(err) != tc.field || !strings.Contains(cohort.ErrorMessage(err), tc.says) {
			t.Errorf("Fetch(%q, %q) = %v (field %q); want field %s saying %q", tc.repo, tc.ref, err, cohort.ErrorField(err), tc.field, tc.says)
		}
	}
	// A shared server fetches over https only.
	_, err = newLibrary(t, false).Fetch(ctx, "file://"+repo, "", "")
	if cohort.ErrorField(err) != "materials.repo" {
		t.Errorf("a file:// repository on a shared server = %v, want refused", err)
	}
}

func names(t *testing.T, l *Library, version string) []string {
	t.Helper()
	f, err := l.Open(version)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name)
	}
}

type member struct {
	name, link string
	typ        byte
	body       string
}

func tarball(t *testing.T, gz bool, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, m := range members {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		tw.WriteHeader(&tar.Header{Name: m.name, Linkname: m.link, Typeflag: typ, Mode: 0o644, Size: int64(len(m.body))})
		tw.Write([]byte(m.body))
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

func zipball(t *testing.T, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		h := &zip.FileHeader{Name: m.name}
		if m.typ == tar.TypeSymlink {
			h.SetMode(os.ModeSymlink | 0o777)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(m.body))
	}
	zw.Close()
	return buf.Bytes()
}

func TestUploadedArchives(t *testing.T) {
	l := newLibrary(t, false)
	// GitHub's download: everything under one top directory, which goes.
	m, err := l.AddArchive("workshop-main.zip", bytes.NewReader(zipball(t,
		member{name: "workshop-main/"}, member{name: "workshop-main/train.ipynb", body: "nb"},
		member{name: "workshop-main/configs/config.cfg", body: "cfg"}, member{name: "__MACOSX/._train.ipynb", body: "x"})))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, l, m.Version); !slices.Equal(got, []string{"configs/config.cfg", "train.ipynb"}) || m.Archive != "workshop-main.zip" || m.Files != 2 {
		t.Fatalf("zip version = %+v holding %v", m, got)
	}
	// As `tar czf w.tgz -C DIR .` writes it: "./" first.
	tgz, err := l.AddArchive("w.tgz", bytes.NewReader(tarball(t, true, member{name: "./", typ: tar.TypeDir},
		member{name: "./a.txt", body: "a"}, member{name: "./b/", typ: tar.TypeDir}, member{name: "./b/c.txt", body: "c"})))
	if err != nil || tgz.Files != 2 || !strings.HasPrefix(tgz.Version, "archive-") {
		t.Fatalf("tar.gz = %+v, %v", tgz, err)
	}

	for _, tc := range []struct {
		name string
		data []byte
		says string
	}{
		{"zip-slip.zip", zipball(t, member{name: "../../etc/cron.d/x", body: "boom"}), "points outside"},
		{"abs.tar", tarball(t, false, member{name: "/etc/passwd", body: "x"}), "not a relative file name"},
		{"slip.tgz", tarball(t, true, member{name: "ok.txt", body: "x"}, member{name: "a/../../x", body: "x"}), "points outside"},
		{"link.zip", zipball(t, member{name: "data", typ: tar.TypeSymlink, body: "/etc"}), "is a symlink"},
		{"link.tar", tarball(t, false, member{name: "data", typ: tar.TypeSymlink, link: "/etc"}), "is a symlink (to /etc)"},
		{"hard.tar", tarball(t, false, member{name: "a", body: "x"}, member{name: "b", typ: tar.TypeLink, link: "/etc/shadow"}), "is a hard link"},
		{"dev.tar", tarball(t, false, member{name: "null", typ: tar.TypeChar}), "special file"},
		{"twice.tar", tarball(t, false, member{name: "a", body: "1"}, member{name: "./a", body: "2"}), "appears twice"},
		{"ours.tar", tarball(t, false, member{name: ".cohort/materials.json", body: "{}"}), "cohort keeps for itself"},
		{"ours-under-top.tar", tarball(t, false, member{name: "x/.cohort/materials.json", body: "{}"}), "cohort keeps for itself"},
		{"git.zip", zipball(t, member{name: "w/a.txt", body: "a"}, member{name: "w/.git/config", body: "[core]\nfsmonitor = evil"}), "in a .git folder"},
		{"notes.txt", []byte("just some text, not an archive"), "not a zip, tar or tar.gz"},
		{"empty.zip", zipball(t), "holds no files"},
		{"broken.zip", zipball(t, member{name: "a", body: "x"})[:30], "cannot be read"},
	} {
		before, _ := os.ReadDir(filepath.Join(l.dir, "versions"))
		_, err := l.AddArchive(tc.name, bytes.NewReader(tc.data))
		if cohort.ErrorField(err) != "archive" || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: AddArchive = %v; want an archive error saying %q", tc.name, err, tc.says)
		}
		after, _ := os.ReadDir(filepath.Join(l.dir, "versions"))
		if len(after) != len(before) {
			t.Errorf("%s: a refused archive left %d files in the library", tc.name, len(after)-len(before))
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(l.dir, ".upload-*"))
	if len(leftovers) > 0 {
		t.Errorf("uploads left behind: %v", leftovers)
	}
}

// version stores files as a version and returns its snapshot.
func version(t *testing.T, l *Library, files map[string]string) *cohort.Snapshot {
	t.Helper()
	var members []member
	for name, body := range files {
		members = append(members, member{name: name, body: body})
	}
	m, err := l.AddArchive("m.tar", bytes.NewReader(tarball(t, false, members...)))
	if err != nil {
		t.Fatal(err)
	}
	return &cohort.Snapshot{Version: m.Version, Path: l.path(m.Version)}
}

func TestMergeKeepsTheParticipantsChanges(t *testing.T) {
	l := newLibrary(t, false)
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	v1 := version(t, l, map[string]string{"train.ipynb": "class v1", "config.cfg": "cfg v1", "project.yml": "yml v1", "notes.md": "n1"})
	rep, err := Merge(root, v1)
	if err != nil || len(rep.Added) != 4 {
		t.Fatalf("first merge = %+v, %v; want 4 files added", rep, err)
	}
	// The participant edits one file, deletes one, and makes one of a
	// name the class will use.
	write("train.ipynb", "mine")
	os.Remove(filepath.Join(dir, "notes.md"))
	write("extra.py", "my own extra")
	// ... and one becomes a symlink out of the directory.
	os.Remove(filepath.Join(dir, "project.yml"))
	outside := filepath.Join(t.TempDir(), "secret")
	write2 := os.WriteFile(outside, []byte("not theirs"), 0o600)
	if write2 != nil {
		t.Fatal(write2)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "project.yml")); err != nil {
		t.Fatal(err)
	}

	v2 := version(t, l, map[string]string{"train.ipynb": "class v2", "config.cfg": "cfg v2", "project.yml": "yml v2",
		"notes.md": "n1", "extra.py": "class extra", "data/new.csv": "a,b"})
	rep, err = Merge(root, v2)
	if err != nil {
		t.Fatal(err)
	}
	_, short, _ := strings.Cut(v2.Version, "-")
	short = short[:7]
	want := map[string]string{
		"train.ipynb":                     "mine",
		"train.class-" + short + ".ipynb": "class v2",
		"config.cfg":                      "cfg v2",
		"extra.py":                        "my own extra",
		"extra.class-" + short + ".py":    "class extra",
		"data/new.csv":                    "a,b",
		"project.class-" + short + ".yml": "yml v2",
	}
	for name, content := range want {
		if got := read(name); got != content {
			t.Errorf("after the update, %s = %q, want %q", name, got, content)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "notes.md")); err == nil {
		t.Error("a file the participant deleted, unchanged by the class, came back")
	}
	if b, _ := os.ReadFile(outside); string(b) != "not theirs" {
		t.Errorf("the merge wrote through a symlink out of the directory: %q", b)
	}
	if !slices.Equal(rep.Updated, []string{"config.cfg"}) || len(rep.Kept) != 3 || !slices.Contains(rep.Added, "data/new.csv") {
		t.Errorf("report = %+v", rep)
	}
	if s := rep.Summary(); !strings.Contains(s, "your train.ipynb kept") {
		t.Errorf("summary = %q", s)
	}
	// Merging the same version again changes nothing.
	rep, err = Merge(root, v2)
	if err != nil || rep.Summary() != "" {
		t.Fatalf("a second merge of the same version = %q, %v; want nothing", rep.Summary(), err)
	}
	// A third version: the file the participant changed stays theirs.
	v3 := version(t, l, map[string]string{"train.ipynb": "class v3", "config.cfg": "cfg v2"})
	if _, err := Merge(root, v3); err != nil {
		t.Fatal(err)
	}
	if read("train.ipynb") != "mine" {
		t.Errorf("the participant's train.ipynb was overwritten by a later version")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".cohort", ".new-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestZipLeavesOutLinksAndPipes(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub", ".ipynb_checkpoints"), 0o755)
	os.MkdirAll(filepath.Join(dir, ".cohort"), 0o755)
	for name, content := range map[string]string{"train.ipynb": "nb", "sub/model.txt": "m", ".cohort/materials.json": "{}", "sub/.ipynb_checkpoints/x": "c"} {
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	os.Symlink("/etc/passwd", filepath.Join(dir, "passwd"))
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	n, err := Zip(context.Background(), zw, root, "work/", nil)
	if err != nil {
		t.Fatal(err)
	}
	zw.Close()
	var got []string
	for name := range materialstest.Unzip(t, buf.Bytes()) {
		got = append(got, name)
	}
	slices.Sort(got)
	if want := []string{"work/sub/model.txt", "work/train.ipynb"}; n != 2 || !slices.Equal(got, want) {
		t.Fatalf("zip holds %v (%d), want %v", got, n, want)
	}

	// A folder deeper than the limit ends the walk, with ErrZipLimit.
	deep := filepath.Join(dir, strings.Repeat("d/", MaxZipDepth+2))
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Zip(context.Background(), zip.NewWriter(io.Discard), root, "", nil); !errors.Is(err, ErrZipLimit) {
		t.Fatalf("a folder %d deep: %v, want ErrZipLimit", MaxZipDepth+2, err)
	}
}

// TestMergeDoesNotWaitOnAPipe: a participant who puts a pipe where the
// merge reads (its record, a file of the class's) hangs nothing.
func TestMergeDoesNotWaitOnAPipe(t *testing.T) {
	l := newLibrary(t, false)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, ".cohort"), 0o755)
	for _, name := range []string{ManifestPath, "train.ipynb"} {
		if err := syscall.Mkfifo(filepath.Join(dir, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	done := make(chan error, 1)
	snap := version(t, l, map[string]string{"train.ipynb": "nb"})
	var rep *Report
	go func() {
		var err error
		rep, err = Merge(root, snap)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the merge waits on a pipe")
	}
	// The pipe is the participant's: kept, the class's file beside it.
	if len(rep.Kept) != 1 {
		t.Fatalf("report = %+v, want train.ipynb kept and the class's beside it", rep)
	}
}
