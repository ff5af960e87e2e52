// Package agent is the session agent that runs on every session VM. It
// reads the settings cohort put in the instance's metadata (the contract
// of infra: token, base path, port), serves Jupyter with them through the
// same configuration code as the local driver (package jupyter), tells the
// metadata server when the notebook is ready (a guest attribute cohort can
// read while the VM boots), and on shutdown runs the image's pre-stop hooks
// and stops Jupyter cleanly. Kernel activity needs no report: cohort reads
// it from Jupyter at the VM's internal address.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cohortdev/cohort/infra"
	"github.com/cohortdev/cohort/jupyter"
)

// DefaultMetadataURL is the GCE metadata server.
const DefaultMetadataURL = "http://metadata.google.internal/computeMetadata/v1"

// Options configure an Agent.
type Options struct {
	// MetadataURL is the metadata server's base URL; DefaultMetadataURL if
	// empty (tests point it at a fake).
	MetadataURL string
	// Jupyter is the notebook server executable.
	Jupyter string
	// Home holds the participant's files (work/) and Jupyter's config.
	Home string
	// IP is the address Jupyter binds: the VM's internal address, or
	// 0.0.0.0 (the firewall admits cohort only).
	IP string
	// HooksDir holds executables run, in name order, before shutdown.
	HooksDir string
	// WorkDir is the folder Jupyter serves (Home/work if empty). When the
	// metadata says a work disk comes, Jupyter starts once WorkReady
	// exists (MountWork writes it), waiting at most WorkWait (5 minutes
	// if zero); with no WorkReady it does not wait.
	WorkDir, WorkReady string
	WorkWait           time.Duration
	// ControlPort is where cohort's control plane calls the agent
	// (control.go); infra.AgentPort if zero.
	ControlPort int
	Logger      *slog.Logger
}

// Agent serves one session's notebook on its VM.
type Agent struct {
	opts Options
	http *http.Client
	log  *slog.Logger
}

// New returns an Agent with defaults filled in.
func New(opts Options) *Agent {
	if opts.MetadataURL == "" {
		opts.MetadataURL = DefaultMetadataURL
	}
	if opts.Jupyter == "" {
		opts.Jupyter = "/usr/bin/jupyter-notebook"
	}
	if opts.IP == "" {
		opts.IP = "0.0.0.0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.WorkDir == "" {
		opts.WorkDir = filepath.Join(opts.Home, "work")
	}
	if opts.WorkWait == 0 {
		opts.WorkWait = 5 * time.Minute
	}
	if opts.ControlPort == 0 {
		opts.ControlPort = infra.AgentPort
	}
	return &Agent{opts: opts, http: jupyter.NewClient(10 * time.Second), log: opts.Logger}
}

// metadata reads one instance attribute.
func (a *Agent) metadata(ctx context.Context, key string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.opts.MetadataURL+"/instance/attributes/"+key, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := a.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("metadata %s: %w", key, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("metadata %s: %s", key, resp.Status)
	}
	return string(b), nil
}

// setGuestAttribute publishes a value cohort can read from outside the VM.
func (a *Agent) setGuestAttribute(ctx context.Context, key, value string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.opts.MetadataURL+"/instance/guest-attributes/cohort/"+key, strings.NewReader(value))
	if err != nil {
		return err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("guest attribute %s: %w", key, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("guest attribute %s: %s", key, resp.Status)
	}
	return nil
}

// WorkIsNew says whether the metadata says the session made its work
// disk (infra.MetaWorkNew), for MountOptions.New.
func (a *Agent) WorkIsNew(ctx context.Context) bool {
	v, err := a.metadata(ctx, infra.MetaWorkNew)
	return err == nil && v == "true"
}

// Settings reads the session's notebook settings from the metadata.
func (a *Agent) Settings(ctx context.Context) (jupyter.Settings, error) {
	get := map[string]string{}
	for _, k := range []string{infra.MetaSessionID, infra.MetaToken, infra.MetaBasePath, infra.MetaPort} {
		v, err := a.metadata(ctx, k)
		if err != nil {
			return jupyter.Settings{}, err
		}
		get[k] = v
	}
	port, err := strconv.Atoi(get[infra.MetaPort])
	if err != nil || port <= 0 {
		return jupyter.Settings{}, fmt.Errorf("metadata %s = %q is not a port", infra.MetaPort, get[infra.MetaPort])
	}
	if get[infra.MetaToken] == "" || !strings.HasPrefix(get[infra.MetaBasePath], "/") {
		return jupyter.Settings{}, errors.New("metadata lacks the notebook token or base path")
	}
	return jupyter.Settings{
		Port: port, IP: a.opts.IP, BasePath: get[infra.MetaBasePath], Token: get[infra.MetaToken],
		NotebookDir: a.opts.WorkDir, ConfigDir: filepath.Join(a.opts.Home, ".cohort", "jupyter"),
	}, nil
}

