// Command cohort is the whole product in one binary: `cohort serve` runs
// the server; the other subcommands are its command-line client, and
// `cohort token create` mints API tokens directly in the server's store.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cohortdev/cohort"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cohort:", userMessage(err))
		os.Exit(1)
	}
}

// userMessage prints API errors as the server worded them.
func userMessage(err error) string {
	if e, ok := err.(*cohort.Error); ok {
		if e.Field != "" {
			return fmt.Sprintf("%s (%s)", e.Message, e.Field)
		}
		return e.Message
	}
	return err.Error()
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "cohort",
		Short:         "Ready notebook runtimes for every participant of a class",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newTokenCmd(), newLoginCmd(), newLogoutCmd(), newClassCmd(), newSessionCmd(), newJoinCmd(), newAuditCmd(), newSpendCmd(), newVersionCmd())
	root.AddCommand(serverCommands()...)
	return root
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "cohort")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "cohort")
	}
	return "cohort-data"
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
