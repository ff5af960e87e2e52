package gcptest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Persistent disks and their attachments (gcp:compute/disk:Disk,
// gcp:compute/attachedDisk:AttachedDisk), as the provider and Compute
// Engine treat them, and the Compute API's disks.aggregatedList and
// disks.delete that cohort calls for work disks kept outside any stack.

const (
	diskType   = "gcp:compute/disk:Disk"
	attachType = "gcp:compute/attachedDisk:AttachedDisk"
	vmType     = "gcp:compute/instance:Instance"
)

// diskRef reads a disk or instance reference the provider accepts: a
// self link, a relative link "projects/P/zones/Z/disks/N" (tpgresource's
// ParseDiskFieldValue and ParseInstanceFieldValue accept both).
var diskRef = regexp.MustCompile(`(?:^|/)projects/([^/]+)/zones/([^/]+)/(disks|instances)/([^/]+)$`)

func relative(ref string) (string, bool) {
	m := diskRef.FindStringSubmatch(ref)
	if m == nil {
		return "", false
	}
	return fmt.Sprintf("projects/%s/zones/%s/%s/%s", m[1], m[2], m[3], m[4]), true
}

// checkDisk refuses a disk as disks.insert would, before anything is
// created. The provider wraps the API's answer as "Error creating Disk:
// %s" (resource_compute_disk.go, resourceComputeDiskCreate).
func checkDisk(props map[string]any) error {
	name, _ := props["name"].(string)
	size, _ := props["size"].(float64)
	typ, _ := props["type"].(string)
	bad := func(format string, args ...any) error {
		return status.Errorf(codes.Unknown, "Error creating Disk: googleapi: Error 400: "+format+", invalid", args...)
	}
	switch {
	case !gceName.MatchString(name):
		return bad("Invalid value for field 'resource.name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", name)
	case typ != "" && typ != "pd-balanced" && typ != "pd-standard" && typ != "pd-ssd":
		return bad("Invalid value for field 'resource.type': '%s'. The referenced diskType resource cannot be found.", typ)
	// cloud.google.com/compute/docs/disks/persistent-disks#disk-types:
	// standard, balanced and SSD persistent disks are 10 GB at least.
	// (The API's wording for a disk too small is not confirmed.)
	case size > 0 && size < 10:
		return bad("Invalid value for field 'resource.sizeGb': '%d'. Disk size cannot be smaller than 10 GB.", int(size))
	}
	return nil
}

// attachment reads an AttachedDisk's instance and disk. The provider
// builds the disk's source from the instance's project and zone and the
// disk's name, whatever zone the disk reference names
// (resource_compute_attached_disk.go, resourceAttachedDiskCreate, at
// v5.42.0): a disk of another zone is "not found".
func attachment(props map[string]any) (vmID, diskID string, ok bool) {
	vm := diskRef.FindStringSubmatch(fmt.Sprint(props["instance"]))
	disk := path.Base(fmt.Sprint(props["disk"]))
	if vm == nil || vm[3] != "instances" || disk == "" {
		return "", "", false
	}
	return fmt.Sprintf("projects/%s/zones/%s/instances/%s", vm[1], vm[2], vm[4]), fmt.Sprintf("projects/%s/zones/%s/disks/%s", vm[1], vm[2], disk), true
}

// attach attaches a disk to an instance as instances.attachDisk does,
// refusing what GCE refuses. f.mu is held.
func (f *Fake) attach(props map[string]any) error {
	vmID, diskID, ok := attachment(props)
	if !ok {
		return status.Errorf(codes.Unknown, "Error attaching disk: invalid instance %q or disk %q", props["instance"], props["disk"])
	}
	vm, vmOK := f.inventory[vmID]
	disk, diskOK := f.inventory[diskID]
	switch {
	case !vmOK:
		return status.Errorf(codes.Unknown, "Error retrieving instance: googleapi: Error 404: The resource '%s' was not found, notFound", vmID)
	case !diskOK:
		// The wrapper's wording is not confirmed; the API's is the
		// Compute API's for any reference that does not exist.
		return status.Errorf(codes.Unknown, "Error attaching disk: googleapi: Error 404: The resource '%s' was not found, notFound", diskID)
	}
	if users := usersOf(disk); len(users) > 0 {
		// A READ_WRITE disk has one user at a time: the operation fails
		// with RESOURCE_IN_USE_BY_ANOTHER_RESOURCE (hashicorp/terraform#23698,
		// openshift/release#7550), reported by its message only
		// (compute_operation.go) after "Error waiting for disk to attach".
		return status.Errorf(codes.Unknown, "Error waiting for disk to attach: The disk resource '%s' is already being used by '%s'\n", diskID, strings.TrimPrefix(users[0], "https://www.googleapis.com/compute/v1/"))
	}
	if err := f.mount(fmt.Sprint(vm.Inputs["name"]), fmt.Sprint(disk.Inputs["name"])); err != nil {
		return status.Errorf(codes.Internal, "the fake could not mount %s: %v", diskID, err)
	}
	f.setOutput(diskID, "users", []any{"https://www.googleapis.com/compute/v1/" + vmID})
	f.setOutput(vmID, "attachedDisks", append(attachedOf(vm), map[string]any{
		"source": "https://www.googleapis.com/compute/v1/" + diskID, "deviceName": props["deviceName"], "mode": "READ_WRITE"}))
	return nil
}

// detach takes a disk off an instance: an AttachedDisk's delete, or the
// instance's. f.mu is held.
func (f *Fake) detach(vmID, diskID string) {
	if disk, ok := f.inventory[diskID]; ok {
		f.setOutput(diskID, "users", slices.DeleteFunc(slices.Clone(asList(disk.Outputs["users"])), func(u any) bool { return strings.HasSuffix(fmt.Sprint(u), vmID) }))
	}
	if vm, ok := f.inventory[vmID]; ok {
		f.setOutput(vmID, "attachedDisks", slices.DeleteFunc(attachedOf(vm), func(a any) bool { return strings.HasSuffix(fmt.Sprint(mapOf(a)["source"]), diskID) }))
	}
}

// detachAll is an instance's delete: its disks stay (a disk attached
// with autoDelete false, as instances.attachDisk attaches by default,
// outlives the instance: cloud.google.com/compute/docs/reference/rest/v1/
// instances/attachDisk, AttachedDisk.autoDelete), and its attachments are
// no more (an AttachedDisk deleted with the VM is gone with it). f.mu is
// held.
func (f *Fake) detachAll(vmID string) {
	for id, r := range f.inventory {
		switch {
		case r.Type == diskType && slices.ContainsFunc(usersOf(r), func(u string) bool { return strings.HasSuffix(u, vmID) }):
			f.detach(vmID, id)
		case r.Type == attachType && strings.HasPrefix(id, vmID+"/"):
			delete(f.inventory, id)
		}
	}
}

// setOutput changes one output of a resource, copy on write: a Resource
// handed out (Inventory) never changes under its reader. f.mu is held.
func (f *Fake) setOutput(id, key string, v any) {
	r, ok := f.inventory[id]
	if !ok {
		return
	}
	r.Outputs = maps.Clone(r.Outputs)
	r.Outputs[key] = v
	f.inventory[id] = r
}

func usersOf(disk Resource) []string {
	var out []string
	for _, u := range asList(disk.Outputs["users"]) {
		out = append(out, fmt.Sprint(u))
	}
	return out
}

func attachedOf(vm Resource) []any { return slices.Clone(asList(vm.Outputs["attachedDisks"])) }

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// Disks returns the disks that exist, by ID, with their users.
func (f *Fake) Disks() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for id, r := range f.inventory {
		if r.Type == diskType {
			out[id] = usersOf(r)
		}
	}
	return out
}

