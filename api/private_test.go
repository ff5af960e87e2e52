package api_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/materials"
	"github.com/cohortdev/cohort/materials/materialstest"
	"github.com/cohortdev/cohort/seal"
)

// A class's private repository: its token is taken once, fetched with,
// stored sealed, never answered (to the instructor, a participant or the
// audit log), and never follows the materials to another URL.
func TestPrivateMaterials(t *testing.T) {
	repo := materialstest.NewRepo(t, map[string]string{"train.ipynb": "{}", "config.cfg": "[private]"})
	const token = "github_pat_11PRIVATE_token_0123456789"
	srv := materialstest.ServePrivate(t, repo, "x-access-token", token)
	key, err := seal.ParseKey(seal.NewKeyText())
	if err != nil {
		t.Fatal(err)
	}
	lib, err := materials.New(materials.Options{Dir: t.TempDir(), AllowLocal: true, Key: key, CAFile: srv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *api.Options) { o.Materials = lib })
	class := e.createClass("teacher", `{"name": "private"}`)
	path := "/v1/classes/" + class.ID + "/materials"
	put := func(body string) (response, *cohort.Materials) {
		t.Helper()
		r := e.do("teacher", "PUT", path, body)
		var v cohort.MaterialsView
		if r.status == http.StatusOK {
			r.json(t, &v)
		}
		return r, v.Materials
	}
	wantRefused := func(r response, status int, field, says string) {
		t.Helper()
		if _, f, msg := r.errorCode(); r.status != status || f != field || !strings.Contains(msg, says) {
			t.Errorf("= %d %s; want %d on %s saying %q", r.status, r.body, status, field, says)
		}
	}

	r, _ := put(`{"repo": "` + srv.URL + `"}`)
	wantRefused(r, http.StatusBadRequest, "materials.repo", "asks for credentials")
	r, _ = put(`{"repo": "` + srv.URL + `", "token": "github_pat_wrong"}`)
	wantRefused(r, http.StatusBadRequest, "materials.token", "refused the token")
	r, _ = put(`{"repo": "` + srv.URL + `", "token": "` + token + `\r\nX-Evil: 1"}`)
	wantRefused(r, http.StatusBadRequest, "materials.token", "not printable")
	r, _ = put(`{"repo": "` + srv.URL + `", "token_user": "deployer"}`)
	wantRefused(r, http.StatusBadRequest, "materials.token_user", "goes with a token")

	r, m := put(`{"repo": "` + srv.URL + `", "ref": "main", "token": "` + token + `"}`)
	if r.status != http.StatusOK || m == nil || !m.Private || m.Files != 2 {
		t.Fatalf("set a private repository = %d %s", r.status, r.body)
	}
	stored, err := e.store.GetClass(context.Background(), class.ID)
	if err != nil {
		t.Fatal(err)
	}
	sealed := stored.Materials.Credential
	if !strings.HasPrefix(sealed, "v1."+key.ID()+".") || strings.Contains(sealed, token) {
		t.Fatalf("stored credential = %q, want the token sealed", sealed)
	}
	// Changing only the ref keeps the token; its sealed form is not
	// answered to anyone either.
	if r, m := put(`{"repo": "` + srv.URL + `", "ref": "` + strings.TrimPrefix(m.Version, "git-") + `"}`); r.status != http.StatusOK || !m.Private {
		t.Fatalf("change the ref = %d %s", r.status, r.body)
	}
	answers := []response{
		r, e.do("teacher", "GET", path, ""), e.do("teacher", "GET", "/v1/classes/"+class.ID, ""),
		e.do("alice", "GET", "/v1/classes/"+class.ID, ""), e.do("alice", "GET", "/v1/classes", ""),
		e.do("teacher", "GET", "/v1/classes/"+class.ID+"/audit", ""),
	}
	for _, a := range answers {
		if a.status != http.StatusOK || bytes.Contains(a.body, []byte(token)) || bytes.Contains(a.body, []byte(sealed[:20])) {
			t.Errorf("an answer holds the token (or failed): %d %s", a.status, a.body)
		}
	}
	if audit := answers[len(answers)-1].body; !bytes.Contains(audit, []byte("private: a new token")) || !bytes.Contains(audit, []byte("private: its token kept")) {
		t.Errorf("the audit does not say when a token was set and when kept: %s", audit)
	}
	db, err := os.ReadFile(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(e.dbPath + "-wal")
	if bytes.Contains(db, []byte(token)) || bytes.Contains(wal, []byte(token)) {
		t.Error("the database holds the token in plain text")
	}

	// A token kept is written only over the materials it was kept from:
	// dropped meanwhile (here, behind the server's cache, as by another
	// replica a moment before), it does not come back.
	dropped := *stored.Materials
	dropped.Private, dropped.Credential = false, ""
	if err := e.db.SetMaterials(context.Background(), class.ID, &dropped); err != nil {
		t.Fatal(err)
	}
	r, _ = put(`{"repo": "` + srv.URL + `", "ref": "main"}`)
	wantRefused(r, http.StatusConflict, "", "changed meanwhile")
	if now, _ := e.db.GetClass(context.Background(), class.ID); now.Materials.Credential != "" {
		t.Fatal("a token dropped meanwhile came back")
	}

	// The token does not follow the materials to another URL: set back,
	// the private repository asks for it again.
	public := materialstest.NewRepo(t, map[string]string{"README.md": "public"})
	if r, m := put(`{"repo": "` + public.Dir + `"}`); r.status != http.StatusOK || m.Private {
		t.Fatalf("another repository = %d %s", r.status, r.body)
	}
	r, _ = put(`{"repo": "` + srv.URL + `"}`)
	wantRefused(r, http.StatusBadRequest, "materials.repo", "asks for credentials")
	// An empty token drops it, as a public repository has none.
	put(`{"repo": "` + srv.URL + `", "token": "` + token + `"}`)
	r, _ = put(`{"repo": "` + srv.URL + `", "token": ""}`)
	wantRefused(r, http.StatusBadRequest, "materials.repo", "asks for credentials")

	// A server without a key refuses tokens, naming what its operator
	// must do, and takes public repositories still.
	nokey := newEnv(t)
	other := nokey.createClass("teacher", `{"name": "no key"}`)
	r = nokey.do("teacher", "PUT", "/v1/classes/"+other.ID+"/materials", `{"repo": "`+srv.URL+`", "token": "`+token+`"}`)
	wantRefused(r, http.StatusServiceUnavailable, "", "--secret-key-file")
}
