// Command cohort-agent runs on a session VM (started by systemd, see
// images/): it serves the session's Jupyter with the settings cohort put in
// the instance metadata. With -mount-work it is instead the root service
// that mounts the participant's work disk. See package agent.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"syscall"

	"github.com/cohortdev/cohort/agent"
)

func main() {
	var opts agent.Options
	var mount bool
	var owner string
	flag.StringVar(&opts.MetadataURL, "metadata-url", agent.DefaultMetadataURL, "metadata server")
	flag.StringVar(&opts.Jupyter, "jupyter", "/usr/local/bin/jupyter-notebook", "notebook server executable")
	flag.StringVar(&opts.Home, "home", "/home/participant", "the participant's home")
	flag.StringVar(&opts.WorkDir, "work", agent.DefaultWorkDir, "the folder Jupyter serves, where the work disk is mounted")
	flag.StringVar(&opts.WorkReady, "work-ready", agent.DefaultWorkReady, "file that says the work disk is mounted")
	flag.StringVar(&opts.IP, "ip", "0.0.0.0", "address to serve on")
	flag.StringVar(&opts.HooksDir, "hooks", "/etc/cohort/pre-stop.d", "executables to run before shutdown")
	flag.BoolVar(&mount, "mount-work", false, "as root: mount the work disk on -work for -user, and unmount it at shutdown")
	flag.StringVar(&owner, "user", "participant", "with -mount-work: who owns the work disk")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	var err error
	if mount {
		err = mountWork(ctx, opts, owner, log)
	} else {
		err = agent.New(opts).Run(ctx)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cohort-agent:", err)
		os.Exit(1)
	}
}

func mountWork(ctx context.Context, opts agent.Options, owner string, log *slog.Logger) error {
	u, err := user.Lookup(owner)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return agent.MountWork(ctx, agent.MountOptions{Device: agent.DefaultWorkDevice, Dir: opts.WorkDir, Ready: opts.WorkReady, UID: uid, GID: gid,
		New: agent.New(opts).WorkIsNew, Logger: log})
}
