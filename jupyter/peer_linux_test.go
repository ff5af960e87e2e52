package jupyter_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// TestBurstOfDialsWaitsForAFullQueue: a notebook's socket whose listen
// queue is full refuses at once (EAGAIN), where TCP would retry by itself;
// a burst of connections (tabs reconnecting) waits for the server to
// catch up instead of failing.
func TestBurstOfDialsWaitsForAFullQueue(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nb.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 1); err != nil { // a queue of one, not accepting yet
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), path)
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	base, err := jupyter.BaseURL(jupyter.SocketAddress(path, os.Getuid()))
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(base, "http://") + ":80"
	dial := jupyter.DialContext((&net.Dialer{}).DialContext)
	go func() { // the server catches up a moment later
		time.Sleep(200 * time.Millisecond)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			c, err := dial(context.Background(), "tcp", addr)
			if err == nil {
				c.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("dials to a socket whose queue was full for a moment: %v", err)
	}
}
