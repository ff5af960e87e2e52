package gcptest

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cohortdev/cohort/agent"
)

var nextIP atomic.Int32

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
		n := nextIP.Add(1)
		opts := opts
		opts.IP = fmt.Sprintf("127.0.%d.%d", 10+n/200, 2+n%200)
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
