package gce

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// command runs the Pulumi CLI as the Automation API's own runner does,
// with one difference: the CLI dies with cohort. An inline program's
// language host lives inside cohort, so an update that outlived cohort
// would wait for a program that is gone while holding the stack's lock.
// Killed instead, it leaves a stale lock and maybe a pending create, which
// Stacks repairs (see repair).
type command struct {
	path    string
	version semver.Version
	running *running
}

// running are the engines at work, by workspace directory.
type running struct {
	mu    sync.Mutex
	procs map[string]map[*os.Process]bool
}

var _ auto.PulumiCommand = command{}

func newCommand(root string) (command, error) {
	cli, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root, SkipVersionCheck: root != ""})
	if err != nil {
		return command{}, err
	}
	path := "pulumi"
	if root != "" {
		path = filepath.Join(root, "bin", "pulumi")
	}
	return command{path: path, version: cli.Version(), running: &running{procs: map[string]map[*os.Process]bool{}}}, nil
}

// kill ends the engines working in dir now, for their stack's lease is
// lost: two interrupts, on which the CLI stops and ends its plugins (the
// provider would otherwise outlive it), and SIGKILL 5 s later.
func (c command) kill(dir string) {
	c.running.mu.Lock()
	defer c.running.mu.Unlock()
	for p := range c.running.procs[dir] {
		p.Signal(os.Interrupt)
		p.Signal(os.Interrupt)
		time.AfterFunc(5*time.Second, func() { p.Kill() }) // a no-op once it has exited
	}
}

func (r *running) add(dir string, p *os.Process) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.procs[dir] == nil {
		r.procs[dir] = map[*os.Process]bool{}
	}
	r.procs[dir][p] = true
}

func (r *running) remove(dir string, p *os.Process) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.procs[dir], p)
	if len(r.procs[dir]) == 0 {
		delete(r.procs, dir)
	}
}

func (c command) Version() semver.Version { return c.version }

func (c command) Run(ctx context.Context, workdir string, stdin io.Reader, out, errOut []io.Writer, env []string, args ...string) (string, string, int, error) {
	if !slices.Contains(args, "--non-interactive") {
		args = append([]string{"--non-interactive"}, args...)
	}
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Dir = workdir
	cmd.Env = append(engineEnv(), env...)
	cmd.Env = append(cmd.Env, "PULUMI_AUTOMATION_API=true")
	if filepath.IsAbs(c.path) { // language hosts and plugins next to the CLI come first
		cmd.Env = append(cmd.Env, "PATH="+filepath.Dir(c.path)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = io.MultiWriter(append(out, &stdout)...)
	cmd.Stderr = io.MultiWriter(append(errOut, &stderr)...)
	cmd.Stdin = stdin
	// Pdeathsig is sent when the thread that started the CLI ends; Go
	// only ends threads of goroutines that locked one, which cohort's
	// engine calls do not.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Cancelled: interrupt, so that the engine finishes what is in flight
	// and writes its state; killed if it takes too long.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Minute
	code := -2
	err := cmd.Start()
	if err == nil {
		c.running.add(workdir, cmd.Process)
		err = cmd.Wait()
		c.running.remove(workdir, cmd.Process)
	}
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err == nil {
		code = 0
	}
	return stdout.String(), stderr.String(), code, err
}

// engineEnv is cohort's environment less its own settings, some of which
// are secrets (COHORT_DATABASE may hold a password, and
// COHORT_OIDC_CLIENT_SECRET is one): the engine and its plugins need none.
func engineEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "COHORT_") })
}
