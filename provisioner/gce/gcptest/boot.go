package gcptest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cohortdev/cohort/agent"
	"github.com/cohortdev/cohort/infra"
)

var nextIP atomic.Int32

// vmIP returns the next loopback address for a VM, whose notebook port
// nobody holds. Test processes of other packages boot VMs on the same
// machine at the same time (go test ./... runs packages in parallel):
// each process has a block of its own (127.P.x.y, P from its pid), and an
// address whose port is taken all the same is skipped.
func vmIP() string {
	for {
		n := nextIP.Add(1)
		ip := fmt.Sprintf("127.%d.%d.%d", 1+os.Getpid()%250, n/250%250, 2+n%250)
		if free(ip, infra.NotebookPort) && free(ip, infra.AgentPort) {
			return ip
		}
	}
}

func free(ip string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err == nil {
		l.Close()
	}
	return err == nil
}

// BootAgents makes each VM's boot do what a session VM's does, on this
// machine: the image's session agent (package agent, the same code) reads
// the instance's metadata from the fake's metadata server, serves Jupyter
// and its control port at a loopback address of its own (the VM's
// "internal IP"), and publishes its progress as guest attributes.
// opts.Home is the directory of the VMs' homes; the other options are the
// agent's. cleanup registers the final halt.
//
// A VM's work folder is HOME/VM/work. A work disk is a folder of the
// fake's, HOME/disks/NAME, which attaching it "mounts" on the VM's work
// folder, as the image's cohort-work.service does: so a participant's
// files follow their disk from VM to VM.
func (f *Fake) BootAgents(opts agent.Options, cleanup func(func())) {
	homes := opts.Home
	f.mu.Lock()
	f.homes = homes
	f.mu.Unlock()
	f.Boot = func(name, metadataURL string) (string, func(), error) {
		opts := opts
		opts.IP = vmIP()
		opts.MetadataURL, opts.Home = metadataURL, filepath.Join(homes, name)
		opts.WorkDir, opts.WorkReady = filepath.Join(opts.Home, "work"), filepath.Join(opts.Home, "work-ready")
		a := agent.New(opts)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.Run(ctx) // a failure is published as a guest attribute
		}()
		var once sync.Once
		halt := func() { once.Do(func() { cancel(); <-done }) }
		cleanup(halt)
		return opts.IP, halt, nil
	}
}

// mount "mounts" a work disk on a VM booted by BootAgents, as
// agent.MountWork does: what the VM's work folder held is hidden, the
// disk's files show there, and the agent is told. f.mu is held.
func (f *Fake) mount(vm, disk string) error {
	if f.homes == "" {
		return nil
	}
	src, work := filepath.Join(f.homes, "disks", disk), filepath.Join(f.homes, vm, "work")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(work), 0o755); err != nil {
		return err
	}
	if fi, err := os.Lstat(work); err == nil && fi.IsDir() {
		if err := os.RemoveAll(work + ".hidden"); err != nil {
			return err
		}
		if err := os.Rename(work, work+".hidden"); err != nil {
			return err
		}
	} else if err == nil {
		os.Remove(work) // an earlier VM of this name's mount
	}
	if err := os.Symlink(src, work); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(f.homes, vm, "work-ready"), nil, 0o644)
}
