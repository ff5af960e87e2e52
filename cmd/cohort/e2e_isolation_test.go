package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
)

// attackJS is what a participant puts in a trusted notebook output: when
// someone else opens the notebook, it tries to act as them against the
// app (read /v1/me and its CSRF token, mint a token, make the participant
// an admin), to reach another session's kernel, and to plant cookies for
// parent domains. APP, ALICE and OTHER are filled in by the test. It
// reports every attempt in window.attack.
const attackJS = `(async () => {
  const app = "APP", r = {};
  const attempt = async (name, url, opts) => {
    try {
      const resp = await fetch(url, Object.assign({credentials: "include"}, opts || {}));
      r[name] = resp.status + " " + (await resp.text()).slice(0, 120);
    } catch (e) { r[name] = "blocked: " + e.message; }
  };
  for (const base of ["", app]) {
    let csrf = "";
    try { csrf = (await (await fetch(base + "/v1/me", {credentials: "include"})).json()).csrf_token || ""; } catch (e) {}
    r[base + " csrf"] = csrf ? "read" : "none";
    const h = {"Content-Type": "application/json", "X-CSRF-Token": csrf};
    await attempt(base + " me", base + "/v1/me");
    await attempt(base + " token", base + "/v1/tokens", {method: "POST", headers: h, body: '{"name": "pwned"}'});
    await attempt(base + " role", base + "/v1/users/ALICE/role", {method: "PUT", headers: h, body: '{"role": "admin"}'});
  }
  await new Promise(done => {
    try {
      const ws = new WebSocket("OTHER");
      ws.onopen = () => { r.ws = "open"; ws.close(); done(); };
      ws.onerror = () => { r.ws = "refused"; done(); };
    } catch (e) { r.ws = "blocked: " + e.message; done(); }
  });
  for (const d of ["localhost", "127.0.0.1", location.hostname.split(".").slice(1).join(".")]) {
    document.cookie = "cohort_session=planted; path=/; domain=" + d;
    document.cookie = "cohort_nb=planted; path=/; domain=" + d;
  }
  window.attack = JSON.stringify(r);
})();`

// trustedNotebook is a notebook whose one output is attackJS. Saved
// through Jupyter's contents API with its cells marked trusted, Jupyter
// signs it, so its JavaScript runs for whoever opens it, as with any
// output a participant ran themselves.
func trustedNotebook(js string) []byte {
	nb := map[string]any{
		"type": "notebook", "format": "json",
		"content": map[string]any{
			"nbformat": 4, "nbformat_minor": 5,
			"metadata": map[string]any{"kernelspec": map[string]any{"name": "python3", "display_name": "Python 3", "language": "python"}},
			"cells": []any{map[string]any{
				"cell_type": "code", "id": "c1", "execution_count": 1, "source": "from IPython.display import Javascript",
				"metadata": map[string]any{"trusted": true},
				"outputs": []any{map[string]any{"output_type": "display_data", "metadata": map[string]any{},
					"data": map[string]any{"application/javascript": js, "text/plain": "<IPython.core.display.Javascript object>"}}},
			}},
		},
	}
	b, _ := json.Marshal(nb)
	return b
}

// putNotebook saves a notebook into a session as its participant would.
func putNotebook(t *testing.T, notebookURL, token, name string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, notebookURL+"api/contents/"+name, strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("save notebook = %s %s", resp.Status, b)
	}
}