// apiDisk is a disk as the Compute API returns it.
func apiDisk(r Resource) map[string]any {
	d := map[string]any{"kind": "compute#disk", "name": r.Inputs["name"], "sizeGb": fmt.Sprint(r.Inputs["size"]),
		"zone":     "https://www.googleapis.com/compute/v1/projects/" + fmt.Sprint(r.Inputs["project"]) + "/zones/" + fmt.Sprint(r.Inputs["zone"]),
		"selfLink": "https://www.googleapis.com/compute/v1/" + r.ID, "status": "READY", "labels": r.Inputs["labels"],
		"creationTimestamp": r.Outputs["creationTimestamp"]}
	if users := usersOf(r); len(users) > 0 {
		d["users"] = users
	}
	if r.Outputs["status"] != nil {
		d["status"] = r.Outputs["status"]
	}
	return d
}

// filterTerm is the one shape of list filter cohort sends:
// `name = "N"` or `labels.KEY = "V"` (cloud.google.com/compute/docs/
// reference/rest/v1/disks/aggregatedList, filter).
var filterTerm = regexp.MustCompile(`^\s*(name|labels\.[a-z0-9_-]+)\s*=\s*"?([^"]*)"?\s*$`)

// aggregatedDisks answers disks.aggregatedList: disks by zone, and for a
// zone with none, a warning as GCE gives (here only the zones that hold
// disks are listed, which GCE's answer also includes).
func (f *Fake) aggregatedDisks(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	var key, want string
	if q := r.URL.Query().Get("filter"); q != "" {
		m := filterTerm.FindStringSubmatch(q)
		if m == nil {
			apiError(w, http.StatusBadRequest, "Invalid value for field 'filter': '"+q+"'. Invalid list filter expression.", "invalid")
			return
		}
		key, want = m[1], m[2]
	}
	items := map[string]any{}
	f.mu.Lock()
	for _, d := range f.inventory {
		if d.Type != diskType || d.Inputs["project"] != project {
			continue
		}
		switch label, isLabel := strings.CutPrefix(key, "labels."); {
		case key == "name" && d.Inputs["name"] != want, isLabel && fmt.Sprint(mapOf(d.Inputs["labels"])[label]) != want:
			continue
		}
		zone := "zones/" + fmt.Sprint(d.Inputs["zone"])
		scoped := mapOf(items[zone])
		if scoped == nil {
			scoped = map[string]any{}
			items[zone] = scoped
		}
		scoped["disks"] = append(asList(scoped["disks"]), apiDisk(d))
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"kind": "compute#diskAggregatedList", "items": items})
}

