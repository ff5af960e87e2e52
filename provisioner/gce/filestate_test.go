package gce_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cohortdev/cohort/infra"
	"github.com/cohortdev/cohort/provisioner/gce"
)

// TestStacksMendATornCheckpointWrite: a process killed while fileblob
// wrote a checkpoint leaves its attributes file empty (it truncates, then
// writes) and a temporary file beside it. The next update reads the
// stack as it was and goes on; without the mend every update fails with
// "failed to load checkpoint: EOF" (seen in a CI run when a replica was
// killed mid-update).
func TestStacksMendATornCheckpointWrite(t *testing.T) {
	t.Parallel()
	var state string
	stacks, fake := newStacks(t, func(o *gce.StackOptions) { state = strings.TrimPrefix(o.StateURL, "file://") })
	ctx := context.Background()
	if _, err := stacks.Update(ctx, "cls-torn-1", []infra.SessionSpec{spec("ses_a")}, nil); err != nil {
		t.Fatal(err)
	}
	checkpoint := filepath.Join(state, ".pulumi", "stacks", "cohort-sessions", "cls-torn-1.json")
	if err := os.WriteFile(checkpoint+".attrs", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(checkpoint+".18ed6b200ebcc1f9.tmp", []byte(`{"version": 3, "checkpo`), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := stacks.Update(ctx, "cls-torn-1", []infra.SessionSpec{spec("ses_a"), spec("ses_b")}, nil)
	if err != nil {
		t.Fatalf("the update after a torn write: %v", err)
	}
	if len(rep.Exists) != 2 || len(fake.Instances()) != 2 {
		t.Fatalf("after the update: %v, %d instances; want both seats, one VM each", rep.Exists, len(fake.Instances()))
	}
	if tmps, _ := filepath.Glob(checkpoint + "*.tmp"); len(tmps) != 0 {
		t.Fatalf("temporary files of the killed write left: %v", tmps)
	}
}
