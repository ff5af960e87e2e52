package api

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Every session's notebook has an origin of its own,
// scheme://{label}.{notebook domain}, and no notebook byte is ever served
// from the app's origin. A participant controls the HTML their notebook
// renders; on the app's origin it could act as whoever opens it. On its
// own origin the browser keeps it away from the app's cookies and pages
// and from other notebooks (see docs/security.md).

// origins maps sessions to their notebook origins and back.
type origins struct {
	scheme string // "http" or "https", as the app's
	domain string // e.g. "nb.example.org" or "localhost:8080"
}

// newOrigins checks the notebook domain against the app's URL: a notebook
// on the app's host, or on a parent of it, could plant cookies the app
// would read.
func newOrigins(appURL, domain string) (origins, error) {
	app, err := url.Parse(appURL)
	if err != nil || app.Host == "" || (app.Scheme != "http" && app.Scheme != "https") {
		return origins{}, fmt.Errorf("the app's URL %q is not http(s)://HOST[:PORT]", appURL)
	}
	domain = strings.ToLower(strings.TrimSpace(domain))
	host := domain
	if h, _, err := net.SplitHostPort(domain); err == nil {
		host = h
	}
	switch {
	case domain == "" || strings.ContainsAny(domain, "/*@ ") || strings.HasPrefix(host, "."):
		return origins{}, fmt.Errorf("the notebook domain %q is not a host name such as nb.example.org or localhost:8080", domain)
	case net.ParseIP(host) != nil:
		return origins{}, fmt.Errorf("the notebook domain %q is an IP address; it must be a name whose subdomains reach cohort (wildcard DNS)", domain)
	}
	appHost := strings.ToLower(app.Hostname())
	if app.Scheme == "http" && !isLoopbackHost(appHost) {
		// Without https, cookies cannot have the __Host- prefix, and a
		// notebook could plant cookies that push others' aside.
		return origins{}, fmt.Errorf("the app at %s is served over plain http: notebooks need https (--public-url https://...), except on this machine's loopback address", appURL)
	}
	if appHost == host || strings.HasSuffix(appHost, "."+host) {
		return origins{}, fmt.Errorf("the notebook domain %q contains the app's host %q: notebooks could set cookies the app reads; use a domain of its own (see docs/security.md)", domain, appHost)
	}
	return origins{scheme: app.Scheme, domain: domain}, nil
}

// sharesSite reports whether the notebook domain and the app are one site
// (same registrable domain): safe with host-only __Host- cookies, but a
// separate registrable domain also keeps notebooks from the app's site.
func (o origins) sharesSite(appURL string) bool {
	app, err := url.Parse(appURL)
	if err != nil {
		return false
	}
	host := o.domain
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a, errA := publicsuffix.EffectiveTLDPlusOne(app.Hostname())
	n, errN := publicsuffix.EffectiveTLDPlusOne(host)
	return errA == nil && errN == nil && a == n
}

// secure reports whether notebooks are served over https.
func (o origins) secure() bool { return o.scheme == "https" }

// label is the host label of a session: its ID with "_" as "-", since
// underscores are not valid in host names (session IDs are lower case
// letters, digits and one underscore, so the mapping is one to one).
func label(sessionID string) string { return strings.ReplaceAll(sessionID, "_", "-") }

// origin returns the notebook origin of a session, e.g.
// "http://ses-k3abc.localhost:8080".
func (o origins) origin(sessionID string) string {
	return o.scheme + "://" + label(sessionID) + "." + o.domain
}

// session returns the session whose notebook origin has this Host header.
func (o origins) session(host string) (string, bool) {
	host = strings.ToLower(host)
	l, ok := strings.CutSuffix(host, "."+o.domain)
	if !ok || l == "" || strings.ContainsFunc(l, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}) {
		return "", false
	}
	prefix, rest, ok := strings.Cut(l, "-")
	if !ok || prefix != "ses" || rest == "" || strings.Contains(rest, "-") {
		return "", false
	}
	return prefix + "_" + rest, true
}

// isDomain reports whether host is the notebook domain itself, where no
// notebook lives (e.g. localhost:8080 with the defaults).
func (o origins) isDomain(host string) bool { return strings.EqualFold(host, o.domain) }

// wildcard is every notebook origin as a CSP source, e.g.
// "http://*.localhost:8080".
func (o origins) wildcard() string { return o.scheme + "://*." + o.domain }

// isLoopbackHost reports whether a host name stays on this machine.
func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
