package gce

import (
	"context"
	"encoding/json"
	"fmt"
	"path"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
)

// repair makes a stack's state true after a killed operation: a create
// GCE accepted may exist while the state only says pending, and the next
// update would make a second one. Each pending create goes into the state
// under the ID GCE gives it; a refresh keeps it if it exists. (At v3.274.1
// optrefresh.ImportPendingCreates forgets them: the refresh drops
// "importing" operations, backend/snapshot.go; TestEngineKilledBeforeTheCreateLanded.)
func (s *Stacks) repair(ctx context.Context, st auto.Stack) error {
	dep, err := st.Export(ctx)
	if err != nil {
		return err
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(dep.Deployment, &d); err != nil {
		return fmt.Errorf("read the state: %w", err)
	}
	var ops []struct {
		Resource map[string]any `json:"resource"`
		Type     string         `json:"type"`
	}
	if len(d["pending_operations"]) == 0 {
		return nil // killed between operations: nothing pending
	}
	if err := json.Unmarshal(d["pending_operations"], &ops); err != nil || len(ops) == 0 {
		return err
	}
	var resources []any
	if err := json.Unmarshal(d["resources"], &resources); err != nil {
		return fmt.Errorf("read the state: %w", err)
	}
	for _, op := range ops {
		if op.Type != "creating" {
			continue // updates and deletes keep their resource in the state
		}
		if id := createdID(op.Resource); id != "" {
			op.Resource["id"] = id
			resources = append(resources, op.Resource)
		}
	}
	if d["resources"], err = json.Marshal(resources); err != nil {
		return err
	}
	delete(d, "pending_operations")
	if dep.Deployment, err = json.Marshal(d); err != nil {
		return err
	}
	if err := st.Import(ctx, dep); err != nil {
		return err
	}
	return s.timed("refresh", func() error {
		_, err := st.Refresh(ctx, optrefresh.SuppressProgress(), optrefresh.Parallel(parallel))
		return err
	})
}

// createdID is the ID GCE gives a resource the session program creates,
// from its inputs; "" for other types.
func createdID(res map[string]any) string {
	in, _ := res["inputs"].(map[string]any)
	str := func(k string) string { v, _ := in[k].(string); return v }
	switch res["type"] {
	case "gcp:compute/instance:Instance":
		return fmt.Sprintf("projects/%s/zones/%s/instances/%s", str("project"), str("zone"), str("name"))
	case "gcp:cloudscheduler/job:Job":
		return fmt.Sprintf("projects/%s/locations/%s/jobs/%s", str("project"), str("region"), str("name"))
	case "gcp:compute/disk:Disk":
		return fmt.Sprintf("projects/%s/zones/%s/disks/%s", str("project"), str("zone"), str("name"))
	case "gcp:compute/attachedDisk:AttachedDisk":
		return fmt.Sprintf("projects/%s/zones/%s/instances/%s/%s", str("project"), str("zone"), path.Base(str("instance")), path.Base(str("disk")))
	}
	return ""
}
