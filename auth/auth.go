// Package auth signs people in with OpenID Connect: the authorization code
// flow with PKCE, state and nonce, against Google or any other issuer
// (the embedded local issuer by default). It verifies the ID token
// (issuer, audience, expiry, signature, nonce) and the claims cohort
// relies on (a verified email; the hosted domain, from the hd claim and
// never from the email's suffix).
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/cohortdev/cohort"
)

// Options configure a RelyingParty.
type Options struct {
	// Issuer is the OIDC issuer URL, e.g. https://accounts.google.com.
	Issuer       string
	ClientID     string
	ClientSecret string
	// HostedDomain, if set, admits only identities whose hd claim equals it.
	HostedDomain string
	// Endpoints, if set, are used instead of discovery (for an issuer
	// cohort itself serves, whose discovery document is not up yet).
	Endpoints *oidc.ProviderConfig
	// HTTPClient reaches the issuer; http.DefaultClient if nil.
	HTTPClient *http.Client
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
}

// RelyingParty is cohort's side of the sign-in.
type RelyingParty struct {
	opts Options

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use, so startup needs no network
}

// New returns a RelyingParty; nothing is fetched until the first sign-in.
func New(opts Options) *RelyingParty {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &RelyingParty{opts: opts}
}

// Issuer returns the issuer URL.
func (rp *RelyingParty) Issuer() string { return rp.opts.Issuer }

func (rp *RelyingParty) discover(ctx context.Context) (*oidc.Provider, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.provider != nil {
		return rp.provider, nil
	}
	ctx = oidc.ClientContext(ctx, rp.opts.HTTPClient)
	if rp.opts.Endpoints != nil {
		rp.provider = rp.opts.Endpoints.NewProvider(ctx)
		return rp.provider, nil
	}
	p, err := oidc.NewProvider(ctx, rp.opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OIDC issuer %s: %w", rp.opts.Issuer, err)
	}
	rp.provider = p
	return p, nil
}

func (rp *RelyingParty) config(p *oidc.Provider, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: rp.opts.ClientID, ClientSecret: rp.opts.ClientSecret,
		Endpoint: p.Endpoint(), RedirectURL: redirectURL,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
	}
}

// AuthCodeURL returns where to send the browser to sign in.
func (rp *RelyingParty) AuthCodeURL(ctx context.Context, redirectURL, state, nonce, verifier string) (string, error) {
	p, err := rp.discover(ctx)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "select_account")}
	if rp.opts.HostedDomain != "" {
		// A hint for Google's account chooser; the hd claim is what is checked.
		opts = append(opts, oauth2.SetAuthURLParam("hd", rp.opts.HostedDomain))
	}
	return rp.config(p, redirectURL).AuthCodeURL(state, opts...), nil
}

// Identity is who signed in, as the issuer vouches.
type Identity struct {
	Subject      string
	Email        string
	HostedDomain string
}

// Exchange trades an authorization code for a verified identity. Every
// way a sign-in can be wrong is a user-facing error (EUNAUTHORIZED, or
// EFORBIDDEN for an identity that is valid but not admitted).
func (rp *RelyingParty) Exchange(ctx context.Context, redirectURL, code, verifier, nonce string) (*Identity, error) {
	p, err := rp.discover(ctx)
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, rp.opts.HTTPClient)
	tok, err := rp.config(p, redirectURL).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, cohort.Errorf(cohort.EUNAUTHORIZED, "the identity provider refused the sign-in code (%s); sign in again", re.ErrorCode)
		}
		return nil, fmt.Errorf("exchange code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return nil, cohort.Errorf(cohort.EUNAUTHORIZED, "the identity provider sent no ID token")
	}
	return rp.verify(ctx, p, raw, nonce)
}

