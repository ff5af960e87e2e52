package local_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jupyter"
	"github.com/cohortdev/cohort/provisioner/local"
)

// A warm seat's claim gives its running notebook a new token: the old one
// opens nothing after it, and the server went on running (no restart).
func TestClaimReplacesTheToken(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, opts local.Options) {
		ctx := context.Background()
		d := newDriver(t, opts)
		sp := spec("ses_warm")
		if err := d.Start(ctx, sp); err != nil {
			t.Fatal(err)
		}
		in := waitFor(t, d, sp, cohort.InstanceReady)
		client := &http.Client{Transport: jupyter.NewTransport()}
		before, err := jupyter.GetStatus(ctx, client, in.Address, "/", sp.Token)
		if err != nil {
			t.Fatal(err)
		}
		fresh := cohort.NewSecret("")
		if err := jupyter.Claim(ctx, client, in.Address, "/", "not-the-token", fresh); err == nil {
			t.Fatal("a wrong token replaced the token")
		}
		if err := jupyter.Claim(ctx, client, in.Address, "/", sp.Token, "short"); err == nil {
			t.Fatal("a 5-character token was taken")
		}
		if err := jupyter.Claim(ctx, client, in.Address, "/", sp.Token, fresh); err != nil {
			t.Fatal(err)
		}
		if _, err := jupyter.GetStatus(ctx, client, in.Address, "/", sp.Token); err == nil {
			t.Fatal("the old token still opens the notebook")
		}
		after, err := jupyter.GetStatus(ctx, client, in.Address, "/", fresh)
		if err != nil {
			t.Fatalf("the new token does not open the notebook: %v", err)
		}
		if !after.Started.Equal(before.Started) {
			t.Fatalf("the server restarted (started %s, then %s)", before.Started, after.Started)
		}
		sp.Token = fresh
		if in, _ := d.Inspect(ctx, sp); in.State != cohort.InstanceReady {
			t.Fatalf("with the new token the driver sees %s", in.State)
		}
	})
}

// TestJupyterServerRuns: the runtime image's kind of server (Jupyter
// Server: Notebook 7, JupyterLab 4) starts from the same configuration,
// here Debian's jupyter-server: it serves the participant's folder on its
// socket, runs code, and takes a new token through cohort's extension.
func TestJupyterServerRuns(t *testing.T) {
	t.Parallel()
	const bin = "/usr/bin/jupyter-server"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run `make test-deps` (Debian package jupyter-server)", bin)
	}
	bothModes(t, func(t *testing.T, opts local.Options) {
		ctx := context.Background()
		opts.Bin = bin
		d := newDriver(t, opts)
		work := filepath.Join(opts.Root, "work", "cls_srv", "usr_ada")
		if err := os.MkdirAll(work, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, "config.cfg"), []byte("[nlp]"), 0o600); err != nil {
			t.Fatal(err)
		}
		sp := spec("ses_srv")
		sp.ClassID, sp.UserID = "cls_srv", "usr_ada"
		if err := d.Start(ctx, sp); err != nil {
			t.Fatal(err)
		}
		in := waitFor(t, d, sp, cohort.InstanceReady)
		if got := contentsOf(t, d, sp).names(); !slices.Equal(got, []string{"config.cfg"}) {
			t.Fatalf("jupyter-server's folder = %v, want the participant's work", got)
		}
		if out := startKernel(t, in.Address, sp.Token).run(t, "print(6*7)"); out.stdout != "42\n" {
			t.Fatalf("a kernel of jupyter-server printed %+v", out)
		}
		client := &http.Client{Transport: jupyter.NewTransport()}
		fresh := cohort.NewSecret("")
		if err := jupyter.Claim(ctx, client, in.Address, "/", sp.Token, fresh); err != nil {
			t.Fatal(err)
		}
		if _, err := jupyter.GetStatus(ctx, client, in.Address, "/", sp.Token); err == nil {
			t.Fatal("the old token still opens jupyter-server")
		}
		if _, err := jupyter.GetStatus(ctx, client, in.Address, "/", fresh); err != nil {
			t.Fatalf("the new token does not open jupyter-server: %v", err)
		}
	})
}