// TestE2ENotebookCannotActAsItsVisitor is the takeover of issue 11: alice
// plants JavaScript in her notebook and waits for her instructor, then an
// admin, to open it. Nothing it tries may work, and neither victim's role,
// tokens or sessions may change.
func TestE2ENotebookCannotActAsItsVisitor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	srv := startServer(t, dataDir)
	teacher := client.New(srv.url, token(t, dataDir, "teacher@example.com", cohort.RoleInstructor))
	admin := client.New(srv.url, token(t, dataDir, "admin@example.com", cohort.RoleAdmin))
	alice := client.New(srv.url, token(t, dataDir, "alice@example.com", cohort.RoleParticipant))
	bob := client.New(srv.url, token(t, dataDir, "bob@example.com", cohort.RoleParticipant))
	aliceUser, err := alice.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "Strangers", "policy": map[string]any{"seats": 5}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := teacher.AddMembers(ctx, class.ID, []string{"alice@example.com", "bob@example.com"}, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	started, _, err := alice.StartSession(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	mine := waitState(t, alice, started.ID, cohort.StateReady)
	other, _, err := bob.StartSession(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	bobs := waitState(t, bob, other.ID, cohort.StateReady)

	notebookRoot := strings.TrimSuffix(mine.URL, "tree")
	otherWS := "ws" + strings.TrimPrefix(strings.TrimSuffix(bobs.URL, "tree"), "http") + "api/kernels/k/channels"
	js := strings.NewReplacer("APP", srv.url, "ALICE", aliceUser.ID, "OTHER", otherWS).Replace(attackJS)
	putNotebook(t, notebookRoot, alice.Token, "evil.ipynb", trustedNotebook(js))

	for _, victim := range []struct {
		email string
		api   *client.Client
	}{{"teacher@example.com", teacher}, {"admin@example.com", admin}} {
		tokensBefore, err := victim.api.ListTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		browser := newBrowser(t)
		signInAs(t, browser, srv, victim.email)
		// The victim has bob's notebook open too: its cookie is in the jar.
		openNotebookAs(t, browser, srv, other.ID, "/tree")
		step(t, browser, "bob's notebook opens", chromedp.WaitVisible(chromedp.ID("notebook_list")))
		openNotebookAs(t, browser, srv, mine.ID, "/notebooks/evil.ipynb")
		wait, cancel := context.WithTimeout(browser, 60*time.Second)
		report, err := chromedp.Run(wait, chromedp.Poll[string](`window.attack`, chromedp.WithPollingTimeout(50*time.Second)))
		cancel()
		if err != nil {
			t.Fatalf("the notebook's script did not report (did the notebook open?): %v", err)
		}
		t.Logf("%s opened alice's notebook; what its script got: %s", victim.email, report)

		me, err := alice.Me(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if me.Role != cohort.RoleParticipant {
			t.Errorf("alice's notebook, opened by %s, made her %s", victim.email, me.Role)
		}
		if tokens, err := victim.api.ListTokens(ctx); err != nil || len(tokens) != len(tokensBefore) {
			t.Errorf("alice's notebook minted a token as %s: %d tokens, had %d (%v)", victim.email, len(tokens), len(tokensBefore), err)
		}
		var r map[string]string
		if err := json.Unmarshal([]byte(report), &r); err != nil || len(r) != 9 {
			t.Fatalf("the script's report %q has not every attempt", report)
		}
		for name, got := range r {
			if strings.HasSuffix(name, "csrf") && got != "none" {
				t.Errorf("the notebook read %s's CSRF token (%s)", victim.email, name)
			}
			if strings.HasPrefix(got, "200") || strings.HasPrefix(got, "201") || got == "open" {
				t.Errorf("the notebook's %q attempt as %s succeeded: %s", name, victim.email, got)
			}
		}
		// The victim's browser is still signed in to the app as the victim,
		// whatever cookies the notebook tried to plant.
		step(t, browser, "back to the app", chromedp.Navigate(srv.url+"/v1/me"))
		if body := read(t, browser, chromedp.Text(chromedp.CSS("body"))); !strings.Contains(body, `"email":"`+victim.email+`"`) {
			t.Errorf("%s's browser on the app after the visit: %s", victim.email, body)
		}
	}
	if list, err := bob.ListSessions(ctx, class.ID); err != nil || len(list) != 1 || list[0].State != cohort.StateReady {
		t.Errorf("bob's session after the attacks: %+v %v", list, err)
	}
	events, err := alice.ListEvents(ctx, mine.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"teacher@example.com", "admin@example.com"} {
		if !slices.ContainsFunc(events, func(e cohort.Event) bool { return strings.Contains(e.Message, who+" opened this notebook") }) {
			t.Errorf("alice is not told that %s opened her notebook: %+v", who, events)
		}
	}
}

// openNotebookAs opens a session's notebook in a signed-in browser the way
// the pages do: through the app, which asks first when the notebook is
// someone else's.
func openNotebookAs(t *testing.T, browser context.Context, srv *server, sessionID, next string) {
	t.Helper()
	step(t, browser, "ask to open "+sessionID, chromedp.Navigate(srv.url+"/sessions/"+sessionID+"/open?next="+next))
	if at := read(t, browser, chromedp.Location()); strings.HasPrefix(at, srv.url) {
		step(t, browser, "confirm opening someone else's notebook",
			chromedp.Click(chromedp.Search(`//button[text()="Open the notebook"]`)))
	}
	want := srv.notebook(sessionID) + next
	var at string
	for deadline := time.Now().Add(30 * time.Second); at != want && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		// Reading the location while the browser navigates may fail; look again.
		ctx, cancel := context.WithTimeout(browser, 5*time.Second)
		at, _ = chromedp.Run(ctx, chromedp.Location())
		cancel()
	}
	if at != want {
		t.Fatalf("opening %s ended at %s, not at %s", sessionID, at, want)
	}
}

// TestE2EDataIsPrivate: cohort's data directory and database are its
// own alone, also when the directory existed before with a looser mode.
func TestE2EDataIsPrivate(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	if err := os.Chmod(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cleanupNotebooks(t, dataDir)
	startServer(t, dataDir)
	for path, want := range map[string]os.FileMode{dataDir: 0o700, filepath.Join(dataDir, "cohort.db"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %o, want %o", path, fi.Mode().Perm(), want)
		}
	}
}

// TestE2ESaysWhenNotIsolated: without a uid per session (not root, or
// --session-uids off), cohort says at start, in one line, that
// participants are not isolated from each other.
func TestE2ESaysWhenNotIsolated(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	ls := sessionsOf(t, dataDir)
	cleanupNotebooks(t, dataDir)
	runs := []string{"off"}
	if !ls.uids.IsZero() { // root: the isolated case too
		runs = append(runs, ls.uids.String())
	}
	for _, uids := range runs {
		cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--sessions-dir", ls.dir, "--session-uids", uids)
		out := &syncBuffer{}
		cmd.Stderr = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the server to start", func() bool { return strings.Contains(out.String(), "cohort is serving") })
		cmd.Process.Kill()
		cmd.Wait()
		warned := strings.Contains(out.String(), "participants are not isolated from each other")
		if warned != (uids == "off") {
			t.Errorf("--session-uids %s: warned %v\n%s", uids, warned, out)
		}
	}
}
