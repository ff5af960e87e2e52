package local_test

import (
	"context"
	"net/http"
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
