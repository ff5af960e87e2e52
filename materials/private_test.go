package materials

import (
	"bytes"
	"context"
	"encoding/base64"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/materials/materialstest"
	"github.com/cohortdev/cohort/seal"
)

// A private repository over https, as GitHub serves one: fetched with the
// class's token, which shows nowhere, opens for its repository only, and
// is refused in every shape that would inject a header.
func TestPrivateRepository(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo := materialstest.NewRepo(t, map[string]string{"train.ipynb": "{}", "config.cfg": "[private]"})
	const token = "github_pat_11ABCDEFG0123456789_secret"
	srv := materialstest.ServePrivate(t, repo, "x-access-token", token)
	key, err := seal.ParseKey(seal.NewKeyText())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	dir := t.TempDir()
	l, err := New(Options{Dir: dir, AllowLocal: true, Key: key, CAFile: srv.CAFile, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	wantErr := func(what string, err error, field, says string) {
		t.Helper()
		if cohort.ErrorField(err) != field || !strings.Contains(cohort.ErrorMessage(err), says) || strings.Contains(err.Error(), token) {
			t.Errorf("%s: %v (field %q); want field %s saying %q", what, err, cohort.ErrorField(err), field, says)
		}
	}

	_, err = l.Fetch(ctx, srv.URL, "", "")
	wantErr("no token", err, "materials.repo", "asks for credentials")
	wrong, err := l.Seal(srv.URL, cohort.RepoToken{Token: "github_pat_wrong"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Fetch(ctx, srv.URL, "", wrong)
	wantErr("a wrong token", err, "materials.token", "refused the token")

	right, err := l.Seal(srv.URL, cohort.RepoToken{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	m, err := l.Fetch(ctx, srv.URL, "main", right)
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	if m.Files != 2 || !m.Private || m.Credential != right {
		t.Fatalf("fetched %+v", m)
	}
	commit := strings.TrimPrefix(m.Version, "git-")

	// The commit is stored now; naming it is not a way around the token,
	// nor is another repository that names it.
	_, err = l.Fetch(ctx, srv.URL, commit, "")
	wantErr("the stored commit without the token", err, "materials.repo", "asks for credentials")
	other := materialstest.NewRepo(t, map[string]string{"README.md": "public"})
	if got, err := l.Fetch(ctx, other.Dir, commit, ""); err == nil {
		t.Errorf("another repository naming the private commit got version %s", got.Version)
	}
	// The token opens for its repository only.
	_, err = l.Fetch(ctx, other.Dir, "", right)
	wantErr("the token sent elsewhere", err, "materials.token", "cannot be read")
	refused := srv.Refused.Load()
	if again, err := l.Fetch(ctx, srv.URL, commit, right); err != nil || again.Version != m.Version {
		t.Errorf("the commit with the token = %v, %v", again, err)
	}
	if srv.Refused.Load() != refused {
		t.Error("a fetch with the token was refused once: git asked without it first")
	}

	// Nothing on disk or in the log holds the token, in any form.
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(token)) || bytes.Contains(b, []byte(basic)) {
			t.Errorf("%s holds the token", path)
		}
		return nil
	})
	if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), basic) {
		t.Errorf("the log holds the token:\n%s", logs.String())
	}

	for _, bad := range []struct {
		tok         cohort.RepoToken
		field, says string
	}{
		{cohort.RepoToken{Token: token + "\r\nX-Evil: 1"}, "materials.token", "not printable"},
		{cohort.RepoToken{Token: "two words"}, "materials.token", "space"},
		{cohort.RepoToken{}, "materials.token", "empty"},
		{cohort.RepoToken{User: "a:b", Token: token}, "materials.token_user", "colons"},
	} {
		_, err := l.Seal(srv.URL, bad.tok)
		wantErr("Seal "+bad.tok.User, err, bad.field, bad.says)
	}
	_, err = newLibrary(t, true).Seal(srv.URL, cohort.RepoToken{Token: token})
	if cohort.ErrorCode(err) != cohort.EUNAVAILABLE || !strings.Contains(cohort.ErrorMessage(err), "--secret-key-file") {
		t.Errorf("Seal without a key = %v", err)
	}
}

// A session's start takes a private branch's newest commit with the
// class's token, as a public one's.
func TestSnapshotOfAPrivateBranch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo := materialstest.NewRepo(t, map[string]string{"train.ipynb": "{}"})
	srv := materialstest.ServePrivate(t, repo, "deployer", "gldt-abc123")
	key, _ := seal.ParseKey(seal.NewKeyText())
	l, err := New(Options{Dir: t.TempDir(), Key: key, CAFile: srv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := l.Seal(srv.URL, cohort.RepoToken{User: "deployer", Token: "gldt-abc123"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := l.Fetch(ctx, srv.URL, "main", cred)
	if err != nil {
		t.Fatal(err)
	}
	pushed := repo.Commit(map[string]string{"day2.ipynb": "{}"})
	snap, now, err := l.Snapshot(ctx, m)
	if err != nil || snap.Version != "git-"+pushed || now.Credential != cred {
		t.Fatalf("Snapshot after a push = %+v, %+v, %v; want git-%s", snap, now, err, pushed)
	}
}
