package jupyter_test

import (
	"strings"
	"testing"

	"github.com/cohortdev/cohort/jupyter"
)

// TestAddresses: a unix address carries the uid its server must run as,
// through BaseURL's made-up host and back; one without a uid is refused,
// so that no dial can skip the check of its peer.
func TestAddresses(t *testing.T) {
	t.Parallel()
	addr := jupyter.SocketAddress("/run/s/notebook.sock", 2000000001)
	if addr != "unix:2000000001:/run/s/notebook.sock" {
		t.Fatalf("SocketAddress = %q", addr)
	}
	if path, uid, err := jupyter.ParseSocketAddress(addr); err != nil || path != "/run/s/notebook.sock" || uid != 2000000001 {
		t.Fatalf("ParseSocketAddress(%q) = %q, %d, %v", addr, path, uid, err)
	}
	base, err := jupyter.BaseURL(addr)
	if err != nil || !strings.HasSuffix(base, ".u2000000001.sock") {
		t.Fatalf("BaseURL(%q) = %q, %v", addr, base, err)
	}
	if other, _ := jupyter.BaseURL(jupyter.SocketAddress("/run/s/notebook.sock", 2000000002)); other == base {
		t.Fatalf("two uids share the host %s: a pooled connection could cross", base)
	}
	if got, err := jupyter.BaseURL("http://10.0.0.2:8888/"); err != nil || got != "http://10.0.0.2:8888" {
		t.Fatalf("BaseURL of a TCP address = %q, %v", got, err)
	}
	for _, bad := range []string{"unix:/run/s/notebook.sock", "unix:x:/run/s.sock", "unix:5:run/s.sock", "unix:-1:/s", "ftp://x", ""} {
		if got, err := jupyter.BaseURL(bad); err == nil {
			t.Errorf("BaseURL(%q) = %q, want an error", bad, got)
		}
	}
}
