package api_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/auth"
	"github.com/cohortdev/cohort/auth/localissuer"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/store/sqlite"
)

// browser is an HTTP client with cookies that records where it ended up.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	c := client.HTTPClient()
	c.Jar = jar
	return &browser{t: t, client: c}
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) postForm(u string, v url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.PostForm(u, v)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) cookie(base, name string) string {
	u, _ := url.Parse(base)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// signIn goes through the local issuer's page as a person would, after
// opening the sign-in link cohort prints at start.
func signIn(t *testing.T, e *env, b *browser, email, next string) (*http.Response, string) {
	t.Helper()
	if resp, _ := b.get(e.issuer.SignInLink()); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in link = %d", resp.StatusCode)
	}
	resp, page := b.get(e.http.URL + "/auth/login?next=" + url.QueryEscape(next))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="email"`) {
		t.Fatalf("sign-in page = %d %s", resp.StatusCode, page)
	}
	form := url.Values{"email": {email}}
	for _, k := range []string{"client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method", "response_type", "scope"} {
		form.Set(k, resp.Request.URL.Query().Get(k))
	}
	return b.postForm(resp.Request.URL.String(), form)
}

func TestSignInWithLocalIssuer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBrowser(t)
	resp, body := signIn(t, e, b, "Ada@Example.com", "/v1/me")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/v1/me" {
		t.Fatalf("after sign-in: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.Unmarshal([]byte(body), &me)
	var u cohort.User
	json.Unmarshal([]byte(body), &u)
	if u.Email != "ada@example.com" || u.Role != cohort.RoleParticipant || me.CSRFToken == "" {
		t.Fatalf("/v1/me after sign-in = %s", body)
	}
	ck := b.cookie(e.http.URL, "cohort_session")
	if ck == "" {
		t.Fatal("no session cookie")
	}
	// Only the hash is stored.
	if _, err := e.store.GetBrowserSession(context.Background(), ck); cohort.ErrorCode(err) != cohort.EUNAUTHORIZED {
		t.Fatal("the browser session is stored under the cookie's value, not its hash")
	}
	events, _ := e.store.ListAudit(context.Background(), cohort.AuditFilter{})
	if len(events) == 0 || events[0].Action != cohort.AuditSignIn || events[0].ActorEmail != "ada@example.com" {
		t.Fatalf("audit after sign-in = %+v", events)
	}
	// Sign out revokes the session server-side.
	resp, _ = b.postForm(e.http.URL+"/auth/logout", url.Values{"csrf_token": {me.CSRFToken}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout = %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", e.http.URL+"/v1/me", nil)
	req.AddCookie(&http.Cookie{Name: "cohort_session", Value: ck})
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old cookie after logout = %d, want 401", r2.StatusCode)
	}
}

func TestSignInBootstrapAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, body := signIn(t, e, newBrowser(t), "boss@example.com", "/v1/me")
	if !strings.Contains(body, `"role":"admin"`) {
		t.Fatalf("bootstrap admin after sign-in: %s", body)
	}
}

func TestSignInRefusesBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A callback with no sign-in behind it.
	resp, page := newBrowser(t).get(e.http.URL + "/auth/callback?code=x&state=y")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "not started in this browser") {
		t.Fatalf("callback without a login = %d %s", resp.StatusCode, page)
	}
	// A replayed callback: the state was used up by the first.
	b := newBrowser(t)
	b.get(e.issuer.SignInLink())
	resp, _ = b.get(e.http.URL + "/auth/login")
	form := url.Values{"email": {"ada@example.com"}}
	for k, v := range resp.Request.URL.Query() {
		form[k] = v
	}
	noRedirect := &http.Client{Jar: b.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := noRedirect.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	callback := r.Header.Get("Location")
	state := resp.Request.URL.Query().Get("state")
	if resp, _ := b.get(callback); resp.StatusCode != http.StatusOK {
		t.Fatalf("first callback = %d", resp.StatusCode)
	}
	// Replay with the login cookie restored, as an attacker holding both would.
	b.client.Jar.SetCookies(resp.Request.URL, []*http.Cookie{{Name: "cohort_login", Value: state, Path: "/auth/"}})
	u, _ := url.Parse(e.http.URL)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "cohort_login", Value: state, Path: "/auth/"}})
	if resp, page := b.get(callback); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "already used") {
		t.Fatalf("replayed callback = %d %s", resp.StatusCode, page)
	}
	// Tampered cookie.
	req, _ := http.NewRequest("GET", e.http.URL+"/v1/me", nil)
	req.AddCookie(&http.Cookie{Name: "cohort_session", Value: "forged"})
	r, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged cookie = %d", r.StatusCode)
	}
	// The local issuer refuses to send codes anywhere but cohort.
	q := resp.Request.URL.Query()
	q.Set("redirect_uri", "https://evil.example/steal")
	if resp, _ := b.get(e.http.URL + "/local-oidc/authorize?" + q.Encode()); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("authorize with a foreign redirect_uri = %d", resp.StatusCode)
	}
}

func TestSignInExpiredCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clock := time.Now()
	e.db.Now = func() time.Time { return clock }
	b := newBrowser(t)
	if resp, _ := signIn(t, e, b, "ada@example.com", "/v1/me"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in = %d", resp.StatusCode)
	}
	clock = clock.Add(13 * time.Hour)
	if resp, _ := b.get(e.http.URL + "/v1/me"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("13h later = %d, want 401", resp.StatusCode)
	}
}

// testIssuer is an OIDC issuer whose tokens can be wrong in one chosen way.
// Its authorize endpoint approves at once, as a signed-in Google would.
type testIssuer struct {
	*httptest.Server
	key, otherKey *rsa.PrivateKey
	fault         string
	hd            string
	nonces        map[string]string // code -> nonce
}

func newTestIssuer(t *testing.T, fault, hd string) *testIssuer {
	ti := &testIssuer{fault: fault, hd: hd, nonces: map[string]string{}}
	ti.key, _ = rsa.GenerateKey(rand.Reader, 2048)
	ti.otherKey, _ = rsa.GenerateKey(rand.Reader, 2048)
	ti.Server = httptest.NewServer(http.HandlerFunc(ti.serve))
	t.Cleanup(ti.Close)
	return ti
}

func (ti *testIssuer) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		json.NewEncoder(w).Encode(map[string]any{"issuer": ti.URL, "authorization_endpoint": ti.URL + "/authorize",
			"token_endpoint": ti.URL + "/token", "jwks_uri": ti.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
	case "/jwks":
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &ti.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	case "/authorize":
		q := r.URL.Query()
		code := cohort.NewSecret("")
		ti.nonces[code] = q.Get("nonce")
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+q.Get("state"), http.StatusFound)
	case "/token":
		r.ParseForm()
		if r.PostForm.Get("code_verifier") == "" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		claims := map[string]any{"iss": ti.URL, "sub": "123", "aud": "cohort-test", "iat": time.Now().Unix(),
			"exp": time.Now().Add(5 * time.Minute).Unix(), "nonce": ti.nonces[r.PostForm.Get("code")],
			"email": "ada@uni.edu", "email_verified": true}
		if ti.hd != "" {
			claims["hd"] = ti.hd
		}
		key := ti.key
		switch ti.fault {
		case "signature":
			key = ti.otherKey
		case "audience":
			claims["aud"] = "someone-else"
		case "expired":
			claims["exp"] = time.Now().Add(-time.Hour).Unix()
		case "unverified":
			claims["email_verified"] = false
		case "nonce":
			claims["nonce"] = "not-yours"
		case "issuer":
			claims["iss"] = "https://impostor.example"
		}
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		jws, _ := signer.Sign(must(json.Marshal(claims)))
		tok, _ := jws.CompactSerialize()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "id_token": tok})
	default:
		http.NotFound(w, r)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSignInVerifiesIDToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fault, hd, want string
		status          int
	}{
		{"", "uni.edu", "", http.StatusOK},
		{"signature", "uni.edu", "signature does not verify", http.StatusUnauthorized},
		{"audience", "uni.edu", "another application", http.StatusUnauthorized},
		{"expired", "uni.edu", "expired", http.StatusUnauthorized},
		{"issuer", "uni.edu", "another issuer", http.StatusUnauthorized},
		{"nonce", "uni.edu", "nonce mismatch", http.StatusUnauthorized},
		{"unverified", "uni.edu", "not verified", http.StatusForbidden},
		// An email at uni.edu, but no hd claim: a personal account.
		{"", "", "only accounts of uni.edu", http.StatusForbidden},
		{"", "other.edu", "only accounts of uni.edu", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.fault+"/"+tt.hd, func(t *testing.T) {
			t.Parallel()
			ti := newTestIssuer(t, tt.fault, tt.hd)
			store, err := sqlite.Open(context.Background(), freshDB(t))
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			srv, _ := serve(t, func(string) api.Options {
				return api.Options{Store: store, Enqueuer: &recorder{},
					Auth: auth.New(auth.Options{Issuer: ti.URL, ClientID: "cohort-test", ClientSecret: "s", HostedDomain: "uni.edu"})}
			})
			b := newBrowser(t)
			resp, page := b.get(srv.URL + "/auth/login?next=/v1/me")
			if resp.StatusCode != tt.status || !strings.Contains(page, tt.want) {
				t.Fatalf("sign-in = %d %s, want %d with %q", resp.StatusCode, page, tt.status, tt.want)
			}
			users, _ := store.ListUsers(context.Background())
			events, _ := store.ListAudit(context.Background(), cohort.AuditFilter{})
			if tt.status != http.StatusOK {
				if b.cookie(srv.URL, "cohort_session") != "" || len(users) != 0 {
					t.Fatalf("a refused sign-in left a cookie or %d users", len(users))
				}
				if len(events) != 1 || events[0].Action != cohort.AuditSignInFailed || !strings.Contains(events[0].Detail, tt.want) {
					t.Fatalf("audit of a refused sign-in = %+v", events)
				}
				return
			}
			if len(users) != 1 || users[0].HostedDomain != "uni.edu" {
				t.Fatalf("users after sign-in = %+v", users)
			}
		})
	}
}

func TestFirstAccountBecomesAdmin(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(context.Background(), freshDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e := &env{t: t, db: store}
	e.http, e.server = serve(t, func(url string) api.Options {
		e.issuer, _ = localissuer.New(localissuer.Options{URL: url + "/local-oidc", RedirectOK: func(string) bool { return true }})
		return api.Options{Store: store, Enqueuer: &recorder{}, FirstUserAdmin: true,
			Auth:        auth.New(auth.Options{Issuer: e.issuer.URL(), ClientID: localissuer.ClientID, Endpoints: e.issuer.Endpoints()}),
			LocalIssuer: e.issuer, LocalIssuerPath: "/local-oidc"}
	})
	if _, body := signIn(t, e, newBrowser(t), "first@example.com", "/v1/me"); !strings.Contains(body, `"role":"admin"`) {
		t.Fatalf("first account: %s", body)
	}
	if _, body := signIn(t, e, newBrowser(t), "second@example.com", "/v1/me"); !strings.Contains(body, `"role":"participant"`) {
		t.Fatalf("second account: %s", body)
	}
}
