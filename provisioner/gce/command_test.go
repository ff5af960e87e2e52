package gce

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEngineGetsNoCohortSecrets: the Pulumi CLI and its plugins run with
// cohort's environment, which may hold the database's password and the
// OIDC client secret: those stay out.
func TestEngineGetsNoCohortSecrets(t *testing.T) {
	t.Setenv("COHORT_DATABASE", "postgres://cohort:db-s3cret@db.internal/cohort")
	t.Setenv("COHORT_OIDC_CLIENT_SECRET", "oidc-s3cret")
	cli := filepath.Join(t.TempDir(), "pulumi")
	if err := os.WriteFile(cli, []byte("#!/bin/sh\nenv\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	c := command{path: cli, running: &running{procs: map[string]map[*os.Process]bool{}}}
	out, _, code, err := c.Run(context.Background(), t.TempDir(), nil, nil, nil, []string{"PULUMI_CONFIG_PASSPHRASE=p"}, "version")
	if err != nil || code != 0 {
		t.Fatalf("run = %d, %v", code, err)
	}
	if !strings.Contains(out, "PULUMI_CONFIG_PASSPHRASE=p") {
		t.Fatalf("the engine lacks what Stacks gives it:\n%s", out)
	}
	for _, secret := range []string{"db-s3cret", "oidc-s3cret"} {
		if strings.Contains(out, secret) {
			t.Errorf("the engine's environment holds %s", secret)
		}
	}
}
