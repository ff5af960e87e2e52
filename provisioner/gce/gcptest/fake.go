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
	"math/rand/v2"
	"net"
	"net/http"
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
	quota     int             // GPUs that may exist at once; <0 unlimited
	failRate  float64         // share of creates that fail transiently
	creates   int
	inFlight  int                          // creates accepted and not yet done
	guests    map[string]map[string]string // guest attributes by instance name
	status    map[string]string            // instances' status by name

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
		stockout: map[string]bool{}, quota: -1, guests: map[string]map[string]string{}, status: map[string]string{},
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

// SetGPUQuota limits how many GPUs may exist at once (<0: no limit).
func (f *Fake) SetGPUQuota(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quota = n
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
	return &pulumirpc.ProviderHandshakeResponse{AcceptSecrets: true, AcceptResources: true, AcceptOutputs: true}, nil
}

func (f *Fake) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (f *Fake) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{}, nil
}

func (f *Fake) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true, AcceptOutputs: true}, nil
}

func (f *Fake) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// Diff replaces a resource whose inputs changed (a session's resources
// are not edited in place).
func (f *Fake) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, news := req.GetOldInputs().AsMap(), req.GetNews().AsMap()
	var changed []string
	for k, v := range news {
		if fmt.Sprint(olds[k]) != fmt.Sprint(v) {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME, Replaces: changed, DeleteBeforeReplace: true}, nil
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
	typ, props := typeOf(req.GetUrn()), req.GetProperties().AsMap()
	if req.GetPreview() {
		return &pulumirpc.CreateResponse{Properties: req.GetProperties()}, nil
	}
	name, _ := props["name"].(string)
	var id string
	switch typ {
	case "gcp:compute/instance:Instance":
		id = fmt.Sprintf("projects/%v/zones/%v/instances/%s", props["project"], props["zone"], name)
	case "gcp:cloudscheduler/job:Job":
		id = fmt.Sprintf("projects/%v/locations/%v/jobs/%s", props["project"], props["region"], name)
	default:
		return nil, status.Errorf(codes.Unimplemented, "the fake gcp provider has no %s", typ)
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
		return nil, status.Errorf(codes.Unknown, "Error creating %s: googleapi: Error 409: The resource '%s' already exists, alreadyExists", typ, id)
	}
	time.Sleep(f.Latency)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	switch typ {
	case "gcp:compute/instance:Instance":
		zone, _ := props["zone"].(string)
		project, _ := props["project"].(string)
		if err := f.admitInstance(project, zone, props); err != nil {
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
		props["networkInterfaces"] = []any{map[string]any{"networkIp": ip}}
		f.status[name] = "RUNNING"
		props["instanceId"] = fmt.Sprint(1000000 + f.creates)
	case "gcp:cloudscheduler/job:Job":
		props["state"] = "ENABLED"
	}
	out, err := structpb.NewStruct(props)
	if err != nil {
		return nil, err
	}
	f.inventory[id] = Resource{Type: typ, ID: id, Inputs: req.GetProperties().AsMap(), Outputs: props}
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

// CreatesInFlight says how many creates were accepted and are not done.
func (f *Fake) CreatesInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight
}

// admitInstance fails a create the way GCE does. f.mu is held.
func (f *Fake) admitInstance(project, zone string, props map[string]any) error {
	region := zone[:strings.LastIndex(zone, "-")]
	switch {
	case f.failRate > 0 && rand.Float64() < f.failRate:
		return status.Errorf(codes.Unavailable, "googleapi: Error 503: The service is currently unavailable., backendError")
	case f.stockout[zone]:
		return status.Errorf(codes.Unknown, "Error creating instance: googleapi: Error 400: The zone 'projects/%s/zones/%s' does not have enough resources available to fulfill the request. Try a different zone, or try again later., ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", project, zone)
	case f.quota >= 0 && f.gpus()+gpusOf(props) > f.quota:
		return status.Errorf(codes.Unknown, "Error creating instance: googleapi: Error 403: Quota 'GPUS_ALL_REGIONS' exceeded. Limit: %d.0 globally., quotaExceeded; also NVIDIA_T4_GPUS in region %s", f.quota, region)
	}
	return nil
}

// gpus counts the GPUs of the instances that exist. f.mu is held.
func (f *Fake) gpus() int {
	n := 0
	for _, r := range f.inventory {
		if r.Type == "gcp:compute/instance:Instance" {
			n += gpusOf(r.Inputs)
		}
	}
	return n
}

func gpusOf(props map[string]any) int {
	n := 0
	accs, _ := props["guestAccelerators"].([]any)
	for _, a := range accs {
		if m, ok := a.(map[string]any); ok {
			c, _ := m["count"].(float64)
			n += int(c)
		}
	}
	if mt := fmt.Sprint(props["machineType"]); n == 0 && (strings.HasPrefix(mt, "g2-") || strings.HasPrefix(mt, "a2-")) {
		n = 1 // built in
	}
	return n
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
	r, ok := f.inventory[req.GetId()]
	f.mu.Unlock()
	if !ok {
		return &pulumirpc.ReadResponse{}, nil // gone
	}
	props, err := structpb.NewStruct(r.Outputs)
	if err != nil {
		return nil, err
	}
	inputs, err := structpb.NewStruct(r.Inputs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: r.ID, Properties: props, Inputs: inputs}, nil
}

func (f *Fake) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	return &pulumirpc.UpdateResponse{Properties: req.GetNews()}, nil
}

func (f *Fake) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	if r, ok := f.inventory[req.GetId()]; ok {
		delete(f.guests, fmt.Sprint(r.Inputs["name"]))
		delete(f.status, fmt.Sprint(r.Inputs["name"]))
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
