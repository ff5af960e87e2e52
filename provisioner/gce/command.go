package gce

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	return command{path: path, version: cli.Version()}, nil
}

func (c command) Version() semver.Version { return c.version }

func (c command) Run(ctx context.Context, workdir string, stdin io.Reader, out, errOut []io.Writer, env []string, args ...string) (string, string, int, error) {
	if !slices.Contains(args, "--non-interactive") {
		args = append([]string{"--non-interactive"}, args...)
	}
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Dir = workdir
	cmd.Env = append(os.Environ(), env...)
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
	// and writes its state; killed if it takes too long, or at once if
	// another replica may take the stack over (errLeaseLost).
	cmd.Cancel = func() error {
		if errors.Is(context.Cause(ctx), errLeaseLost) {
			return cmd.Process.Kill()
		}
		return cmd.Process.Signal(os.Interrupt)
	}
	cmd.WaitDelay = 2 * time.Minute
	code := -2
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err == nil {
		code = 0
	}
	return stdout.String(), stderr.String(), code, err
}