func (rp *RelyingParty) verify(ctx context.Context, p *oidc.Provider, raw, nonce string) (*Identity, error) {
	idt, err := p.Verifier(&oidc.Config{ClientID: rp.opts.ClientID, Now: rp.opts.Now}).Verify(ctx, raw)
	if err != nil {
		return nil, cohort.Errorf(cohort.EUNAUTHORIZED, "the ID token is not valid: %s", describeVerifyError(err))
	}
	if idt.Nonce != nonce {
		return nil, cohort.Errorf(cohort.EUNAUTHORIZED, "the ID token does not belong to this sign-in (nonce mismatch); sign in again")
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
		HostedDomain  string `json:"hd"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, cohort.Errorf(cohort.EUNAUTHORIZED, "the ID token's claims cannot be read")
	}
	email, err := cohort.NormalizeEmail("email", claims.Email)
	if err != nil {
		return nil, cohort.Errorf(cohort.EUNAUTHORIZED, "the identity provider sent no usable email address")
	}
	if claims.EmailVerified == nil || !*claims.EmailVerified {
		return nil, cohort.Errorf(cohort.EFORBIDDEN, "the email address %s is not verified with your identity provider", email)
	}
	if d := rp.opts.HostedDomain; d != "" && claims.HostedDomain != d {
		return nil, cohort.Errorf(cohort.EFORBIDDEN, "only accounts of %s may sign in; %s is not one", d, email)
	}
	return &Identity{Subject: idt.Subject, Email: email, HostedDomain: claims.HostedDomain}, nil
}

// describeVerifyError says in plain words what go-oidc found wrong.
func describeVerifyError(err error) string {
	var expired *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &expired):
		return "it has expired"
	case strings.Contains(msg, "audience"):
		return "it was issued for another application (audience)"
	case strings.Contains(msg, "issuer"), strings.Contains(msg, "different provider"):
		return "it comes from another issuer"
	case strings.Contains(msg, "signature"):
		return "its signature does not verify"
	default:
		return "it cannot be verified"
	}
}

// CallerOptions configure a CallerVerifier.
type CallerOptions struct {
	// Issuer of the callers' ID tokens; Google's for Cloud Scheduler.
	Issuer string
	// Audience the tokens must be minted for (cohort's URL, as configured
	// in the scheduler job).
	Audience string
	// Email of the one service account allowed to call.
	Email      string
	HTTPClient *http.Client
	Now        func() time.Time
}

// CallerVerifier checks the OIDC ID tokens that machines (Cloud Scheduler
// jobs) send to call cohort: signature, issuer, audience, expiry, and the
// caller's service account email.
type CallerVerifier struct {
	opts CallerOptions
	mu   sync.Mutex
	v    *oidc.IDTokenVerifier
}

// NewCallerVerifier returns a verifier; the issuer is discovered on first use.
func NewCallerVerifier(opts CallerOptions) *CallerVerifier {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &CallerVerifier{opts: opts}
}

// Verify returns nil for a valid token from the configured caller and an
// EUNAUTHORIZED error otherwise.
func (cv *CallerVerifier) Verify(ctx context.Context, raw string) error {
	cv.mu.Lock()
	if cv.v == nil {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, cv.opts.HTTPClient), cv.opts.Issuer)
		if err != nil {
			cv.mu.Unlock()
			return fmt.Errorf("discover issuer %s: %w", cv.opts.Issuer, err)
		}
		cv.v = p.Verifier(&oidc.Config{ClientID: cv.opts.Audience, Now: cv.opts.Now})
	}
	v := cv.v
	cv.mu.Unlock()
	idt, err := v.Verify(oidc.ClientContext(ctx, cv.opts.HTTPClient), raw)
	if err != nil {
		return cohort.Errorf(cohort.EUNAUTHORIZED, "the caller's ID token is not valid: %s", describeVerifyError(err))
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil || !claims.EmailVerified || !strings.EqualFold(claims.Email, cv.opts.Email) {
		return cohort.Errorf(cohort.EUNAUTHORIZED, "the caller is not the configured scheduler service account")
	}
	return nil
}
