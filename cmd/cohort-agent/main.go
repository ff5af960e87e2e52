// Command cohort-agent runs on a session VM (started by systemd, see
// images/): it serves the session's Jupyter with the settings cohort put in
// the instance metadata. See package agent.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cohortdev/cohort/agent"
)

func main() {
	var opts agent.Options
	flag.StringVar(&opts.MetadataURL, "metadata-url", agent.DefaultMetadataURL, "metadata server")
	flag.StringVar(&opts.Jupyter, "jupyter", "/usr/local/bin/jupyter-notebook", "notebook server executable")
	flag.StringVar(&opts.Home, "home", "/home/participant", "the participant's home")
	flag.StringVar(&opts.IP, "ip", "0.0.0.0", "address to serve on")
	flag.StringVar(&opts.HooksDir, "hooks", "/etc/cohort/pre-stop.d", "executables to run before shutdown")
	flag.Parse()
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := agent.New(opts).Run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cohort-agent:", err)
		os.Exit(1)
	}
}
