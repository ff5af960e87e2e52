package localissuer_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cohortdev/cohort/auth/localissuer"
)

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	var is *localissuer.Issuer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { is.ServeHTTP(w, r) }))
	defer srv.Close()
	callback := "http://127.0.0.1:1/auth/callback"
	var err error
	is, err = localissuer.New(srv.URL, func(u string) bool { return u == callback }, nil)
	if err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
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
	resp, err := http.PostForm(srv.URL+"/authorize", form)
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