// Guest attributes the agent publishes under cohort/: State is
// "starting", then "ready", or "failed" with Error saying why; cohort reads
// them while the notebook does not answer yet, so a participant sees the
// boot's progress, and a failed start at once rather than at the timeout.
const (
	GuestState = "state"
	GuestError = "error"
)

// Run serves the notebook until ctx ends (the VM shuts down), then runs
// the pre-stop hooks and stops Jupyter. If the notebook cannot be served,
// it publishes why before it returns.
func (a *Agent) Run(ctx context.Context) error {
	err := a.run(ctx)
	if err != nil && ctx.Err() == nil {
		ctx := context.WithoutCancel(ctx)
		msg := err.Error()
		if len(msg) > 500 {
			msg = msg[:500]
		}
		a.setGuestAttribute(ctx, GuestError, msg)
		a.setGuestAttribute(ctx, GuestState, "failed")
	}
	return err
}

func (a *Agent) run(ctx context.Context) error {
	s, err := a.Settings(ctx)
	if err != nil {
		return err
	}
	if a.opts.WorkReady != "" {
		if dev, err := a.metadata(ctx, infra.MetaWorkDevice); err == nil && dev != "" {
			a.setGuestAttribute(ctx, GuestState, "starting")
			if err := waitForWork(ctx, a.opts.WorkReady, a.opts.WorkWait); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(s.NotebookDir, 0o755); err != nil {
		return err
	}
	if err := jupyter.WriteConfig(s); err != nil {
		return fmt.Errorf("write notebook config: %w", err)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(s.IP, strconv.Itoa(a.opts.ControlPort)))
	if err != nil {
		return fmt.Errorf("serve the agent's control port: %w", err)
	}
	control := &http.Server{Handler: a.control(s), ReadHeaderTimeout: 10 * time.Second}
	go control.Serve(lis)
	defer control.Close()
	cmd := exec.Command(a.opts.Jupyter, jupyter.Args(s)...)
	cmd.Dir = s.NotebookDir
	cmd.Env = append(os.Environ(), jupyter.Env(s)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", a.opts.Jupyter, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	a.setGuestAttribute(ctx, GuestState, "starting")
	if err := a.waitReady(ctx, s, exited); err != nil {
		a.stop(cmd, exited)
		return err
	}
	if err := a.setGuestAttribute(ctx, GuestState, "ready"); err != nil {
		a.log.Warn("publish readiness", "error", err)
	}
	a.log.Info("notebook ready", "port", s.Port, "base_path", s.BasePath)
	select {
	case err := <-exited:
		return fmt.Errorf("the notebook server exited: %v", err)
	case <-ctx.Done():
	}
	a.runHooks()
	a.stop(cmd, exited)
	return nil
}

func (a *Agent) waitReady(ctx context.Context, s jupyter.Settings, exited chan error) error {
	addr := "http://127.0.0.1:" + strconv.Itoa(s.Port)
	if s.IP != "0.0.0.0" {
		addr = "http://" + s.IP + ":" + strconv.Itoa(s.Port)
	}
	for {
		if _, err := jupyter.GetStatus(ctx, a.http, addr, s.BasePath, s.Token); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("the notebook server exited while starting: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runHooks runs the image's pre-stop hooks (say, copying the
// participant's work somewhere durable), each with a time limit.
func (a *Agent) runHooks() {
	hooks, _ := filepath.Glob(filepath.Join(a.opts.HooksDir, "*"))
	sort.Strings(hooks)
	for _, h := range hooks {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, h).CombinedOutput()
		cancel()
		a.log.Info("pre-stop hook", "hook", h, "error", err, "output", strings.TrimSpace(string(out)))
	}
}

// stop ends Jupyter: SIGTERM (it shuts its kernels down), then SIGKILL of
// the whole process group after 10 s.
func (a *Agent) stop(cmd *exec.Cmd, exited chan error) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // kernels left in the group
}
