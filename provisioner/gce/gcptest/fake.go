// Package gcptest is a fake of Google Cloud for tests: a Pulumi resource
// provider for the gcp package, served in-process over gRPC, that the real
// Pulumi engine talks to instead of the gcp plugin (attached with
// PULUMI_DEBUG_PROVIDERS=gcp:PORT). It behaves like GCE where cohort cares:
// creates and deletes take time, instances get an internal address, a zone
// can be out of stock, a GPU quota can be exhausted, a call can fail
// transiently. Its inventory says what "exists". Its HTTP side (api.go)
// is each VM's metadata server and Compute Engine's guest attributes.
package gcptest

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Version is the gcp plugin version the fake claims to be (the SDK's).
const Version = "7.38.0"

// Resource is one thing the fake cloud holds.
type Resource struct {
	Type   string // e.g. "gcp:compute/instance:Instance"
	ID     string
	Inputs map[string]any
	// Outputs are what a read returns (with the internal address).
	Outputs map[string]any
}

// Fake is the fake provider and its cloud.
type Fake struct {
	pulumirpc.UnimplementedResourceProviderServer

	// Latency of a create or delete; InternalIP is the address instances get.
	Latency    time.Duration
	InternalIP string
	// Boot, if set, runs when an instance is created, as the VM's boot
	// would: it gets the instance's name and the URL of its metadata server
	// and returns the internal address where the VM serves, and how to
	// halt it.
	Boot func(name, metadataURL string) (ip string, halt func(), err error)

	mu        sync.Mutex
	inventory map[string]Resource
	halts     map[string]func()
	stockout  map[string]bool // zones without GPUs left
	stockouts int             // stockout answers given, to vary the text
	quota     int             // GPUs that may exist at once; <0 unlimited
	regional  map[string]int  // GPUs of a type that may exist in a region, by "type/region"
	images    map[string]Image
	failRate  float64 // share of creates that fail transiently
	creates   int
	inFlight  int                          // creates accepted and not yet done
	guests    map[string]map[string]string // guest attributes by instance name
	status    map[string]string            // instances' status by name
	homes     string                       // BootAgents's VM homes
	// hotDetaches counts disks detached from running instances: GCE
	// does it, under a guest that may be writing to the disk.
	hotDetaches int

	lis     net.Listener
	srv     *grpc.Server
	httpLis net.Listener
	httpSrv *http.Server
}

// Start serves a fake on a loopback port until Stop.
func Start() (*Fake, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		lis.Close()
		return nil, err
	}
	f := &Fake{Latency: 200 * time.Millisecond, InternalIP: "10.128.0.2", inventory: map[string]Resource{}, halts: map[string]func(){},
		stockout: map[string]bool{}, quota: -1, regional: map[string]int{}, images: map[string]Image{}, guests: map[string]map[string]string{}, status: map[string]string{},
		lis: lis, srv: grpc.NewServer(), httpLis: httpLis}
	f.httpSrv = &http.Server{Handler: f.routes(), ReadHeaderTimeout: 5 * time.Second}
	pulumirpc.RegisterResourceProviderServer(f.srv, f)
	go f.srv.Serve(lis)
	go f.httpSrv.Serve(httpLis)
	return f, nil
}

// Stop ends the servers.
func (f *Fake) Stop() {
	f.srv.Stop()
	f.httpSrv.Close()
}

// DebugProviders is the value of PULUMI_DEBUG_PROVIDERS that points the
// engine at this fake.
func (f *Fake) DebugProviders() string {
	return fmt.Sprintf("gcp:%d", f.lis.Addr().(*net.TCPAddr).Port)
}

// Stockout makes a zone run out of GPUs (or have them again).
func (f *Fake) Stockout(zone string, out bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stockout[zone] = out
}

// SetGPUQuota limits how many GPUs may exist at once in the project
// (GPUS_ALL_REGIONS; <0: no limit).
func (f *Fake) SetGPUQuota(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quota = n
}

// SetRegionalGPUQuota limits how many GPUs of a type may exist at once in
// a region (e.g. NVIDIA_T4_GPUS in us-central1).
func (f *Fake) SetRegionalGPUQuota(gpu, region string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.regional[gpu+"/"+region] = n
}

// SetFailRate makes that share of creates fail with a transient error.
func (f *Fake) SetFailRate(r float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failRate = r
}

// Inventory returns what exists, by ID.
func (f *Fake) Inventory() map[string]Resource {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]Resource, len(f.inventory))
	for k, v := range f.inventory {
		out[k] = v
	}
	return out
}

// Instances returns the instances that exist.
func (f *Fake) Instances() []Resource {
	var out []Resource
	for _, r := range f.Inventory() {
		if r.Type == "gcp:compute/instance:Instance" {
			out = append(out, r)
		}
	}
	return out
}

func (f *Fake) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

