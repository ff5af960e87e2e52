package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort/client"
)

// signInBrowser signs a cookie-keeping HTTP client in through the
// server's built-in issuer, as a person at the email form would, and
// returns it at the page it ended on.
func signInBrowser(t *testing.T, srv *server, email, next string) (*http.Client, *http.Response, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := client.HTTPClient()
	b.Jar = jar
	resp, err := b.Get(srv.signInLink())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = b.Get(srv.url + "/auth/login?next=" + url.QueryEscape(next))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/local-oidc/authorize") {
		t.Fatalf("sign-in page = %d at %s", resp.StatusCode, resp.Request.URL)
	}
	form := resp.Request.URL.Query()
	form.Set("email", email)
	resp, err = b.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return b, resp, string(body)
}

func TestE2EBrowserAndCLISignIn(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	srv := startServer(t, dataDir, "COHORT_ADMINS=boss@example.com")
	// A client that did not come through the link cohort printed (a
	// participant's kernel on this machine, say) signs nobody in, and
	// neither does a forwarded request.
	jar, _ := cookiejar.New(nil)
	stranger := client.HTTPClient()
	stranger.Jar = jar
	resp, err := stranger.Get(srv.url + "/auth/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Request.URL.Path != "/local-oidc/authorize" {
		t.Fatalf("sign-in without the link = %d at %s, want 403 at the issuer", resp.StatusCode, resp.Request.URL)
	}
	req, _ := http.NewRequest("GET", srv.signInLink(), nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	if resp, err = stranger.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the link through a forwarding proxy = %d, want 403", resp.StatusCode)
	}
	b, resp, body := signInBrowser(t, srv, "boss@example.com", "/v1/me")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"role":"admin"`) {
		t.Fatalf("browser sign-in = %d %s", resp.StatusCode, body)
	}

	// `cohort login` on a "headless" machine: it prints a link; the
	// signed-in browser approves the code; the CLI stores its token.
	config := t.TempDir()
	login := exec.Command(binary, "login", "--url", srv.url, "--no-browser")
	login.Env = append(os.Environ(), "XDG_CONFIG_HOME="+config)
	stderr, _ := login.StderrPipe()
	var stdout strings.Builder
	login.Stdout = &stdout
	if err := login.Start(); err != nil {
		t.Fatal(err)
	}
	defer login.Process.Kill()
	// It prints where to go and, apart, the code to type there.
	link, code := "", ""
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && code == "" {
		switch l := strings.TrimSpace(sc.Text()); {
		case strings.HasPrefix(l, "http"):
			link = l
		case len(l) == 9 && l[4] == '-':
			code = l
		}
	}
	go io.Copy(io.Discard, stderr)
	if link != srv.url+"/auth/device" || code == "" {
		t.Fatalf("cohort login printed link %q and code %q", link, code)
	}
	resp, err = b.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := between(string(page), `name="csrf_token" value="`, `"`)
	resp, err = b.PostForm(srv.url+"/auth/device", url.Values{"code": {code}, "csrf_token": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	host, _ := os.Hostname()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "cohort login on "+host) {
		t.Fatalf("the typed code shows = %d %s, want the client's name", resp.StatusCode, page)
	}
	resp, err = b.PostForm(srv.url+"/auth/device", url.Values{"code": {code}, "confirm": {"yes"}, "csrf_token": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve = %d", resp.StatusCode)
	}
	done := make(chan error, 1)
	go func() { done <- login.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(stdout.String(), "signed in to "+srv.url+" as boss@example.com (admin)") {
			t.Fatalf("cohort login = %v, %q", err, stdout.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cohort login did not finish after approval")
	}
	info, err := os.Stat(config + "/cohort/credentials.json")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v", err, info.Mode())
	}
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append(args, "--url", srv.url)...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+config, "COHORT_TOKEN=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := cli("audit"); err != nil || !strings.Contains(out, "sign_in") || !strings.Contains(out, "token_created") {
		t.Fatalf("cohort audit with the stored token = %v\n%s", err, out)
	}
	if out, err := cli("logout"); err != nil || !strings.Contains(out, "signed out") {
		t.Fatalf("logout = %v %s", err, out)
	}
	if out, err := cli("audit"); err == nil || !strings.Contains(out, "not signed in") {
		t.Fatalf("after logout = %v %s", err, out)
	}
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

func TestE2ELocalIssuerOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--addr", "0.0.0.0:0", "--public-url", "http://cohort.example.org"},
		{"--addr", ":0", "--public-url", "http://cohort.example.org"},
		{"--addr", "127.0.0.1:0", "--public-url", "https://cohort.example.org"},
	} {
		cmd := exec.Command(binary, append([]string{"serve", "--data-dir", t.TempDir()}, args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "runs only on a loopback address") {
			t.Errorf("serve %v = %v\n%s", args, err, out)
		}
	}
}
