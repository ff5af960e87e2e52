package api

import (
	"net/http"
	"strings"

	"github.com/cohortdev/cohort"
)

// What a browser may do on a notebook origin with its cookie, by where
// the request comes from: Fetch Metadata (Sec-Fetch-Site, -Mode, -Dest),
// with Origin for browsers that send no Sec-Fetch-Site.

// checkFetchSite admits a cookie-authenticated request to a notebook only
// from the notebook's own pages, or as a top-level navigation from
// elsewhere (a link). Other notebooks of the same site, and any other
// page, get nothing done with the visitor's cookie: no POST, no
// WebSocket, no script or JSON read as a subresource. This is the
// resource isolation policy of Fetch Metadata, with Origin for browsers
// that send no Sec-Fetch-Site.
func checkFetchSite(r *http.Request, own string) error {
	unsafe := !safeMethod(r.Method) || isWebSocket(r)
	origin := r.Header.Get("Origin")
	if unsafe && origin != "" && !strings.EqualFold(origin, own) {
		return cohort.Errorf(cohort.EFORBIDDEN, "a page of %s may not change anything in this notebook", origin)
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "same-origin":
		return nil
	case "":
		if unsafe && origin == "" {
			return cohort.Errorf(cohort.EFORBIDDEN, "a request that changes something must say where it comes from (Origin)")
		}
		return nil
	case "none": // typed in the address bar, a bookmark
		if unsafe {
			return cohort.Errorf(cohort.EFORBIDDEN, "a request that changes something must come from the notebook's own pages")
		}
		return nil
	default: // same-site (another notebook) or cross-site
		if foreignNavigation(r) {
			return nil // a link; it lands on /tree (landing)
		}
		return cohort.Errorf(cohort.EFORBIDDEN, "another site's page may not use this notebook")
	}
}

// foreignNavigation reports whether a request is a top-level navigation
// that began on another site (a link, a redirect through the app).
func foreignNavigation(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	return (site == "cross-site" || site == "same-site") && r.Method == http.MethodGet &&
		r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document"
}

// landing is where a navigation from another site may go in a notebook:
// its file list, nothing that acts (a GET that starts a kernel, an
// extension's GET that pulls a repository), whatever the link said.
const landing = "/tree"

// mustLand reports whether a request must be sent to landing instead.
func mustLand(r *http.Request) bool {
	return foreignNavigation(r) && (r.URL.Path != landing || r.URL.RawQuery != "")
}

// wantsPage reports whether a request is a browser asking for a page, which
// should be sent to sign in rather than answered with JSON.
func wantsPage(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
