package gcptest

import (
	"context"
	"slices"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Diff plans as the provider does: a change of a ForceNew input replaces
// the resource, any other change updates it in place, the boot image
// follows the provider's family rule, and ignoreChanges drops a path's
// change (the bridge applies it to the provider's diff:
// pulumi-terraform-bridge pkg/tfbridge/provider.go, Diff).
func (f *Fake) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	old, nw, cur := req.GetOldInputs().AsMap(), req.GetNews().AsMap(), req.GetOlds().AsMap()
	typ, imageChanged := typeOf(req.GetUrn()), false
	if typ == "gcp:compute/instance:Instance" {
		// The image is compared with what the state holds (a concrete
		// image), not with the family reference the program sent.
		if img := imageOf(nw); img != "" {
			imageChanged = !imageDiffSuppressed(imageOf(cur), img)
			setImage(nw, imageOf(old))
		}
	}
	for _, path := range req.GetIgnoreChanges() {
		copyPath(nw, old, strings.Split(path, "."))
		if path == "bootDisk" || path == "bootDisk.initializeParams" || path == "bootDisk.initializeParams.image" {
			imageChanged = false
		}
	}
	changed, replaced := replaces(typ, old, nw)
	if imageChanged && !slices.Contains(replaced, "bootDisk") {
		changed, replaced = append(changed, "bootDisk"), append(replaced, "bootDisk")
	}
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME, Diffs: changed, Replaces: replaced, DeleteBeforeReplace: true}, nil
}

func imageOf(props map[string]any) string {
	s, _ := mapOf(mapOf(props["bootDisk"])["initializeParams"])["image"].(string)
	return s
}

func setImage(props map[string]any, image string) {
	if p := mapOf(mapOf(props["bootDisk"])["initializeParams"]); p != nil {
		p["image"] = image
	}
}

// copyPath sets dst's value at a dotted path to src's.
func copyPath(dst, src map[string]any, path []string) {
	for len(path) > 1 {
		dst, src = mapOf(dst[path[0]]), mapOf(src[path[0]])
		if dst == nil || src == nil {
			return
		}
		path = path[1:]
	}
	if v, ok := src[path[0]]; ok {
		dst[path[0]] = v
	} else {
		delete(dst, path[0])
	}
}
