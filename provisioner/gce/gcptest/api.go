package gcptest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The fake's HTTP side: each instance's metadata server (what its agent
// reads and where it publishes guest attributes) and the part of the
// Compute Engine API cohort reads, getGuestAttributes.

func (f *Fake) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metadata/{name}/computeMetadata/v1/instance/attributes/{key}", f.metadataAttribute)
	mux.HandleFunc("PUT /metadata/{name}/computeMetadata/v1/instance/guest-attributes/{ns}/{key}", f.putGuestAttribute)
	mux.HandleFunc("GET /compute/v1/projects/{project}/zones/{zone}/instances/{name}/getGuestAttributes", f.getGuestAttributes)
	mux.HandleFunc("GET /compute/v1/projects/{project}/zones/{zone}/instances/{name}", f.getInstance)
	mux.HandleFunc("GET /compute/v1/projects/{project}/global/images/family/{family}", f.getFromFamily)
	mux.HandleFunc("GET /compute/v1/projects/{project}/aggregated/disks", f.aggregatedDisks)
	mux.HandleFunc("GET /compute/v1/projects/{project}/zones/{zone}/disks/{name}", f.getDisk)
	mux.HandleFunc("DELETE /compute/v1/projects/{project}/zones/{zone}/disks/{name}", f.deleteDisk)
	return mux
}

// notFound answers as the Compute API does for a missing resource.
func notFound(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintf(w, `{"error":{"code":404,"message":"The resource 'projects/%s/zones/%s/instances/%s' was not found","errors":[{"reason":"notFound"}]}}`,
		r.PathValue("project"), r.PathValue("zone"), r.PathValue("name"))
}

func (f *Fake) getInstance(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	vm, ok := f.instance(r.PathValue("name"))
	status := f.status[r.PathValue("name")]
	f.mu.Unlock()
	if !ok || vm.Inputs["zone"] != r.PathValue("zone") {
		notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"kind": "compute#instance", "name": r.PathValue("name"), "status": status,
		"zone": "https://www.googleapis.com/compute/v1/projects/" + r.PathValue("project") + "/zones/" + r.PathValue("zone")})
}

// getFromFamily answers images.getFromFamily: the family's newest image,
// or 404 as the Compute API words it.
func (f *Fake) getFromFamily(w http.ResponseWriter, r *http.Request) {
	project, family := r.PathValue("project"), r.PathValue("family")
	f.mu.Lock()
	_, _, img, ok := f.image("projects/" + project + "/global/images/family/" + family)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"code":404,"message":"The resource 'projects/%s/global/images/family/%s' was not found","errors":[{"reason":"notFound"}]}}`, project, family)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"kind": "compute#image", "name": img.Name, "family": family, "status": "READY",
		"diskSizeGb": fmt.Sprint(img.SizeGB), "selfLink": imageSelfLink(project, img)})
}

// ComputeURL is the endpoint of the fake Compute Engine API.
func (f *Fake) ComputeURL() string { return "http://" + f.httpLis.Addr().String() }

// metadataURL is the base URL of an instance's metadata server, as
// http://metadata.google.internal/computeMetadata/v1 is on a VM.
func (f *Fake) metadataURL(name string) string {
	return f.ComputeURL() + "/metadata/" + name + "/computeMetadata/v1"
}

// instance finds an instance by name. f.mu is held.
func (f *Fake) instance(name string) (Resource, bool) {
	for _, r := range f.inventory {
		if r.Type == "gcp:compute/instance:Instance" && r.Inputs["name"] == name {
			return r, true
		}
	}
	return Resource{}, false
}

func (f *Fake) metadataAttribute(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "Missing Metadata-Flavor:Google header.", http.StatusForbidden)
		return
	}
	f.mu.Lock()
	vm, ok := f.instance(r.PathValue("name"))
	f.mu.Unlock()
	meta, _ := vm.Inputs["metadata"].(map[string]any)
	v, found := meta[r.PathValue("key")].(string)
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	io.WriteString(w, v)
}

func (f *Fake) putGuestAttribute(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "Missing Metadata-Flavor:Google header.", http.StatusForbidden)
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.PathValue("name")
	vm, _ := f.instance(name)
	if meta, _ := vm.Inputs["metadata"].(map[string]any); meta["enable-guest-attributes"] != "TRUE" {
		http.Error(w, "Guest attributes endpoint access is disabled.", http.StatusForbidden) // as GCE answers
		return
	}
	if f.guests[name] == nil {
		f.guests[name] = map[string]string{}
	}
	f.guests[name][r.PathValue("ns")+"/"+r.PathValue("key")] = string(b)
}

type guestItem struct {
	Namespace string `json:"namespace"`
	Key       string `json:"key"`
	Value     string `json:"value"`
}

// getGuestAttributes answers as GCE does: 404 for an instance that does
// not exist, or one that has published nothing under the query path yet.
func (f *Fake) getGuestAttributes(w http.ResponseWriter, r *http.Request) {
	name, path := r.PathValue("name"), r.URL.Query().Get("queryPath")
	f.mu.Lock()
	_, exists := f.instance(name)
	var items []guestItem
	for k, v := range f.guests[name] {
		if strings.HasPrefix(k, path) {
			ns, key, _ := strings.Cut(k, "/")
			items = append(items, guestItem{ns, key, v})
		}
	}
	f.mu.Unlock()
	if !exists || len(items) == 0 {
		notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"kind": "compute#guestAttributes", "queryPath": path,
		"queryValue": map[string]any{"items": items},
	})
}
