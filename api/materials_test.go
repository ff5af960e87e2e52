package api_test

import (
	"archive/zip"
	"context"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/materials"
	"github.com/cohortdev/cohort/materials/materialstest"
)

func newLibrary(t testing.TB) *materials.Library {
	t.Helper()
	l, err := materials.New(materials.Options{Dir: t.TempDir(), AllowLocal: true})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dirWork keeps participants' work in DIR/CLASS/USER, as the local
// driver does, made on first use.
type dirWork string

func (d dirWork) path(classID, userID string) string {
	return filepath.Join(string(d), classID, userID)
}

func (d dirWork) ZipWork(ctx context.Context, zw *zip.Writer, classID, userID, prefix string, patterns []string) error {
	if failing.Load() == userID {
		return cohort.Errorf(cohort.EUNAVAILABLE, "the session VM's agent: connection refused")
	}
	if err := os.MkdirAll(d.path(classID, userID), 0o700); err != nil {
		return err
	}
	r, err := os.OpenRoot(d.path(classID, userID))
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = materials.Zip(ctx, zw, r, prefix, materials.Matching(patterns))
	return err
}

// PullMaterials merges as the local driver does (sessions are fakes).
func (d dirWork) PullMaterials(_ context.Context, spec cohort.NotebookSpec) (string, error) {
	if err := os.MkdirAll(d.path(spec.ClassID, spec.UserID), 0o700); err != nil {
		return "", err
	}
	r, err := os.OpenRoot(d.path(spec.ClassID, spec.UserID))
	if err != nil {
		return "", err
	}
	defer r.Close()
	rep, err := materials.Merge(r, spec.Materials)
	if err != nil {
		return "", err
	}
	return rep.Summary(), nil
}

func (d dirWork) WorkClasses(context.Context) ([]string, error) {
	entries, err := os.ReadDir(string(d))
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids, err
}

func (d dirWork) DeleteWork(_ context.Context, classID string) (bool, error) {
	_, err := os.Stat(filepath.Join(string(d), classID))
	return err == nil, os.RemoveAll(filepath.Join(string(d), classID))
}

var (
	_ cohort.WorkReader = dirWork("")
	_ cohort.Puller     = dirWork("")
)

func TestClassMaterials(t *testing.T) {
	e := newEnv(t)
	class := e.createClass("teacher", `{"name": "spaCy"}`)
	path := "/v1/classes/" + class.ID + "/materials"
	repo := materialstest.NewRepo(t, map[string]string{"train.ipynb": "nb", "configs/config.cfg": "[nlp]"})

	r := e.do("teacher", "PUT", path, `{"repo": "`+repo.Dir+`", "ref": "main"}`)
	var v struct {
		Materials *cohort.Materials `json:"materials"`
		KeepWork  string            `json:"keep_work"`
	}
	r.json(t, &v)
	if r.status != http.StatusOK || v.Materials == nil || v.Materials.Files != 2 || !strings.HasPrefix(v.Materials.Version, "git-") || v.KeepWork != "720h" {
		t.Fatalf("set a repository = %d %s", r.status, r.body)
	}
	set := v.Materials.Version
	for _, tc := range []struct{ body, field string }{
		{`{"repo": "` + repo.Dir + `", "ref": "no-such-branch"}`, "materials.ref"},
		{`{"repo": "` + filepath.Join(t.TempDir(), "none") + `"}`, "materials.repo"},
		{`{"repo": "https://token:x@example.org/private.git"}`, "materials.repo"},
		{`{"repo": ""}`, "materials.repo"},
	} {
		r := e.do("teacher", "PUT", path, tc.body)
		if _, field, _ := r.errorCode(); r.status != http.StatusBadRequest || field != tc.field {
			t.Errorf("PUT %s = %d %s; want 400 on %s", tc.body, r.status, r.body, tc.field)
		}
	}
	// A refused archive leaves the class's materials as they were.
	slip := materialstest.Zip(t, map[string]string{"../../etc/cron.d/x": "boom"})
	if r := e.do("teacher", "PUT", path+"/archive?name=evil.zip", string(slip)); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "outside") {
		t.Fatalf("a zip-slip archive = %d %s", r.status, r.body)
	}
	link := materialstest.Zip(t, map[string]string{"data": "->/etc"})
	if r := e.do("teacher", "PUT", path+"/archive?name=link.zip", string(link)); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "symlink") {
		t.Fatalf("an archive with a symlink = %d %s", r.status, r.body)
	}
	if r := e.do("teacher", "GET", path, ""); !strings.Contains(string(r.body), set) {
		t.Fatalf("after refused archives, materials = %s; want still %s", r.body, set)
	}
	// Participants see the class, not its materials' settings.
	if r := e.do("alice", "PUT", path, `{"repo": "`+repo.Dir+`"}`); r.status != http.StatusForbidden {
		t.Fatalf("a participant sets materials = %d", r.status)
	}
	good := materialstest.Zip(t, map[string]string{"w/a.ipynb": "a", "w/b.txt": "b"})
	r = e.do("teacher", "PUT", path+"/archive?name=w.zip", string(good))
	r.json(t, &v)
	if r.status != http.StatusOK || v.Materials.Archive != "w.zip" || v.Materials.Files != 2 {
		t.Fatalf("upload an archive = %d %s", r.status, r.body)
	}
	if r := e.do("teacher", "DELETE", path, ""); r.status != http.StatusOK || strings.Contains(string(r.body), "archive-") {
		t.Fatalf("remove materials = %d %s", r.status, r.body)
	}
	// A class made with materials has them; a repository that cannot be
	// had refuses the class, and no class is left.
	r = e.do("teacher", "POST", "/v1/classes", `{"name": "with", "materials": {"repo": "`+repo.Dir+`"}}`)
	var made cohort.Class
	r.json(t, &made)
	if r.status != http.StatusCreated || made.Materials == nil || made.Materials.Version != set {
		t.Fatalf("create a class with materials = %d %s", r.status, r.body)
	}
	before := e.do("teacher", "GET", "/v1/classes", "")
	r = e.do("teacher", "POST", "/v1/classes", `{"name": "without", "materials": {"repo": "`+repo.Dir+`", "ref": "nope"}}`)
	if _, field, _ := r.errorCode(); r.status != http.StatusBadRequest || field != "materials.ref" {
		t.Fatalf("create a class with a ref that does not exist = %d %s", r.status, r.body)
	}
	if after := e.do("teacher", "GET", "/v1/classes", ""); string(after.body) != string(before.body) {
		t.Fatalf("a refused class was made: %s", after.body)
	}
	if r := e.do("teacher", "PATCH", "/v1/classes/"+class.ID, `{"materials": {"repo": "`+repo.Dir+`"}}`); r.status != http.StatusBadRequest {
		t.Fatalf("PATCH with materials = %d %s, want 400 pointing to PUT", r.status, r.body)
	}
	audit := e.do("teacher", "GET", "/v1/classes/"+class.ID+"/audit", "")
	if n := strings.Count(string(audit.body), cohort.AuditMaterialsChanged); n != 3 {
		t.Errorf("audit has %d materials changes, want 3 (set, upload, remove): %s", n, audit.body)
	}

	// A driver that keeps no work (GCE's, for now) refuses materials
	// rather than taking them and delivering nothing.
	gce := newEnv(t, func(o *api.Options) { o.Work, o.Driver = nil, "gce" })
	other := gce.createClass("teacher", `{"name": "on GCE"}`)
	for _, r := range []response{
		gce.do("teacher", "PUT", "/v1/classes/"+other.ID+"/materials", `{"repo": "`+repo.Dir+`"}`),
		gce.do("teacher", "PUT", "/v1/classes/"+other.ID+"/materials/archive?name=w.zip", string(good)),
		gce.do("teacher", "POST", "/v1/classes", `{"name": "with", "materials": {"repo": "`+repo.Dir+`"}}`),
	} {
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "gce driver does not deliver class materials") {
			t.Errorf("materials on a driver that keeps no work = %d %s", r.status, r.body)
		}
	}
}