func (f *Fake) Handshake(context.Context, *pulumirpc.ProviderHandshakeRequest) (*pulumirpc.ProviderHandshakeResponse, error) {
	return &pulumirpc.ProviderHandshakeResponse{AcceptResources: true, AcceptOutputs: true}, nil
}

func (f *Fake) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (f *Fake) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{}, nil
}

func (f *Fake) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	// As the bridged provider (pulumi-terraform-bridge pkg/tfbridge/
	// provider.go, Configure): no secrets on the wire. The engine sends
	// secret inputs in the clear and marks the outputs of secret inputs
	// secret again (sdk/go/common/resource/plugin/provider_plugin.go), so
	// the state encrypts them.
	return &pulumirpc.ConfigureResponse{SupportsPreview: true, AcceptResources: true, AcceptOutputs: true}, nil
}

func (f *Fake) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func typeOf(urn string) string {
	parts := strings.Split(urn, "::")
	if len(parts) < 4 {
		return ""
	}
	t := parts[len(parts)-2]
	if i := strings.LastIndex(t, "$"); i >= 0 {
		t = t[i+1:]
	}
	return t
}

// Create creates like GCE: an accepted insert completes even if the caller
// goes away (a killed engine), and a name that exists is refused.
func (f *Fake) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	typ := typeOf(req.GetUrn())
	if req.GetPreview() {
		return &pulumirpc.CreateResponse{Properties: req.GetProperties()}, nil
	}
	props := req.GetProperties().AsMap()
	inputs := maps.Clone(props)
	name, _ := props["name"].(string)
	var id, kind string
	switch typ {
	case "gcp:compute/instance:Instance":
		id, kind = fmt.Sprintf("projects/%v/zones/%v/instances/%s", props["project"], props["zone"], name), "instance"
		f.mu.Lock()
		err := f.checkInstance(props)
		f.mu.Unlock()
		if err != nil {
			return nil, err
		}
	case "gcp:cloudscheduler/job:Job":
		id, kind = fmt.Sprintf("projects/%v/locations/%v/jobs/%s", props["project"], props["region"], name), "Job"
	case diskType:
		id, kind = fmt.Sprintf("projects/%v/zones/%v/disks/%s", props["project"], props["zone"], name), "Disk"
		if err := checkDisk(props); err != nil {
			return nil, err
		}
	case attachType:
		// resource_compute_attached_disk.go: the ID is the instance's
		// relative link and the disk's name.
		vmID, diskID, _ := attachment(props)
		id, kind = vmID+"/"+path.Base(diskID), "AttachedDisk"
	default:
		var ok bool
		if id, ok = foundationID(typ, props); !ok {
			return nil, status.Errorf(codes.Unimplemented, "the fake gcp provider has no %s", typ)
		}
		kind = typ
	}
	f.mu.Lock()
	_, exists := f.inventory[id]
	f.inFlight++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if exists {
		return nil, alreadyExists(kind, id)
	}
	time.Sleep(f.Latency)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	switch typ {
	case "gcp:compute/instance:Instance":
		if err := f.admitInstance(props); err != nil {
			return nil, err
		}
		ip := f.InternalIP
		if f.Boot != nil {
			booted, halt, err := f.Boot(name, f.metadataURL(name))
			if err != nil {
				return nil, status.Errorf(codes.Unknown, "boot %s: %v", name, err)
			}
			ip, f.halts[id] = booted, halt
		}
		props["networkInterfaces"] = []any{map[string]any{"networkIp": ip, "network": mapOf(props["networkInterfaces"].([]any)[0])["network"],
			"subnetwork": mapOf(props["networkInterfaces"].([]any)[0])["subnetwork"]}}
		project, _, img, _ := f.image(imageOf(props))
		props["bootDisk"] = map[string]any{"autoDelete": true, "initializeParams": map[string]any{
			"image": imageSelfLink(project, img), "size": mapOf(mapOf(props["bootDisk"])["initializeParams"])["size"]}}
		f.status[name] = "RUNNING"
		props["instanceId"] = fmt.Sprint(1000000 + f.creates)
		props["selfLink"] = "https://www.googleapis.com/compute/v1/" + id
	case "gcp:cloudscheduler/job:Job":
		props["state"] = "ENABLED"
	case diskType:
		props["selfLink"], props["users"] = "https://www.googleapis.com/compute/v1/"+id, []any{}
		props["creationTimestamp"] = time.Now().Format("2006-01-02T15:04:05.000-07:00")
	case attachType:
		if err := f.attach(props); err != nil {
			return nil, err
		}
	default:
		computeOutputs(typ, id, props)
	}
	out, err := structpb.NewStruct(props)
	if err != nil {
		return nil, err
	}
	f.inventory[id] = Resource{Type: typ, ID: id, Inputs: inputs, Outputs: props}
	return &pulumirpc.CreateResponse{Id: id, Properties: out}, nil
}

