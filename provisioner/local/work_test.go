package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jupyter"
	"github.com/cohortdev/cohort/materials"
	"github.com/cohortdev/cohort/materials/materialstest"
	"github.com/cohortdev/cohort/provisioner/local"
)

// contents reaches a session's files the way its participant does:
// through Jupyter's contents API.
type contents struct {
	t    *testing.T
	http *http.Client
	base string
	tok  string
}

func contentsOf(t *testing.T, d *local.Driver, sp cohort.NotebookSpec) *contents {
	t.Helper()
	in := waitFor(t, d, sp, cohort.InstanceReady)
	base, err := jupyter.BaseURL(in.Address)
	if err != nil {
		t.Fatal(err)
	}
	return &contents{t: t, http: &http.Client{Transport: jupyter.NewTransport()}, base: base + "/api/contents/", tok: sp.Token}
}

func (c *contents) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd bytes.Buffer
	if body != nil {
		json.NewEncoder(&rd).Encode(body)
	}
	req, _ := http.NewRequest(method, c.base+path, &rd)
	req.Header.Set("Authorization", "token "+c.tok)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// names lists the folder's entries.
func (c *contents) names() []string {
	c.t.Helper()
	status, b := c.do("GET", "", nil)
	var dir struct{ Content []struct{ Name string } }
	if err := json.Unmarshal(b, &dir); status != http.StatusOK || err != nil {
		c.t.Fatalf("list the folder: %d %s", status, b)
	}
	var out []string
	for _, e := range dir.Content {
		out = append(out, e.Name)
	}
	slices.Sort(out)
	return out
}

func (c *contents) read(name string) string {
	c.t.Helper()
	status, b := c.do("GET", name+"?content=1&format=text&type=file", nil)
	var f struct{ Content string }
	if err := json.Unmarshal(b, &f); status != http.StatusOK || err != nil {
		return fmt.Sprintf("<%d>", status)
	}
	return f.Content
}

func (c *contents) write(name, content string) {
	c.t.Helper()
	if status, b := c.do("PUT", name, map[string]string{"type": "file", "format": "text", "content": content}); status >= 300 {
		c.t.Fatalf("write %s: %d %s", name, status, b)
	}
}

// TestWorkOutlivesTheSession: a participant's second session of a class
// shows the work of their first, with the class's new materials merged
// in and their own change kept; another participant sees none of it.
func TestWorkOutlivesTheSession(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, opts local.Options) {
		ctx := context.Background()
		d := newDriver(t, opts)
		lib, err := materials.New(materials.Options{Dir: t.TempDir(), AllowLocal: true})
		if err != nil {
			t.Fatal(err)
		}
		repo := materialstest.NewRepo(t, map[string]string{"train.ipynb": "{}", "config.cfg": "[nlp]\nlang = \"en\"\n"})
		snap := func() *cohort.Snapshot {
			m, err := lib.Fetch(ctx, repo.Dir, "main", "")
			if err != nil {
				t.Fatal(err)
			}
			s, _, err := lib.Snapshot(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		start := func(id, user string) (cohort.NotebookSpec, *contents) {
			t.Helper()
			sp := spec(id)
			sp.ClassID, sp.UserID, sp.Materials = "cls_work", user, snap()
			if err := d.Start(ctx, sp); err != nil {
				t.Fatal(err)
			}
			return sp, contentsOf(t, d, sp)
		}

		_, ada := start("ses_ada1", "usr_ada")
		if got := ada.names(); !slices.Equal(got, []string{"config.cfg", "train.ipynb"}) {
			t.Fatalf("first session's folder = %v, want the class's materials", got)
		}
		ada.write("config.cfg", "[nlp]\nlang = \"de\"\n")
		ada.write("notes.md", "my notes")
		if err := d.Stop(ctx, "ses_ada1"); err != nil {
			t.Fatal(err)
		}
		if opts.UIDs.Len() > 0 {
			work := filepath.Join(opts.Root, "work", "cls_work", "usr_ada")
			if uid := ownerOf(t, work); uid != 0 {
				t.Fatalf("between sessions the work directory is uid %d's, want root's", uid)
			}
		}

		repo.Commit(map[string]string{"config.cfg": "[nlp]\nlang = \"en\"\nbatch = 128\n", "project.yml": "title: spaCy"})
		_, ada2 := start("ses_ada2", "usr_ada")
		got := ada2.names()
		if !slices.Contains(got, "notes.md") || !slices.Contains(got, "project.yml") {
			t.Fatalf("second session's folder = %v, want the first's work and the new file", got)
		}
		if c := ada2.read("config.cfg"); !strings.Contains(c, `"de"`) {
			t.Fatalf("the participant's config.cfg = %q, want their change kept", c)
		}
		var beside string
		for _, name := range got {
			if strings.HasPrefix(name, "config.class-") {
				beside = name
			}
		}
		if c := ada2.read(beside); !strings.Contains(c, "batch = 128") {
			t.Fatalf("the class's new config.cfg beside it (%q) = %q; folder %v", beside, c, got)
		}

		// Mid-session, the class pushes again and ada asks for it: the new
		// file arrives in her running notebook, hers to change.
		repo.Commit(map[string]string{"step2.ipynb": "{}"})
		sp2 := spec("ses_ada2")
		sp2.ClassID, sp2.UserID, sp2.Materials = "cls_work", "usr_ada", snap()
		summary, err := d.PullMaterials(ctx, sp2)
		if err != nil || !strings.Contains(summary, "1 new file") {
			t.Fatalf("PullMaterials = %q, %v", summary, err)
		}
		if got := ada2.names(); !slices.Contains(got, "step2.ipynb") {
			t.Fatalf("after the pull the folder = %v", got)
		}
		if opts.UIDs.Len() > 0 {
			uid := ownerOf(t, filepath.Join(opts.Root, "ses_ada2"))
			if got := ownerOf(t, filepath.Join(opts.Root, "work", "cls_work", "usr_ada", "step2.ipynb")); got != uid {
				t.Fatalf("a pulled file is uid %d's, want the session's uid %d", got, uid)
			}
		}
		ada2.write("step2.ipynb", `{"cells": []}`)

		_, bob := start("ses_bob1", "usr_bob")
		if got := bob.names(); slices.Contains(got, "notes.md") {
			t.Fatalf("another participant's folder = %v: it shows ada's work", got)
		}
		if status, _ := bob.do("GET", "../../usr_ada/notes.md", nil); status == http.StatusOK {
			t.Fatal("bob reads ada's notes through a relative path")
		}
	})
}

