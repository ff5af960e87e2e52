package agent_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/cohortdev/cohort/agent"
	"github.com/cohortdev/cohort/infra"
	"github.com/cohortdev/cohort/jupyter"
	"github.com/cohortdev/cohort/materials"
)

// metadataServer fakes GCE's: instance attributes, and guest attributes
// the VM sets.
type metadataServer struct {
	*httptest.Server
	mu     sync.Mutex
	attrs  map[string]string
	guests map[string]string
}

func newMetadataServer(t *testing.T, attrs map[string]string) *metadataServer {
	m := &metadataServer{attrs: attrs, guests: map[string]string{}}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "missing Metadata-Flavor", http.StatusForbidden)
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/instance/attributes/"):
			v, ok := m.attrs[strings.TrimPrefix(r.URL.Path, "/instance/attributes/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, v)
		case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/instance/guest-attributes/"):
			b, _ := io.ReadAll(r.Body)
			m.guests[strings.TrimPrefix(r.URL.Path, "/instance/guest-attributes/")] = string(b)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(m.Close)
	return m
}

// waitReady waits for the agent to publish that its notebook is ready.
func (m *metadataServer) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for m.guest("cohort/state") != "ready" {
		if time.Now().After(deadline) {
			t.Fatalf("never ready (guest state %q)", m.guest("cohort/state"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *metadataServer) guest(key string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.guests[key]
}

// programMetadata is the metadata the session program gives a VM: the
// agent must understand exactly that.
func programMetadata(t *testing.T, token, basePath string, edits ...func(*infra.SessionSpec)) map[string]string {
	t.Helper()
	var meta map[string]string
	mocks := mockFunc(func(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
		if args.TypeToken == "gcp:compute/instance:Instance" {
			meta = map[string]string{}
			for k, v := range args.Inputs["metadata"].ObjectValue() {
				if v.IsSecret() { // the token: the VM's metadata server serves it plain
					v = v.SecretValue().Element
				}
				meta[string(k)] = v.StringValue()
			}
		}
		return args.Name, args.Inputs, nil
	})
	spec := infra.SessionSpec{Project: "p", Zone: "us-central1-a", Name: "cohort-ses-a", SessionID: "ses_a", MachineType: "n1-standard-4",
		GPUType: "nvidia-tesla-t4", GPUCount: 1, Image: "img", DiskGB: 50, MaxRunDuration: time.Hour, NotebookToken: token, BasePath: basePath,
		Subnetwork: "projects/p/regions/us-central1/subnetworks/cohort-sessions"}
	for _, edit := range edits {
		edit(&spec)
	}
	if err := pulumi.RunErr(infra.SessionProgram(spec), pulumi.WithMocks("cohort", "s", mocks)); err != nil {
		t.Fatal(err)
	}
	return meta
}

type mockFunc func(pulumi.MockResourceArgs) (string, resource.PropertyMap, error)

func (f mockFunc) NewResource(a pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	return f(a)
}
func (f mockFunc) Call(pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestAgentServesTheProgramsSettings(t *testing.T) {
	t.Parallel()
	meta := programMetadata(t, "tok-123", "/")
	port := freePort(t)
	meta[infra.MetaPort] = strconv.Itoa(port) // the VM's ports 8888 and 8889 are shared by parallel tests here
	md := newMetadataServer(t, meta)
	home, hooks := t.TempDir(), t.TempDir()
	marker := filepath.Join(home, "hook-ran")
	if err := os.WriteFile(filepath.Join(hooks, "10-save"), []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	a := agent.New(agent.Options{ControlPort: freePort(t), MetadataURL: md.URL, Jupyter: "/usr/bin/jupyter-notebook", Home: home, IP: "127.0.0.1", HooksDir: hooks})

	s, err := a.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Token != "tok-123" || s.BasePath != "/" || s.Port != port {
		t.Fatalf("the agent read %+v from the program's metadata", s)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	md.waitReady(t)
	addr := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 5 * time.Second}
	if _, err := jupyter.GetStatus(context.Background(), client, addr, "/", "tok-123"); err != nil {
		t.Fatalf("Jupyter does not answer with the token at the base path: %v", err)
	}
	if _, err := jupyter.GetStatus(context.Background(), client, addr, "/", "wrong"); err == nil {
		t.Fatal("Jupyter answers a wrong token")
	}
	cancel() // the VM shuts down
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the pre-stop hook did not run")
	}
	if _, err := jupyter.GetStatus(context.Background(), client, addr, "/", "tok-123"); err == nil {
		t.Fatal("Jupyter still answers after shutdown")
	}
}

func TestAgentRefusesBadMetadata(t *testing.T) {
	t.Parallel()
	for name, meta := range map[string]map[string]string{
		"missing token": {infra.MetaSessionID: "s", infra.MetaBasePath: "/", infra.MetaPort: "8888", infra.MetaToken: ""},
		"bad port":      {infra.MetaSessionID: "s", infra.MetaBasePath: "/", infra.MetaPort: "http", infra.MetaToken: "t"},
		"no metadata":   {},
	} {
		md := newMetadataServer(t, meta)
		a := agent.New(agent.Options{ControlPort: freePort(t), MetadataURL: md.URL, Home: t.TempDir()})
		if err := a.Run(context.Background()); err == nil {
			t.Errorf("%s: the agent ran", name)
		}
	}
}

func TestAgentPublishesAFailedStart(t *testing.T) {
	t.Parallel()
	meta := programMetadata(t, "tok-123", "/")
	meta[infra.MetaPort] = strconv.Itoa(freePort(t))
	md := newMetadataServer(t, meta)
	a := agent.New(agent.Options{ControlPort: freePort(t), MetadataURL: md.URL, Jupyter: "/bin/false", Home: t.TempDir(), IP: "127.0.0.1"})
	if err := a.Run(context.Background()); err == nil {
		t.Fatal("Run with a notebook server that exits at once succeeded")
	}
	if got := md.guest("cohort/state"); got != "failed" {
		t.Fatalf("guest state %q, want failed", got)
	}
	if got := md.guest("cohort/error"); !strings.Contains(got, "exited while starting") {
		t.Fatalf("guest error %q does not say what happened", got)
	}
}

// TestAgentWaitsForTheWorkDisk: when the metadata says a work disk comes,
// Jupyter starts only once it is mounted (MountWork's ready file), and a
// disk that never comes fails the start, saying so.
func TestAgentWaitsForTheWorkDisk(t *testing.T) {
	t.Parallel()
	meta := programMetadata(t, "tok-123", "/", func(s *infra.SessionSpec) { s.Work = &infra.WorkDisk{Name: "cohort-work-1", New: true, SizeGB: 10} })
	meta[infra.MetaPort] = strconv.Itoa(freePort(t))
	md := newMetadataServer(t, meta)
	ready := filepath.Join(t.TempDir(), "work-ready")
	// /bin/false as Jupyter: once started, the start fails at once.
	a := agent.New(agent.Options{ControlPort: freePort(t), MetadataURL: md.URL, Jupyter: "/bin/false", Home: t.TempDir(), IP: "127.0.0.1", WorkReady: ready})
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	time.Sleep(500 * time.Millisecond)
	if got := md.guest("cohort/state"); got != "starting" {
		t.Fatalf("guest state %q while the disk is not mounted, want starting", got)
	}
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "exited while starting") {
		t.Fatalf("once the disk is mounted, Jupyter should have started: %v", err)
	}

	never := agent.New(agent.Options{ControlPort: freePort(t), MetadataURL: md.URL, Jupyter: "/bin/false", Home: t.TempDir(), IP: "127.0.0.1",
		WorkReady: filepath.Join(t.TempDir(), "never"), WorkWait: 300 * time.Millisecond})
	if err := never.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "the work disk was not ready within 300ms") {
		t.Fatalf("no disk = %v", err)
	}
	if got := md.guest("cohort/error"); !strings.Contains(got, "the work disk was not ready") {
		t.Fatalf("guest error %q", got)
	}
}

// TestAgentControlPort: cohort's calls to the agent need the session's
// notebook token; with it, the class's materials are merged into the work
// folder and the work comes back as a tar.
func TestAgentControlPort(t *testing.T) {
	t.Parallel()
	meta := programMetadata(t, "tok-123", "/")
	meta[infra.MetaPort] = strconv.Itoa(freePort(t))
	md := newMetadataServer(t, meta)
	home := t.TempDir()
	control := freePort(t)
	a := agent.New(agent.Options{MetadataURL: md.URL, Jupyter: "/usr/bin/jupyter-notebook", Home: home, IP: "127.0.0.1", ControlPort: control})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	md.waitReady(t)
	base := "http://127.0.0.1:" + strconv.Itoa(control)
	call := func(method, path, token string, body io.Reader, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		if token != "" {
			req.Header.Set("Authorization", "token "+token)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for _, tok := range []string{"", "wrong", "tok-12"} {
		for _, c := range [][2]string{{"GET", "/cohort/materials"}, {"PUT", "/cohort/materials"}, {"GET", "/cohort/work.tar"}} {
			if resp := call(c[0], c[1], tok, strings.NewReader("x")); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q = %s", c[0], c[1], tok, resp.Status)
			}
		}
	}

	var snap bytes.Buffer
	tw := tar.NewWriter(&snap)
	for name, content := range map[string]string{"train.ipynb": "nb", "config.cfg": "cfg"} {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(content)), Mode: 0o644})
		tw.Write([]byte(content))
	}
	tw.Close()
	resp := call("PUT", "/cohort/materials", "tok-123", &snap, "X-Cohort-Version", "git-abc")
	var rep materials.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != http.StatusOK || len(rep.Added) != 2 {
		t.Fatalf("PUT materials = %s %+v %v", resp.Status, rep, err)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "work", "config.cfg")); string(b) != "cfg" {
		t.Fatalf("config.cfg = %q", b)
	}
	var got struct{ Version string }
	if resp := call("GET", "/cohort/materials", "tok-123", nil); json.NewDecoder(resp.Body).Decode(&got) != nil || got.Version != "git-abc" {
		t.Fatalf("delivered version %q", got.Version)
	}
	resp = call("GET", "/cohort/work.tar?path=*.cfg", "tok-123", nil)
	tr := tar.NewReader(resp.Body)
	h, err := tr.Next()
	if err != nil || h.Name != "config.cfg" {
		t.Fatalf("work.tar?path=*.cfg: %v, %v", h, err)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("more than config.cfg in the tar: %v", err)
	}
}
