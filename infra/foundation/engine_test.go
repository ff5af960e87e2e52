package foundation_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/cohortdev/cohort/infra/foundation"
	"github.com/cohortdev/cohort/provisioner/gce/gcptest"
)

// TestFoundationOnTheEngine runs the installation through the real
// Pulumi engine against the fake gcp provider: `pulumi up` in an empty
// project makes everything, its outputs are cohort's settings, a second
// preview changes nothing, and the OAuth client secret is in no file of
// the state.
func TestFoundationOnTheEngine(t *testing.T) {
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "bin", "pulumi")); err != nil {
		t.Fatal("bin/pulumi is missing: run `make pulumi` (make test does)")
	}
	fake, err := gcptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)
	fake.Latency = 0
	ctx := context.Background()
	dir := t.TempDir()
	c := config()
	const secret = "GOCSPX-4b7e1d0c9a"
	c.OAuthClientSecret = secretString(secret)
	st, up, err := fake.Up(ctx, root, dir, foundation.Program(c))
	if err != nil {
		t.Fatal(err)
	}
	if got := up.Outputs["subnetwork"].Value; got != "https://www.googleapis.com/compute/v1/projects/workshop-123/regions/us-central1/subnetworks/cohort-sessions" {
		t.Errorf("subnetwork output %v", got)
	}
	env, _ := up.Outputs["controlPlaneEnv"].Value.(string)
	for _, want := range []string{"COHORT_GCE_SESSION_ACCOUNT=cohort-session@workshop-123.iam.gserviceaccount.com", "COHORT_PULUMI_STATE=gs://workshop-123-cohort-state"} {
		if !strings.Contains(env, want) {
			t.Errorf("control plane env lacks %q:\n%s", want, env)
		}
	}
	records := fmt.Sprint(up.Outputs["dnsRecords"].Value)
	for _, want := range []string{"cohort.example.org. A 203.0.113.10", "*.example-notebooks.org. A 203.0.113.10",
		"_acme-challenge.cohort.example.org. CNAME cohort-app.authorize.certificatemanager.goog.",
		"_acme-challenge.example-notebooks.org. CNAME cohort-notebooks.authorize.certificatemanager.goog."} {
		if !strings.Contains(records, want) {
			t.Errorf("DNS records lack %q: %s", want, records)
		}
	}
	if n := len(fake.Inventory()); n < 30 {
		t.Errorf("%d resources in the cloud after up", n)
	}
	pre, err := st.Preview(ctx, optpreview.SuppressProgress())
	if err != nil {
		t.Fatal(err)
	}
	for op, n := range pre.ChangeSummary {
		if op != apitype.OpSame && n > 0 {
			t.Errorf("a second preview plans %d %s: %v", n, op, pre.ChangeSummary)
		}
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b, _ := os.ReadFile(path); strings.Contains(string(b), secret) {
			t.Errorf("%s holds the OAuth client secret in plain text", path)
		}
		return nil
	})
}