// TestClaimedSeatShowsTheParticipantsWork: a warm seat starts with an
// empty folder of its own; the claim puts the participant's work there,
// materials merged, without a restart.
func TestClaimedSeatShowsTheParticipantsWork(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, opts local.Options) {
		ctx := context.Background()
		d := newDriver(t, opts)
		work := filepath.Join(opts.Root, "work", "cls_work", "usr_ada")
		if err := os.MkdirAll(work, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, "mine.py"), []byte("print(1)"), 0o600); err != nil {
			t.Fatal(err)
		}
		sp := spec("ses_warm1")
		sp.ClassID, sp.UserID = "cls_work", cohort.PoolUserID
		if err := d.Start(ctx, sp); err != nil {
			t.Fatal(err)
		}
		c := contentsOf(t, d, sp)
		if got := c.names(); len(got) != 0 {
			t.Fatalf("a warm seat's folder = %v, want empty", got)
		}
		lib, err := materials.New(materials.Options{Dir: t.TempDir(), AllowLocal: true})
		if err != nil {
			t.Fatal(err)
		}
		m, err := lib.Fetch(ctx, materialstest.NewRepo(t, map[string]string{"train.ipynb": "{}"}).Dir, "", "")
		if err != nil {
			t.Fatal(err)
		}
		sp.UserID = "usr_ada"
		if sp.Materials, _, err = lib.Snapshot(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := d.Claimed(ctx, sp); err != nil {
			t.Fatal(err)
		}
		if got := c.names(); !slices.Equal(got, []string{"mine.py", "train.ipynb"}) {
			t.Fatalf("after the claim the folder = %v, want the participant's work and the class's materials", got)
		}
		c.write("after.txt", "written after the claim")
		if _, err := os.Stat(filepath.Join(work, "after.txt")); err != nil {
			t.Fatalf("a file written after the claim is not in the participant's work: %v", err)
		}
		if err := d.Stop(ctx, sp.SessionID); err != nil {
			t.Fatal(err)
		}
		if opts.UIDs.Len() > 0 {
			if uid := ownerOf(t, work); uid != 0 {
				t.Fatalf("after the claimed seat stopped the work directory is uid %d's, want root's", uid)
			}
		}
		// The class's retention passes: its work goes, and only it.
		if ids, err := d.WorkClasses(ctx); err != nil || !slices.Equal(ids, []string{"cls_work"}) {
			t.Fatalf("WorkClasses = %v, %v", ids, err)
		}
		if removed, err := d.DeleteWork(ctx, "cls_work"); err != nil || !removed {
			t.Fatalf("DeleteWork = %v, %v", removed, err)
		}
		if _, err := os.Stat(work); !os.IsNotExist(err) {
			t.Fatalf("the class's work is still there: %v", err)
		}
		if removed, err := d.DeleteWork(ctx, "cls_work"); err != nil || removed {
			t.Fatalf("DeleteWork again = %v, %v; want nothing to remove", removed, err)
		}
	})
}

// TestWorkIsClosedToTheUIDsNextHolder: with one uid, the next
// participant's session runs as the uid that owned the previous one's
// files; it must still not reach them.
func TestWorkIsClosedToTheUIDsNextHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, opts := isolatedDriver(t, 1)
	start := func(id, user string) (cohort.NotebookSpec, cohort.Instance) {
		t.Helper()
		sp := spec(id)
		sp.ClassID, sp.UserID = "cls_work", user
		if err := d.Start(ctx, sp); err != nil {
			t.Fatal(err)
		}
		return sp, waitFor(t, d, sp, cohort.InstanceReady)
	}
	sp, _ := start("ses_ada", "usr_ada")
	contentsOf(t, d, sp).write("secret.txt", "ada's answer")
	work := filepath.Join(opts.Root, "work", "cls_work", "usr_ada")
	uid := ownerOf(t, filepath.Join(work, "secret.txt"))
	if err := d.Stop(ctx, "ses_ada"); err != nil {
		t.Fatal(err)
	}
	sp, in := start("ses_bob", "usr_bob")
	k := startKernel(t, in.Address, sp.Token)
	if got := ownerOf(t, filepath.Join(opts.Root, "ses_bob")); got != uid {
		t.Fatalf("bob runs as uid %d, ada ran as %d: the test wants the uid reused", got, uid)
	}
	for _, code := range []string{
		fmt.Sprintf("print(open(%q).read())", filepath.Join(work, "secret.txt")),
		fmt.Sprintf("import os; print(os.listdir(%q))", work),
		fmt.Sprintf("import os; print(os.listdir(%q))", filepath.Dir(work)),
	} {
		if out := k.run(t, code); out.ename != "PermissionError" {
			t.Errorf("bob's kernel ran %s: %+v; want a PermissionError", code, out)
		}
	}
}