// deleteDisk answers disks.delete: refused while an instance uses the
// disk, as GCE words it; otherwise an operation, and the disk is gone
// (DELETING until then) after the fake's latency.
func (f *Fake) deleteDisk(w http.ResponseWriter, r *http.Request) {
	id := fmt.Sprintf("projects/%s/zones/%s/disks/%s", r.PathValue("project"), r.PathValue("zone"), r.PathValue("name"))
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.inventory[id]
	switch {
	case !ok || d.Type != diskType:
		apiError(w, http.StatusNotFound, "The resource '"+id+"' was not found", "notFound")
		return
	case len(usersOf(d)) > 0:
		apiError(w, http.StatusBadRequest, fmt.Sprintf("The disk resource '%s' is already being used by '%s'", id, strings.TrimPrefix(usersOf(d)[0], "https://www.googleapis.com/compute/v1/")), "resourceInUseByAnotherResource")
		return
	}
	f.setOutput(id, "status", "DELETING")
	time.AfterFunc(f.Latency, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.inventory, id)
	})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"kind": "compute#operation", "name": "operation-delete-" + r.PathValue("name"),
		"operationType": "delete", "status": "RUNNING", "targetLink": "https://www.googleapis.com/compute/v1/" + id,
		"zone": "https://www.googleapis.com/compute/v1/projects/" + r.PathValue("project") + "/zones/" + r.PathValue("zone")})
}

// getDisk answers disks.get.
func (f *Fake) getDisk(w http.ResponseWriter, r *http.Request) {
	id := fmt.Sprintf("projects/%s/zones/%s/disks/%s", r.PathValue("project"), r.PathValue("zone"), r.PathValue("name"))
	f.mu.Lock()
	d, ok := f.inventory[id]
	var body map[string]any
	if ok {
		body = apiDisk(d)
	}
	f.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "The resource '"+id+"' was not found", "notFound")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

// apiError answers as the Compute API does.
func apiError(w http.ResponseWriter, code int, message, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": message,
		"errors": []any{map[string]any{"message": message, "domain": "global", "reason": reason}}}})
}

// Leftovers is what exists apart from work disks no VM uses: what a
// class that has ended must not leave (its work disks stay until their
// retention ends).
func (f *Fake) Leftovers() map[string]Resource {
	out := f.Inventory() // copies whose maps nothing changes
	for id, r := range out {
		if r.Type == diskType && mapOf(r.Inputs["labels"])["cohort-work"] == "true" && len(usersOf(r)) == 0 {
			delete(out, id)
		}
	}
	return out
}

// HotDetaches says how many disks were detached from running instances.
func (f *Fake) HotDetaches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hotDetaches
}
