package local_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jupyter"
)

// rootOnlySocket serves HTTP on a unix socket in a directory only root
// may enter (a stand-in for Docker's socket), answering 200 to anything,
// and counts the requests that reach it.
func rootOnlySocket(t *testing.T, near string) (string, *atomic.Int32) {
	t.Helper()
	dir, err := os.MkdirTemp(near, "cohort-rootonly-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, `{"started": "2024-01-01T00:00:00Z"}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock, &hits
}

// TestNotebookSocketIsChecked: a participant swaps their notebook's
// socket for a symlink to a socket only root may reach. Neither cohort's
// proxy (jupyter.DialContext) nor the driver's readiness check may reach
// it: each connection's peer must be the session's uid. Inspect must not
// go on reporting the notebook ready over a connection it pooled before
// the swap either.
func TestNotebookSocketIsChecked(t *testing.T) {
	t.Parallel()
	d, opts := isolatedDriver(t, 4)
	sp, in := startReady(t, d, "ses_a")
	sock, hits := rootOnlySocket(t, filepath.Dir(opts.Root))

	k := startKernel(t, in.Address, sp.Token)
	k.run(t, probeCode)
	if out := k.run(t, fmt.Sprintf("probe('connect', %q)", sock)); !strings.Contains(out.stdout, "FileNotFoundError") && out.stdout != "EACCES\n" {
		t.Fatalf("the participant reaches the root-only socket itself: %+v", out)
	}
	// A check before the swap, as the sweeper's would be.
	if got, err := d.Inspect(context.Background(), sp); err != nil || got.State != cohort.InstanceReady {
		t.Fatalf("Inspect before the swap: %s, %v", got.State, err)
	}
	nb := socketOf(t, in)
	swap := fmt.Sprintf("import os; os.rename(%q, %q); os.symlink(%q, %q)", nb, nb+".real", sock, nb)
	if out := k.run(t, swap); out.ename != "" {
		t.Fatalf("swap: %+v", out)
	}

	proxy := &http.Client{Transport: &http.Transport{DialContext: jupyter.DialContext((&net.Dialer{}).DialContext)}}
	base, err := jupyter.BaseURL(in.Address)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := proxy.Post(base+"/containers/create", "application/json", strings.NewReader(`{"Image":"x"}`))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the proxy's dial reached the swapped socket: %s", resp.Status)
	}
	if !strings.Contains(err.Error(), "not the notebook's uid") {
		t.Fatalf("the proxy's dial failed, but not for its peer: %v", err)
	}
	if got, _ := d.Inspect(context.Background(), sp); got.State == cohort.InstanceReady {
		t.Fatal("Inspect reports the notebook ready after its socket was swapped")
	}
	if n := hits.Load(); n > 0 {
		t.Fatalf("%d requests reached the root-only socket", n)
	}
}
