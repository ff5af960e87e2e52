//go:build linux && !client

package main

import "github.com/spf13/cobra"

// build names this binary in `cohort version`: the server build holds
// `cohort serve` and everything it drives (Linux only).
const build = "server"

func serverCommands() []*cobra.Command { return []*cobra.Command{newServeCmd()} }