// Preempt stops an instance as GCE takes back a spot VM: it halts (its
// notebook with it), loses its guest attributes and is TERMINATED, but
// still exists until deleted.
func (f *Fake) Preempt(name string) {
	f.mu.Lock()
	vm, ok := f.instance(name)
	halt := f.halts[vm.ID]
	delete(f.halts, vm.ID)
	delete(f.guests, name)
	if ok {
		f.status[name] = "TERMINATED"
	}
	f.mu.Unlock()
	if halt != nil {
		halt()
	}
}

// RunOut is an instance reaching its scheduling.maxRunDuration with
// instanceTerminationAction STOP: GCE stops it as it would preempt it,
// and its disk stays until deleted
// (cloud.google.com/compute/docs/instances/limit-vm-runtime).
func (f *Fake) RunOut(name string) { f.Preempt(name) }

// Creates says how many creates were accepted.
func (f *Fake) Creates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates
}

// CreatesInFlight says how many creates were accepted and are not done.
func (f *Fake) CreatesInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight
}

func (f *Fake) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return status.Error(codes.Canceled, "canceled")
	case <-time.After(f.Latency):
		return nil
	}
}

func (f *Fake) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.inventory[req.GetId()]
	if !ok {
		return &pulumirpc.ReadResponse{}, nil // gone
	}
	props, err := structpb.NewStruct(r.Outputs)
	if err != nil {
		return nil, err
	}
	in := r.Inputs
	if r.Type == vmType && len(attachedOf(r)) > 0 {
		// The bridge reads inputs back from the state, which holds every
		// attached disk (resource_compute_instance.go, flattening
		// attached_disk): a refresh makes them the instance's inputs.
		in = maps.Clone(in)
		in["attachedDisks"] = attachedOf(r)
	}
	inputs, err := structpb.NewStruct(in)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: r.ID, Properties: props, Inputs: inputs}, nil
}

// Update changes a resource in place: what Diff did not plan as a
// replace. The outputs GCE computes (address, concrete image) stay.
func (f *Fake) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if req.GetPreview() {
		return &pulumirpc.UpdateResponse{Properties: req.GetNews()}, nil
	}
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	news := req.GetNews().AsMap()
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.inventory[req.GetId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Error updating %s: googleapi: Error 404: The resource '%s' was not found, notFound", typeOf(req.GetUrn()), req.GetId())
	}
	outs := maps.Clone(r.Outputs)
	for k, v := range news {
		if k != "networkInterfaces" && k != "bootDisk" && k != "attachedDisks" {
			outs[k] = v
		}
	}
	if r.Type == vmType && !slices.Contains(req.GetIgnoreChanges(), "attachedDisks") {
		// An update of an instance makes its attached disks those it is
		// given: one attached by an AttachedDisk is detached unless the
		// instance ignores changes to attachedDisks, which the bridge
		// drops from the plan (resource_compute_instance.go,
		// resourceComputeInstanceUpdate; google_compute_attached_disk's
		// documentation; pulumi-terraform-bridge's ignoreChanges).
		keep := map[string]bool{}
		for _, a := range asList(news["attachedDisks"]) {
			if id, ok := relative(fmt.Sprint(mapOf(a)["source"])); ok {
				keep[id] = true
			}
		}
		for _, a := range attachedOf(r) {
			if id, _ := relative(fmt.Sprint(mapOf(a)["source"])); !keep[id] {
				f.detach(r.ID, id)
			}
		}
	}
	if r.Type == vmType {
		outs["attachedDisks"] = r.Outputs["attachedDisks"] // read back after the update
	}
	f.inventory[r.ID] = Resource{Type: r.Type, ID: r.ID, Inputs: news, Outputs: outs}
	out, err := structpb.NewStruct(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: out}, nil
}

func (f *Fake) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	if r, ok := f.inventory[req.GetId()]; ok {
		delete(f.guests, fmt.Sprint(r.Inputs["name"]))
		delete(f.status, fmt.Sprint(r.Inputs["name"]))
		switch r.Type {
		case vmType:
			f.detachAll(r.ID)
		case attachType:
			vmID, diskID, _ := attachment(r.Inputs)
			if vm, ok := f.inventory[vmID]; ok && f.status[fmt.Sprint(vm.Inputs["name"])] == "RUNNING" {
				f.hotDetaches++ // instances.detachDisk under a running guest
			}
			f.detach(vmID, diskID)
		case diskType:
			// resource_compute_disk.go, resourceComputeDiskDelete:
			// the provider detaches the disk from its users first.
			for _, u := range usersOf(r) {
				vmID, _ := relative(u)
				f.detach(vmID, r.ID)
			}
		}
	}
	delete(f.inventory, req.GetId())
	halt := f.halts[req.GetId()]
	delete(f.halts, req.GetId())
	f.mu.Unlock()
	if halt != nil {
		halt()
	}
	return &emptypb.Empty{}, nil
}

func (f *Fake) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (f *Fake) Attach(context.Context, *pulumirpc.PluginAttach) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}
