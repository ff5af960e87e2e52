package materialstest

import (
	"crypto/subtle"
	"encoding/pem"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// Server is a git server over https, as GitHub is to a private
// repository: git's own smart HTTP (git http-backend) behind basic
// auth, with a certificate of its own.
type Server struct {
	// URL is the repository's URL; CAFile the certificate to trust.
	URL, CAFile string
	// Refused counts requests turned away for want of the right token.
	Refused atomic.Int64
	token   atomic.Pointer[string]
}

// Rotate makes the server take token only, as a host does once the
// instructor's old token expired or was revoked.
func (s *Server) Rotate(token string) { s.token.Store(&token) }

// ServePrivate serves r over https to user with token only: any other
// request gets 401, as GitHub's answer to a missing or wrong token.
func ServePrivate(t testing.TB, r *Repo, user, token string) *Server {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	backend := &cgi.Handler{Path: gitBin, Args: []string{"http-backend"}, Dir: r.Dir, InheritEnv: []string{"PATH"},
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(r.Dir), "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}}
	s := &Server{}
	s.Rotate(token)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u+":"+p), []byte(user+":"+*s.token.Load())) != 1 {
			s.Refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "Authentication failed", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/" + filepath.Base(r.Dir)
	s.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(s.CAFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}
