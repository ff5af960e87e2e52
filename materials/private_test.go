package materials

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
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
	if _, err := l.Fetch(ctx, other.Dir, "", ""); err != nil {
		t.Fatal(err)
	}
	// Nor are the objects a failed fetch leaves in a clone: a server that
	// advertises the commit and sends an incomplete pack leaves it there
	// (here: put there by hand).
	victim, attacker := l.clone(srv.URL), l.clone(other.Dir)
	commitObject := gitIn(t, victim, "cat-file", "commit", commit)
	if got := gitIn(t, attacker, "hash-object", "-t", "commit", "-w", "--stdin", "<"+commitObject+"\n"); got != commit {
		t.Fatalf("the commit object copied is %s, want %s", got, commit)
	}
	if got, err := l.Fetch(ctx, other.Dir, commit, ""); err == nil {
		t.Errorf("a clone holding the private commit's object got version %s", got.Version)
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

// gitIn runs git in dir; an argument "<TEXT" is its standard input.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	if in, ok := strings.CutPrefix(args[len(args)-1], "<"); ok {
		cmd = exec.Command("git", args[:len(args)-1]...)
		cmd.Stdin = strings.NewReader(in)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// With a token, git follows no redirect: the token goes to its
// repository's URL and nowhere else.
func TestPrivateRepositoryFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	var sent, elsewhere atomic.Int64
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		if r.Header.Get("Authorization") != "" {
			t.Error("the token was sent to the server a redirect named")
		}
		http.Error(w, "no", http.StatusNotFound)
	}))
	defer other.Close()
	mover := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			sent.Add(1)
		}
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	defer mover.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	// httptest's servers share one certificate.
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mover.Certificate().Raw}), 0o644)
	key, _ := seal.ParseKey(seal.NewKeyText())
	l, err := New(Options{Dir: t.TempDir(), Key: key, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	url := mover.URL + "/moved.git"
	cred, err := l.Seal(url, cohort.RepoToken{Token: "github_pat_redirected"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Fetch(context.Background(), url, "", cred); err == nil {
		t.Fatal("a fetch answered by a redirect succeeded")
	}
	if sent.Load() == 0 || elsewhere.Load() != 0 {
		t.Errorf("requests with the token to its URL: %d; to the redirect's: %d (want some, none)", sent.Load(), elsewhere.Load())
	}
}

// Whatever git says is redacted of the token before anyone sees it.
func TestGitErrorsAreRedacted(t *testing.T) {
	t.Parallel()
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:ghp_leak"))
	r := &remote{url: "https://git.example.org/r.git", private: true, secrets: []string{"ghp_leak", basic}}
	for _, stderr := range []string{
		"fatal: unable to access 'https://git.example.org/r.git/': header Authorization: Basic " + basic,
		"fatal: unable to access: Could not resolve host: ghp_leak.example.org",
		"fatal: something new: ghp_leak",
	} {
		err := r.error(&gitFailure{err: errors.New("exit status 128: ghp_leak"), stderr: stderr}, "")
		var cause string
		if e, ok := err.(*cohort.Error); ok && e.Cause != nil {
			cause = e.Cause.Error()
		}
		if all := err.Error() + cohort.ErrorMessage(err) + cause; strings.Contains(all, "ghp_leak") || strings.Contains(all, basic) {
			t.Errorf("git said %q; the error holds the token: %q", stderr, all)
		}
	}
}
