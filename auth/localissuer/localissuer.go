// Package localissuer is a small OpenID Connect issuer for one machine: it
// lets a person sign in as any email they type, so that `make run` signs
// people in through the same code path as Google, with no account and no
// network. Loopback alone does not make that person the operator: a
// participant's kernel on the same machine reaches loopback too. So the
// issuer trusts only a browser that came through its sign-in link, which
// holds a secret made at each start and printed by `cohort serve` (as
// Jupyter prints its token URL), and it refuses requests that came through
// a forwarding proxy. cohort also refuses to run it on a non-loopback
// address.
package localissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/cohortdev/cohort"
)

// ClientID is the one client the local issuer knows: cohort itself.
const ClientID = "cohort-local"

// keyCookie holds the startup secret in a browser that came through the
// sign-in link; only the issuer's own paths see it.
const keyCookie = "cohort_signin_key"

// Options configure an Issuer.
type Options struct {
	// URL is the issuer's URL, e.g. http://127.0.0.1:8080/local-oidc.
	URL string
	// RedirectOK says where codes may be sent: cohort's own callback only,
	// so that the issuer cannot be used to hand codes elsewhere. Required.
	RedirectOK func(uri string) bool
	// AfterLink is where the sign-in link sends the browser once it holds
	// the secret (cohort's sign-in start).
	AfterLink string
	// Secure marks the secret's cookie Secure (cohort served over https).
	Secure bool
	Now    func() time.Time
}

// Issuer serves the OIDC endpoints under its URL's path.
type Issuer struct {
	url       string // e.g. http://127.0.0.1:8080/local-oidc
	path      string // its path, e.g. /local-oidc
	keyID     string
	now       func() time.Time
	key       string // the startup secret of the sign-in link
	afterLink string
	secure    bool

	// The signing key is made on first use: most starts never sign anyone in.
	keyOnce    sync.Once
	signingKey *rsa.PrivateKey
	signer     jose.Signer
	keyErr     error
	redirectOK func(uri string) bool

	mu    sync.Mutex
	codes map[string]grant
}

type grant struct {
	email, nonce, challenge, redirectURI string
	expires                              time.Time
}

// New returns an issuer with a fresh startup secret.
func New(opts Options) (*Issuer, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RedirectOK == nil {
		return nil, fmt.Errorf("local issuer: RedirectOK is required")
	}
	u, err := url.Parse(strings.TrimRight(opts.URL, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("local issuer: %q is not a URL", opts.URL)
	}
	return &Issuer{url: u.String(), path: u.Path, keyID: cohort.NewID("key"), now: opts.Now, key: cohort.NewSecret(""),
		afterLink: cmpOr(opts.AfterLink, "/"), secure: opts.Secure, redirectOK: opts.RedirectOK, codes: map[string]grant{}}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (is *Issuer) keys() (*rsa.PrivateKey, jose.Signer, error) {
	is.keyOnce.Do(func() {
		is.signingKey, is.keyErr = rsa.GenerateKey(rand.Reader, 2048)
		if is.keyErr != nil {
			return
		}
		is.signer, is.keyErr = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: is.signingKey},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", is.keyID))
	})
	return is.signingKey, is.signer, is.keyErr
}

// SignInLink returns the link that lets a browser sign in: print it for
// the operator, never log it where others read.
func (is *Issuer) SignInLink() string {
	return is.url + "/link?" + url.Values{"key": {is.key}}.Encode()
}

// URL returns the issuer URL.
func (is *Issuer) URL() string { return is.url }

// Endpoints describes the issuer to a relying party without discovery.
func (is *Issuer) Endpoints() *oidc.ProviderConfig {
	return &oidc.ProviderConfig{
		IssuerURL: is.url, AuthURL: is.url + "/authorize", TokenURL: is.url + "/token",
		JWKSURL: is.url + "/jwks", Algorithms: []string{"RS256"},
	}
}

// ServeHTTP serves the endpoint named by the request path's suffix.
func (is *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if forwarded(r) {
		// A proxy in front can make a distant browser look local (and
		// rewrite Host to pass cohort's loopback check): refuse it all.
		http.Error(w, "the built-in sign-in takes only direct requests on this machine, not forwarded ones", http.StatusForbidden)
		return
	}
	switch p := r.URL.Path; {
	case strings.HasSuffix(p, "/.well-known/openid-configuration"):
		is.discovery(w)
	case strings.HasSuffix(p, "/jwks"):
		key, _, err := is.keys()
		if err != nil {
			http.Error(w, "no signing key", http.StatusInternalServerError)
			return
		}
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: is.keyID, Algorithm: "RS256", Use: "sig"}}})
	case strings.HasSuffix(p, "/link") && r.Method == http.MethodGet:
		is.link(w, r)
	case strings.HasSuffix(p, "/authorize") && !is.holdsKey(r):
		is.noKey(w)
	case strings.HasSuffix(p, "/authorize") && r.Method == http.MethodGet:
		is.form(w, r, "")
	case strings.HasSuffix(p, "/authorize") && r.Method == http.MethodPost:
		is.authorize(w, r)
	case strings.HasSuffix(p, "/token") && r.Method == http.MethodPost:
		is.token(w, r)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

// forwarded reports whether a request came through a proxy that says so.
func forwarded(r *http.Request) bool {
	for k := range r.Header {
		if k == "Forwarded" || strings.HasPrefix(k, "X-Forwarded-") || k == "X-Real-Ip" {
			return true
		}
	}
	return false
}

