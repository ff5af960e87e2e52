package jupyter_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort/jupyter"
)

// TestDialChecksThePeer: a notebook socket is reached only when the
// process listening on it runs as the address's uid. Otherwise a symlink
// planted in the participant's run dir would lead cohort to any socket of
// the machine.
func TestDialChecksThePeer(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "notebook.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "reached") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: jupyter.DialContext((&net.Dialer{}).DialContext),
	}}
	get := func(address string) (string, error) {
		base, err := jupyter.BaseURL(address)
		if err != nil {
			return "", err
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/api/status", nil)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, err = fmt.Fprint(&b, resp.Status)
		return b.String(), err
	}
	if status, err := get(jupyter.SocketAddress(sock, os.Getuid())); err != nil || status != "200 OK" {
		t.Fatalf("the socket's own uid: %q, %v", status, err)
	}
	_, err = get(jupyter.SocketAddress(sock, os.Getuid()+1))
	if err == nil || !strings.Contains(err.Error(), "not the notebook's uid") {
		t.Fatalf("another uid's address reached the socket: %v", err)
	}
	// A host of the old form (a socket path, no uid) is not dialled at all.
	_, err = client.Get("http://" + fmt.Sprintf("%x", sock) + ".sock/api/status")
	if err == nil || !strings.Contains(err.Error(), "names no uid") {
		t.Fatalf("a socket host without a uid: %v", err)
	}
}
