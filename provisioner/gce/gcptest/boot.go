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
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(infra.NotebookPort)))
		if err == nil {
			l.Close()
			return ip
		}
	}
}

// AgentBoot returns a Boot that does what a session VM does at boot, on
// this machine: the image's session agent (package agent, the same code)
// reads the instance's metadata from the fake's metadata server, serves
// Jupyter at a loopback address of its own (the VM's "internal IP"), and
// publishes its progress as guest attributes. opts.Home is the directory
// of the VMs' homes; the other options are the agent's. cleanup registers
// the final halt.
func AgentBoot(opts agent.Options, cleanup func(func())) func(name, metadataURL string) (string, func(), error) {
	homes := opts.Home
	return func(name, metadataURL string) (string, func(), error) {
		opts := opts
		opts.IP = vmIP()
		opts.MetadataURL, opts.Home = metadataURL, filepath.Join(homes, name)
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