// link takes the startup secret from the sign-in link into a cookie of
// the issuer's own path, and goes on to sign in.
func (is *Issuer) link(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("key")), []byte(is.key)) != 1 {
		w.WriteHeader(http.StatusForbidden)
		noKeyPage.Execute(w, "This sign-in link is not the current one: cohort makes a new one each time it starts.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: keyCookie, Value: is.key, Path: is.path + "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: is.secure})
	http.Redirect(w, r, is.afterLink, http.StatusSeeOther)
}

func (is *Issuer) holdsKey(r *http.Request) bool {
	ck, err := r.Cookie(keyCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(ck.Value), []byte(is.key)) == 1
}

var noKeyPage = template.Must(template.New("nokey").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to cohort (local)</title></head>
<body><h1>Sign in to cohort</h1><p>{{.}}</p>
<p>This cohort uses its built-in sign-in, which lets in only a browser that opened the sign-in link
<code>cohort serve</code> printed in its terminal when it started (the line "sign in at ..."). Open that link.</p></body></html>`))

func (is *Issuer) noKey(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	noKeyPage.Execute(w, "This browser did not come through the sign-in link.")
}

func (is *Issuer) discovery(w http.ResponseWriter) {
	e := is.Endpoints()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": e.IssuerURL, "authorization_endpoint": e.AuthURL, "token_endpoint": e.TokenURL,
		"jwks_uri": e.JWKSURL, "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported": []string{"S256"}, "scopes_supported": []string{"openid", "email", "profile"},
	})
}

var formPage = template.Must(template.New("form").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to cohort (local)</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}
label{display:block;font-weight:600;margin-bottom:.25rem}input[type=email]{width:100%;padding:.5rem;font-size:1rem;border:1px solid #555;border-radius:4px;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1.25rem;font-size:1rem;background:#1d4ed8;color:#fff;border:0;border-radius:4px}
.note{color:#444;font-size:.9rem}.error{color:#b91c1c}</style></head>
<body><h1>Sign in to cohort</h1>
<p class="note">This is cohort's built-in sign-in for one machine: type any email address. With Google sign-in configured, this page is never shown.</p>
<form method="post">
<label for="email">Email address</label>
<input id="email" name="email" type="email" autocomplete="email" required autofocus value="{{.Email}}" {{if .Error}}aria-describedby="email-error" aria-invalid="true"{{end}}>
{{if .Error}}<p id="email-error" class="error">{{.Error}}</p>{{end}}
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<button type="submit">Sign in</button>
</form></body></html>`))

// authParams are the authorization request's parameters, carried through
// the form.
var authParams = []string{"client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method", "response_type", "scope"}

func (is *Issuer) form(w http.ResponseWriter, r *http.Request, problem string) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		q = r.PostForm
	}
	if msg := is.checkRequest(q); msg != "" {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	params := map[string]string{}
	for _, k := range authParams {
		params[k] = q.Get(k)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The page's one inline style; nothing else, and forms only to itself.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	if problem != "" {
		w.WriteHeader(http.StatusBadRequest)
	}
	formPage.Execute(w, map[string]any{"Params": params, "Error": problem, "Email": q.Get("email")})
}

// checkRequest validates an authorization request; "" means fine.
func (is *Issuer) checkRequest(q url.Values) string {
	switch {
	case q.Get("client_id") != ClientID:
		return "unknown client_id"
	case q.Get("response_type") != "code":
		return "response_type must be code"
	case !is.redirectOK(q.Get("redirect_uri")):
		return "redirect_uri is not cohort's"
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		return "PKCE with S256 is required"
	case q.Get("state") == "" || q.Get("nonce") == "":
		return "state and nonce are required"
	}
	return ""
}

func (is *Issuer) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	email, err := cohort.NormalizeEmail("email", r.PostForm.Get("email"))
	if err != nil {
		is.form(w, r, cohort.ErrorMessage(err))
		return
	}
	q := r.PostForm
	if msg := is.checkRequest(q); msg != "" {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	code := cohort.NewSecret("")
	is.mu.Lock()
	for c, g := range is.codes { // forget codes nobody came back for
		if is.now().After(g.expires) {
			delete(is.codes, c)
		}
	}
	is.codes[code] = grant{email: email, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
		redirectURI: q.Get("redirect_uri"), expires: is.now().Add(time.Minute)}
	is.mu.Unlock()
	u, _ := url.Parse(q.Get("redirect_uri"))
	v := u.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (is *Issuer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request")
		return
	}
	f := r.PostForm
	clientID := f.Get("client_id")
	if id, _, ok := r.BasicAuth(); ok {
		clientID = id
	}
	is.mu.Lock()
	g, ok := is.codes[f.Get("code")]
	delete(is.codes, f.Get("code")) // one use, whatever happens next
	is.mu.Unlock()
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	switch {
	case f.Get("grant_type") != "authorization_code":
		tokenError(w, "unsupported_grant_type")
		return
	case !ok || is.now().After(g.expires) || clientID != ClientID || f.Get("redirect_uri") != g.redirectURI:
		tokenError(w, "invalid_grant")
		return
	case subtle.ConstantTimeCompare([]byte(challenge), []byte(g.challenge)) != 1:
		tokenError(w, "invalid_grant") // PKCE verifier does not match
		return
	}
	now := is.now()
	sub := sha256.Sum256([]byte(g.email))
	claims, _ := json.Marshal(map[string]any{
		"iss": is.url, "sub": fmt.Sprintf("%x", sub[:12]), "aud": ClientID,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": g.nonce,
		"email": g.email, "email_verified": true,
	})
	_, signer, err := is.keys()
	if err != nil {
		tokenError(w, "server_error")
		return
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		tokenError(w, "server_error")
		return
	}
	idToken, err := jws.CompactSerialize()
	if err != nil {
		tokenError(w, "server_error")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": cohort.NewSecret(""), "token_type": "Bearer", "expires_in": 300, "id_token": idToken,
	})
}

func tokenError(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