func TestDownloadAndCollectWork(t *testing.T) {
	work := dirWork(t.TempDir())
	e := newEnv(t, func(o *api.Options) { o.Work = work })
	class := e.createClass("teacher", `{"name": "spaCy"}`)
	put := func(user, name, content string) {
		p := filepath.Join(work.path(class.ID, e.users[user].ID), name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	put("alice", "train.ipynb", "alice's notebook")
	put("alice", "configs/config.cfg", "alice's config")
	put("alice", ".cohort/materials.json", "{}")
	put("bob", "train.ipynb", "bob's notebook")
	os.Symlink("/etc/passwd", filepath.Join(work.path(class.ID, e.users["alice"].ID), "passwd"))

	r := e.do("alice", "GET", "/v1/classes/"+class.ID+"/work", "")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/zip" {
		t.Fatalf("download = %d %s", r.status, r.body)
	}
	got := materialstest.Unzip(t, r.body)
	want := map[string]string{"train.ipynb": "alice's notebook", "configs/config.cfg": "alice's config"}
	if !maps.Equal(got, want) {
		t.Fatalf("alice's download holds %v, want %v", got, want)
	}

	// The instructor collects: one folder per participant with the file.
	r = e.do("teacher", "GET", "/v1/classes/"+class.ID+"/collect?path=*.ipynb", "")
	got = materialstest.Unzip(t, r.body)
	want = map[string]string{"alice@example.com/train.ipynb": "alice's notebook", "bob@example.com/train.ipynb": "bob's notebook"}
	if r.status != http.StatusOK || !maps.Equal(got, want) {
		t.Fatalf("collect = %d, holds %v; want %v", r.status, got, want)
	}
	for _, bad := range []string{"", "path=../x", "path=/etc/passwd", "path=.cohort/materials.json", "path=a/../../b"} {
		if r := e.do("teacher", "GET", "/v1/classes/"+class.ID+"/collect?"+bad, ""); r.status != http.StatusBadRequest {
			t.Errorf("collect ?%s = %d %s, want 400", bad, r.status, r.body)
		}
	}
	if r := e.do("alice", "GET", "/v1/classes/"+class.ID+"/collect?path=train.ipynb", ""); r.status != http.StatusForbidden {
		t.Errorf("a participant collects = %d, want 403", r.status)
	}
	audit := e.do("teacher", "GET", "/v1/classes/"+class.ID+"/audit", "")
	if !strings.Contains(string(audit.body), cohort.AuditWorkCollected) {
		t.Errorf("the collection is not in the audit log: %s", audit.body)
	}

	// One participant whose work cannot be read (a GCE VM that fails)
	// leaves the others' whole.
	failing.Store(e.users["alice"].ID)
	t.Cleanup(func() { failing.Store("") })
	r = e.do("teacher", "GET", "/v1/classes/"+class.ID+"/collect?path=*.ipynb", "")
	got = materialstest.Unzip(t, r.body)
	if want := map[string]string{"bob@example.com/train.ipynb": "bob's notebook"}; r.status != http.StatusOK || !maps.Equal(got, want) {
		t.Fatalf("collect with alice's work failing = %d, holds %v; want %v", r.status, got, want)
	}
}

// failing is a participant whose work dirWork cannot read.
var failing atomic.Value

func init() { failing.Store("") }
