package main

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/cost"
	"github.com/cohortdev/cohort/materials/materialstest"
)

const chromiumBin = "/usr/bin/chromium"

// newBrowser starts headless Chromium for one test, with the flags this
// machine needs (root, no network beyond loopback).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumBin); err != nil {
		t.Fatalf("%s is missing: run `make test-deps` (Debian package chromium)", chromiumBin)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumBin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1200, 1000),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Whatever asks for confirmation gets a yes, as from a person clicking OK.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// step runs actions with a time limit, failing the test with what it was doing.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// read returns a value from the page, failing the test if it cannot.
func read[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// shot saves a screenshot when COHORT_SCREENSHOTS names a directory
// (`make screenshots` refreshes docs/screenshots that way).
func shot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("COHORT_SCREENSHOTS")
	if dir == "" {
		return
	}
	buf := read(t, ctx, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// signInAs signs the browser in through the built-in issuer's page, after
// the sign-in link the server printed (the browser keeps what the link
// gave it; opening it again does no harm).
func signInAs(t *testing.T, ctx context.Context, srv *server, email string) {
	t.Helper()
	step(t, ctx, "sign in as "+email,
		chromedp.Navigate(srv.signInLink()),
		chromedp.Navigate(srv.url+"/auth/login?next=/"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`header nav`)),
	)
}

func signOutBrowser(t *testing.T, ctx context.Context) {
	t.Helper()
	step(t, ctx, "sign out",
		chromedp.Click(chromedp.CSS(`header form button`)),
		chromedp.WaitVisible(chromedp.CSS(`main a[href="/auth/login"]`)),
	)
}

func TestE2EWorkshopInTheBrowser(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	prices := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(prices, []byte(`{"local_hour": 0.60}`), 0o644); err != nil {
		t.Fatal(err)
	}
	private := materialstest.ServePrivate(t, materialstest.NewRepo(t, map[string]string{"secret.ipynb": "{}"}), "x-access-token", "github_pat_browser")
	srv := startServer(t, dataDir, "COHORT_PRICES="+prices, "COHORT_MATERIALS_CA_FILE="+private.CAFile)
	teacherToken := token(t, dataDir, "teacher@example.com", cohort.RoleInstructor) // an admin made them instructor
	ctx := newBrowser(t)
	base := srv.url

	// The instructor creates a class; a mistake is shown next to its field.
	signInAs(t, ctx, srv, "teacher@example.com")
	step(t, ctx, "fill the new class form",
		chromedp.Navigate(base+"/classes/new"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Train a spaCy model"),
		chromedp.SetValue(chromedp.ID("seats"), "0"),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("err-seats")),
	)
	if msg := read(t, ctx, chromedp.Text(chromedp.ID("err-seats"))); !strings.Contains(msg, "seats must be at least 1") {
		t.Fatalf("seats error shown: %q", msg)
	}
	if inv := read(t, ctx, chromedp.AttributeValue(chromedp.ID("seats"), "aria-invalid")); inv.Value != "true" {
		t.Fatalf("seats field aria-invalid = %q", inv.Value)
	}
	shot(t, ctx, "new-class-error")
	step(t, ctx, "fix the form and create",
		chromedp.SetValue(chromedp.ID("seats"), "5"),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("roster-h")),
	)
	manageURL := read(t, ctx, chromedp.Location())
	classID := strings.TrimSuffix(strings.TrimPrefix(manageURL, base+"/classes/"), "/manage")

	// ... gives it its materials: a mistake shows next to its field, then
	// the example workshop goes up as an archive.
	workshop := filepath.Join(t.TempDir(), "workshop.tgz")
	if out, err := exec.Command("tar", "czf", workshop, "-C", "../../examples/spacy-workshop", ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	step(t, ctx, "a repository that does not exist",
		chromedp.SendKeys(chromedp.ID("repo"), "/nonexistent/workshop.git"),
		chromedp.Click(chromedp.Search(`//button[text()="Use this repository"]`)),
		chromedp.WaitVisible(chromedp.ID("err-repo")),
	)
	if msg := read(t, ctx, chromedp.Text(chromedp.ID("err-repo"))); !strings.Contains(msg, "no git repository at /nonexistent/workshop.git") {
		t.Fatalf("repository error shown: %q", msg)
	}
	step(t, ctx, "a private repository with its token",
		chromedp.SetValue(chromedp.ID("repo"), private.URL),
		chromedp.SendKeys(chromedp.ID("token"), "github_pat_browser"),
		chromedp.Click(chromedp.Search(`//button[text()="Use this repository"]`)),
		chromedp.WaitVisible(chromedp.Search(`//button[text()="Remove materials"]`)),
	)
	if m := read(t, ctx, chromedp.Text(chromedp.CSS(`[data-materials]`))); !strings.Contains(m, "private: fetched with the token") || !strings.Contains(m, "1 files") {
		t.Fatalf("materials section after a private repository: %q", m)
	}
	if page := read(t, ctx, chromedp.OuterHTML(chromedp.CSS(`html`))); strings.Contains(page, "github_pat_browser") {
		t.Fatal("the page holds the token after it was set")
	}
	step(t, ctx, "a new ref, the token field left empty, keeps the token",
		chromedp.SetValue(chromedp.ID("repo"), private.URL),
		chromedp.SetValue(chromedp.ID("ref"), "main"),
		chromedp.Click(chromedp.Search(`//button[text()="Use this repository"]`)),
		chromedp.WaitVisible(chromedp.Search(`//section[@data-materials]//p[contains(., "at main") and contains(., "private")]`)),
	)
	step(t, ctx, "dropping the token of a private repository is refused, naming why",
		chromedp.SetValue(chromedp.ID("repo"), private.URL),
		chromedp.Click(chromedp.CSS(`input[type=checkbox][name=token]`)),
		chromedp.Click(chromedp.Search(`//button[text()="Use this repository"]`)),
		chromedp.WaitVisible(chromedp.ID("err-repo")),
	)
	if msg := read(t, ctx, chromedp.Text(chromedp.ID("err-repo"))); !strings.Contains(msg, "asks for credentials") {
		t.Fatalf("dropping the token: %q", msg)
	}
	step(t, ctx, "upload the workshop",
		chromedp.SetUploadFiles(chromedp.ID("archive"), []string{workshop}),
		chromedp.Click(chromedp.Search(`//button[text()="Upload"]`)),
		// The page reloads: the private repository's materials were
		// shown with the same button before.
		chromedp.WaitVisible(chromedp.Search(`//section[@data-materials]//p[contains(., "Archive workshop.tgz")]`)),
	)
	if m := read(t, ctx, chromedp.Text(chromedp.CSS(`[data-materials]`))); !strings.Contains(m, "Archive workshop.tgz") || !strings.Contains(m, "4 files") {
		t.Fatalf("materials section: %q", m)
	}

	// ... and enrolls a participant.
	step(t, ctx, "enroll alice",
		chromedp.SendKeys(chromedp.ID("emails"), "alice@example.com"),
		chromedp.Click(chromedp.CSS(`section[aria-labelledby=roster-h] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.Search(`//td[text()="alice@example.com"]`)),
	)
	shot(t, ctx, "manage-class")
	signOutBrowser(t, ctx)

	// The participant starts a session and watches it become ready.
	signInAs(t, ctx, srv, "alice@example.com")
	step(t, ctx, "see the class", chromedp.WaitVisible(chromedp.Search(`//button[text()="Start notebook"]`)))
	shot(t, ctx, "participant-home")
	step(t, ctx, "start the notebook",
		chromedp.Click(chromedp.Search(`//button[text()="Start notebook"]`)),
		chromedp.WaitVisible(chromedp.Search(`//a[text()="Open notebook"]`)),
	)
	progress := read(t, ctx, chromedp.TextContent(chromedp.CSS(`.progress`)))
	if !strings.Contains(progress, "starting the notebook") || !strings.Contains(progress, "notebook ready") {
		t.Fatalf("progress shown: %q", progress)
	}
	step(t, ctx, "let the countdown tick", chromedp.Sleep(1100*time.Millisecond))
	if left := read(t, ctx, chromedp.Text(chromedp.CSS(`strong[data-until]`))); !strings.Contains(left, "h") && !strings.Contains(left, "min") {
		t.Fatalf("time left shown: %q", left)
	}
	shot(t, ctx, "participant-ready")
	openURL := read(t, ctx, chromedp.AttributeValue(chromedp.Search(`//a[text()="Open notebook"]`), "href")).Value
	sessionID := strings.TrimSuffix(strings.TrimPrefix(openURL, "/sessions/"), "/open")
	step(t, ctx, "open the notebook",
		chromedp.Navigate(base+openURL),
		chromedp.WaitVisible(chromedp.ID("notebook_list")),
	)
	step(t, ctx, "the class's materials are in the notebook's folder", chromedp.WaitVisible(chromedp.Search(`//span[text()="train.ipynb"]`)))
	if title := read(t, ctx, chromedp.Title()); !strings.Contains(title, "Home") {
		t.Fatalf("Jupyter through the proxy has title %q", title)
	}
	if at := read(t, ctx, chromedp.Location()); at != srv.notebook(sessionID)+"/tree" {
		t.Fatalf("the notebook opened at %s, want its own origin %s", at, srv.notebook(sessionID))
	}
	shot(t, ctx, "notebook")
	step(t, ctx, "back home", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`header nav`)))
	if href := read(t, ctx, chromedp.AttributeValue(chromedp.Search(`//a[text()="Download all my work (zip)"]`), "href")).Value; href != "/v1/classes/"+classID+"/work" {
		t.Fatalf("the download link goes to %q", href)
	}
	step(t, ctx, "ask for the class's updates",
		chromedp.Click(chromedp.Search(`//button[text()="Get the class's updates"]`)),
		chromedp.WaitVisible(chromedp.Search(`//ol[contains(@class, "progress")]/li[contains(., "nothing new")]`)),
	)
	signOutBrowser(t, ctx)

	// The instructor sees the seat in the live table.
	signInAs(t, ctx, srv, "teacher@example.com")
	step(t, ctx, "open the seat table",
		chromedp.Navigate(base+"/classes/"+classID+"/manage"),
		chromedp.WaitVisible(chromedp.CSS(`[data-seats] table`)),
	)
	if seats := read(t, ctx, chromedp.Text(chromedp.CSS(`[data-seats]`))); !strings.Contains(seats, "alice@example.com") || !strings.Contains(seats, "ready") {
		t.Fatalf("seat table: %q", seats)
	}
	// Warm seats from the page: the pool's window shows; with everyone on
	// the roster started, none is wanted.
	step(t, ctx, "warm seats",
		chromedp.Click(chromedp.Search(`//button[text()="Warm a seat for everyone yet to start"]`)),
		chromedp.WaitVisible(chromedp.Search(`//button[text()="Drain"]`)),
	)
	if pool := read(t, ctx, chromedp.Text(chromedp.CSS(`[data-pool]`))); !strings.Contains(pool, "Kept warm from") || !strings.Contains(pool, "0 wanted now") {
		t.Fatalf("warm seats section: %q", pool)
	}
	// The class's money on its page is what `cohort class cost --json` says.
	spend, err := client.New(srv.url, teacherToken).ClassCost(context.Background(), classID)
	if err != nil {
		t.Fatal(err)
	}
	figures := map[string]string{}
	for _, f := range []string{"spent", "running", "committed", "budget", "estimate"} {
		figures[f] = read(t, ctx, chromedp.Text(chromedp.CSS(`[data-cost] [data-`+f+`]`)))
	}
	money := func(v float64) string { return cost.Money(v, spend.Currency) }
	if figures["committed"] != money(spend.Committed) || figures["running"] != "1 running, "+money(spend.RunningHour)+" an hour" ||
		!strings.Contains(figures["estimate"], "at most "+money(spend.Max)) || figures["budget"] != "none" {
		t.Errorf("the page's figures %q do not match the API's %+v", figures, spend)
	}
	if shown, err := strconv.ParseFloat(strings.TrimPrefix(figures["spent"], "$"), 64); err != nil || math.Abs(shown-spend.Spent) > 0.011 {
		t.Errorf("the page shows %s spent, the API %v", figures["spent"], spend.Spent)
	}
	if n := read(t, ctx, chromedp.AttributeValue(chromedp.CSS(`[data-cost] polyline`), "points")); len(strings.Fields(n.Value)) != 49 {
		t.Errorf("spend chart has points %q, want 49", n.Value)
	}
	shot(t, ctx, "seat-table")
	signOutBrowser(t, ctx)

	// Another participant sees neither the class nor the session.
	signInAs(t, ctx, srv, "bob@example.com")
	if home := read(t, ctx, chromedp.Text(chromedp.CSS(`main`))); strings.Contains(home, "spaCy") || !strings.Contains(home, "not enrolled") {
		t.Fatalf("bob's home: %q", home)
	}
	step(t, ctx, "bob tries alice's notebook", chromedp.Navigate(base+openURL))
	if body := read(t, ctx, chromedp.Text(chromedp.CSS(`body`))); !strings.Contains(body, "not found") {
		t.Fatalf("bob at alice's notebook: %q", body)
	}
	step(t, ctx, "bob tries alice's notebook origin", chromedp.Navigate(srv.notebook(sessionID)+"/tree"))
	if body := read(t, ctx, chromedp.Text(chromedp.CSS(`body`))); !strings.Contains(body, "not found") {
		t.Fatalf("bob at alice's notebook origin: %q", body)
	}
	step(t, ctx, "bob goes home", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`header nav`)))
	signOutBrowser(t, ctx)

	// The participant stops the session.
	signInAs(t, ctx, srv, "alice@example.com")
	step(t, ctx, "stop the session",
		chromedp.Click(chromedp.Search(`//button[text()="Stop session"]`)),
		chromedp.WaitVisible(chromedp.Search(`//button[text()="Start a new session"]`)),
	)
	if state := read(t, ctx, chromedp.Text(chromedp.CSS(`.badge`))); state != "stopped" {
		t.Fatalf("badge after stop: %q", state)
	}
	shot(t, ctx, "participant-stopped")
	if n := notebookProcs(t, dataDir, sessionID); n != 0 {
		t.Fatalf("%d notebook processes left after stopping in the browser", n)
	}
}
