package gcptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/cohortdev/cohort/infra"
	"github.com/cohortdev/cohort/jupyter"
)

var nextIP atomic.Int32

// JupyterBoot returns a Boot that does what a session VM does at boot, on
// this machine: it serves Jupyter with the settings of the instance's
// metadata, at the notebook port of a loopback address of its own (its
// "internal IP"). Files go under dir; cleanup registers the final halt.
func JupyterBoot(dir string, cleanup func(func())) func(string, map[string]any) (string, func(), error) {
	return func(name string, meta map[string]any) (string, func(), error) {
		n := nextIP.Add(1)
		ip := fmt.Sprintf("127.0.%d.%d", 10+n/200, 2+n%200)
		port, err := strconv.Atoi(fmt.Sprint(meta[infra.MetaPort]))
		if err != nil {
			return "", nil, fmt.Errorf("metadata %s: %w", infra.MetaPort, err)
		}
		home := filepath.Join(dir, name)
		s := jupyter.Settings{Port: port, IP: ip, BasePath: fmt.Sprint(meta[infra.MetaBasePath]), Token: fmt.Sprint(meta[infra.MetaToken]),
			NotebookDir: filepath.Join(home, "work"), ConfigDir: filepath.Join(home, "jupyter")}
		if err := os.MkdirAll(s.NotebookDir, 0o700); err != nil {
			return "", nil, err
		}
		if err := jupyter.WriteConfig(s); err != nil {
			return "", nil, err
		}
		cmd := exec.Command("/usr/bin/jupyter-notebook", jupyter.Args(s)...)
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + home}, jupyter.Env(s)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return "", nil, err
		}
		var halted atomic.Bool
		halt := func() {
			if halted.CompareAndSwap(false, true) {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				cmd.Wait()
			}
		}
		cleanup(halt)
		return ip, halt, nil
	}
}
