package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/jupyter"
)

// The proxy section: one notebook reached three ways, measured in one run
// and alternating: directly (Jupyter on a TCP port, as a browser next to
// it would), through configurable-http-proxy (JupyterHub's proxy, in front
// of that same Jupyter), and through cohort (a session of the local
// driver, on its own origin, Jupyter on a unix socket behind it).

// target is one way to reach a notebook.
type target struct {
	name   string
	base   string // scheme://host:port to connect to
	host   string // Host header, if not base's
	header http.Header
}

func (t target) request(method, path string) *http.Request {
	req, _ := http.NewRequest(method, t.base+path, nil)
	req.Header = t.header.Clone()
	if t.host != "" {
		req.Host = t.host
	}
	return req
}

// wrkArgs are the target's headers as wrk flags.
func (t target) wrkArgs() []string {
	var args []string
	for k, vs := range t.header {
		for _, v := range vs {
			args = append(args, "-H", k+": "+v)
		}
	}
	if t.host != "" {
		args = append(args, "-H", "Host: "+t.host)
	}
	return args
}

// proxyBench sets the three up and measures them.
func proxyBench(bin string) error {
	for _, tool := range []string{"wrk", chpBin, jupyterBin} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the proxy section needs %s (make bench-deps installs it)", tool)
		}
	}
	dir, err := os.MkdirTemp("", "cohort-bench-proxy")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	targets, stop, err := startTargets(ctx, bin, dir)
	defer stop()
	if err != nil {
		return err
	}
	fmt.Printf("\nNotebook proxy: direct, configurable-http-proxy (chp) and cohort, alternating, %s\n", time.Now().UTC().Format(time.RFC3339))
	if err := httpTable(targets); err != nil {
		return err
	}
	if err := kernelTable(ctx, targets); err != nil {
		return err
	}
	for _, t := range targets {
		if t.name == "cohort" {
			return apiTable(ctx, t)
		}
	}
	return nil
}

// apiTable loads GET /v1/sessions/ID, what a participant's page and the
// CLI ask most, on the real server.
func apiTable(ctx context.Context, cohortTarget target) error {
	c := client.New(cohortTarget.base, strings.TrimPrefix(cohortTarget.header.Get("Authorization"), "Bearer "))
	list, err := c.ListSessions(ctx, "")
	if err != nil || len(list) == 0 {
		return fmt.Errorf("the bench session: %v", err)
	}
	fmt.Printf("\nAPI, wrk 2 threads, 50 connections, 8 s each:\n\n| request | round | req/s | p50 | p99 |\n| --- | --- | --- | --- | --- |\n")
	for round := 1; round <= 2; round++ {
		r, err := runWrk(cohortTarget.base+"/v1/sessions/"+list[0].ID, 8*time.Second, "-H", "Authorization: Bearer "+c.Token)
		if err != nil {
			return err
		}
		fmt.Printf("| GET /v1/sessions/ID | %d | %.0f | %s | %s |\n", round, r.rps, ms(r.p50), ms(r.p99))
	}
	return nil
}

const (
	jupyterBin = "/usr/bin/jupyter-notebook"
	chpBin     = "configurable-http-proxy"
)

// startTargets starts cohort with one ready session, a direct Jupyter and
// configurable-http-proxy in front of it; stop ends them all.
func startTargets(ctx context.Context, bin, dir string) ([]target, func(), error) {
	var procs []*exec.Cmd
	stop := func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
		stopNotebooks(filepath.Join(dir, "cohort", "sessions"))
	}
	if err := os.MkdirAll(filepath.Join(dir, "cohort"), 0o700); err != nil {
		return nil, stop, err
	}
	srv, url, err := serve(bin, filepath.Join(dir, "cohort"))
	if err != nil {
		return nil, stop, err
	}
	procs = append(procs, srv)
	tok, err := mint(bin, filepath.Join(dir, "cohort"), "bench@bench.example", cohort.RoleInstructor)
	if err != nil {
		return nil, stop, err
	}
	c := client.New(url, tok)
	class, err := c.CreateClass(ctx, map[string]any{"name": "proxy bench"})
	if err != nil {
		return nil, stop, err
	}
	if _, err := startAndWait(ctx, c, class.ID); err != nil {
		return nil, stop, err
	}
	sessions, err := c.ListSessions(ctx, class.ID)
	if err != nil || len(sessions) != 1 {
		return nil, stop, fmt.Errorf("the bench session: %v", err)
	}
	origin := strings.TrimSuffix(sessions[0].URL, "/tree")

	nbToken := cohort.NewSecret("")
	port, chpPort := freePort(), freePort()
	work := filepath.Join(dir, "direct")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, stop, err
	}
	direct := exec.Command(jupyterBin, "--no-browser", "--allow-root", "--ip=127.0.0.1", fmt.Sprintf("--port=%d", port),
		"--NotebookApp.token="+nbToken, "--notebook-dir="+work)
	direct.Env = append(os.Environ(), "JUPYTER_RUNTIME_DIR="+filepath.Join(dir, "runtime"), "JUPYTER_CONFIG_DIR="+filepath.Join(dir, "config"))
	chp := exec.Command(chpBin, "--ip", "127.0.0.1", "--port", fmt.Sprint(chpPort), "--api-port", fmt.Sprint(freePort()),
		"--default-target", fmt.Sprintf("http://127.0.0.1:%d", port), "--log-level", "error")
	chp.Env = append(os.Environ(), "NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs") // Debian's Node packages
	for _, p := range []*exec.Cmd{direct, chp} {
		if err := p.Start(); err != nil {
			return nil, stop, fmt.Errorf("start %s: %w", p.Path, err)
		}
		procs = append(procs, p)
	}
	jupyterAuth := http.Header{"Authorization": {"token " + nbToken}}
	directURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	// cohort reaches a GCE session's notebook over TCP, not a unix socket:
	// its transport on that path, against a plain Go proxy, in front of the
	// same Jupyter.
	plain, plainStop := goProxy(directURL, &http.Transport{})
	tcp, tcpStop := goProxy(directURL, jupyter.NewTransport())
	stopAll := stop
	stop = func() { plainStop(); tcpStop(); stopAll() }
	targets := []target{
		{name: "direct", base: directURL, header: jupyterAuth},
		{name: "chp", base: fmt.Sprintf("http://127.0.0.1:%d", chpPort), header: jupyterAuth},
		{name: "cohort", base: url, host: strings.TrimPrefix(origin, "http://"), header: http.Header{"Authorization": {"Bearer " + tok}}},
		{name: "go proxy, TCP", base: plain, header: jupyterAuth},
		{name: "cohort's transport, TCP", base: tcp, header: jupyterAuth},
	}
	for _, t := range targets {
		if err := waitAnswers(t); err != nil {
			return nil, stop, err
		}
	}
	return targets, stop, nil
}

// waitAnswers waits until a target serves /api/status.
func waitAnswers(t target) error {
	hc := client.HTTPClient()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := hc.Do(t.request("GET", "/api/status"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer /api/status: %v", t.name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// goProxy serves a reverse proxy to target with the given transport on a
// loopback port; stop ends it.
func goProxy(target string, transport *http.Transport) (string, func()) {
	u, _ := neturl.Parse(target)
	rp := &httputil.ReverseProxy{Transport: transport, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
	}, ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		w.WriteHeader(http.StatusBadGateway) // wrk's connections cut at the end of a run: not worth a line
	}}
	srv := httptest.NewServer(rp)
	return srv.URL, srv.Close
}
