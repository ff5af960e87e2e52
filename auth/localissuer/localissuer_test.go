package localissuer_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cohortdev/cohort/auth/localissuer"
)

// callback is the one redirect URI the test issuers accept.
const callback = "http://127.0.0.1:1/auth/callback"

// newIssuer serves an issuer that sends codes to callback only.
func newIssuer(t *testing.T) (*localissuer.Issuer, *httptest.Server) {
	t.Helper()
	var is *localissuer.Issuer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { is.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	var err error
	is, err = localissuer.New(localissuer.Options{URL: srv.URL, RedirectOK: func(u string) bool { return u == callback }})
	if err != nil {
		t.Fatal(err)
	}
	return is, srv
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	is, srv := newIssuer(t)
	noRedirect := withLink(t, is)
	verifier := "a-verifier-long-enough-for-pkce-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	authorize := func(email string) string {
		form := url.Values{"email": {email}, "client_id": {localissuer.ClientID}, "redirect_uri": {callback},
			"state": {"st"}, "nonce": {"n"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
			"code_challenge_method": {"S256"}, "response_type": {"code"}}
		resp, err := noRedirect.PostForm(srv.URL+"/authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("state") != "st" {
			t.Fatalf("authorize = %d to %s", resp.StatusCode, loc)
		}
		return loc.Query().Get("code")
	}
	token := func(code, verifier string) (int, map[string]any) {
		resp, err := http.PostForm(srv.URL+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {callback}, "client_id": {localissuer.ClientID}, "code_verifier": {verifier}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if status, out := token(authorize("ada@example.com"), "wrong-verifier"); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("wrong PKCE verifier = %d %v", status, out)
	}
	code := authorize("ada@example.com")
	if status, out := token(code, verifier); status != 200 || !strings.Contains(out["id_token"].(string), ".") {
		t.Fatalf("token = %d %v", status, out)
	}
	if status, _ := token(code, verifier); status != 400 {
		t.Fatalf("reused code = %d", status)
	}
	// Bad email: the form comes back with the error next to the field.
	form := url.Values{"email": {"nope"}, "client_id": {localissuer.ClientID}, "redirect_uri": {callback}, "state": {"st"}, "nonce": {"n"},
		"code_challenge": {"c"}, "code_challenge_method": {"S256"}, "response_type": {"code"}}
	resp, err := noRedirect.PostForm(srv.URL+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad email = %d", resp.StatusCode)
	}
	form.Set("email", "ada@example.com")
	form.Set("redirect_uri", "https://evil.example/cb")
	resp, err = noRedirect.PostForm(srv.URL+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("foreign redirect_uri = %d", resp.StatusCode)
	}
}

// withLink returns a browser-like client (cookies, no redirects followed)
// that opened the issuer's sign-in link.
func withLink(t *testing.T, is *localissuer.Issuer) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(is.SignInLink())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in link = %d", resp.StatusCode)
	}
	return c
}

// TestSignInNeedsTheLink: loopback is not enough. A participant's kernel
// on the same machine reaches the issuer; without the secret of the link
// cohort printed at start it signs nobody in, and a request that came
// through a forwarding proxy is refused even with it.
func TestSignInNeedsTheLink(t *testing.T) {
	t.Parallel()
	is, srv := newIssuer(t)
	form := url.Values{"email": {"admin@example.com"}, "client_id": {localissuer.ClientID}, "redirect_uri": {callback}, "state": {"st"},
		"nonce": {"n"}, "code_challenge": {"c"}, "code_challenge_method": {"S256"}, "response_type": {"code"}}
	post := func(c *http.Client, header http.Header) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/authorize", strings.NewReader(form.Encode()))
		req.Header = header.Clone()
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp := post(noRedirect, http.Header{}); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
		t.Fatalf("sign-in without the link = %d (Location %q), want 403", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A stale or guessed key is not the link.
	resp, err := noRedirect.Get(srv.URL + "/link?key=guess")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("a wrong key = %d with cookies %v", resp.StatusCode, resp.Cookies())
	}
	linked := withLink(t, is)
	if resp := post(linked, http.Header{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in through the link = %d, want a redirect with a code", resp.StatusCode)
	}
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-Ip"} {
		if resp := post(linked, http.Header{h: {"203.0.113.9"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("sign-in with %s = %d, want 403", h, resp.StatusCode)
		}
	}
	resp, err = http.Get(srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery = %d: the relying party reads it without the link", resp.StatusCode)
	}
}
