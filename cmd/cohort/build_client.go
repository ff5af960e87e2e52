//go:build !linux || client

package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// build names this binary in `cohort version`: the client build, for
// every laptop, holds the commands that talk to a server over its API and
// none of the server (no drivers, store or Pulumi).
const build = "client"

func serverCommands() []*cobra.Command {
	return []*cobra.Command{serverOnly("serve", "Run the cohort server (in the Linux server build only)")}
}

func newTokenCreateCmd() *cobra.Command {
	return serverOnly("create", "Mint an API token in the server's store (in the Linux server build only)")
}

// serverOnly stands for a command of the server build, so that typing it
// here says where it is instead of "unknown command".
func serverOnly(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:                use,
		Short:              short,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("%q runs on the server machine, in the Linux server build of cohort (make build); this is the client build", cmd.CommandPath())
		},
	}
}
