package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/jobs"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/provisioner/local"
	"github.com/cohortdev/cohort/store/sqlite"
)

// Config is everything `cohort serve` can be told. Defaults work on a
// laptop; every field has a flag and an environment variable.
type Config struct {
	Addr       string
	DataDir    string
	PublicURL  string
	JupyterBin string
	LogLevel   string
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

func newServeCmd() *cobra.Command {
	var cfg Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the cohort server (SQLite, local notebooks by default)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			m := &Main{Config: cfg}
			return m.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", envOr("COHORT_ADDR", "127.0.0.1:8080"), "listen address HOST:PORT (env COHORT_ADDR)")
	f.StringVar(&cfg.DataDir, "data-dir", envOr("COHORT_DATA_DIR", defaultDataDir()), "directory for the database and local notebooks (env COHORT_DATA_DIR)")
	f.StringVar(&cfg.PublicURL, "public-url", os.Getenv("COHORT_PUBLIC_URL"), "URL browsers use to reach cohort, e.g. https://cohort.example.org (env COHORT_PUBLIC_URL; default: from each request)")
	f.StringVar(&cfg.JupyterBin, "jupyter", envOr("COHORT_JUPYTER", local.DefaultBin), "notebook server of the local driver (env COHORT_JUPYTER)")
	f.StringVar(&cfg.LogLevel, "log-level", envOr("COHORT_LOG_LEVEL", "info"), "debug, info, warn or error (env COHORT_LOG_LEVEL)")
	return cmd
}

// Main is a running server; end-to-end tests drive it as a process.
type Main struct {
	Config Config
	// Ready, if set, receives the address the server listens on.
	Ready func(addr string)
}

// Run serves until ctx ends, then shuts down in order: stop taking
// requests, let running jobs finish, close the database. Notebooks keep
// running; the next start picks them up.
func (m *Main) Run(ctx context.Context) error {
	log, err := newLogger(m.Config.LogLevel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	dbPath := filepath.Join(m.Config.DataDir, "cohort.db")
	store, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	// River gets a pool of its own with a single connection (see jobs).
	riverDB, err := sql.Open("sqlite", sqlite.DSN(dbPath))
	if err != nil {
		return err
	}
	riverDB.SetMaxOpenConns(1)
	defer riverDB.Close()

	driver, err := local.New(local.Options{Root: filepath.Join(m.Config.DataDir, "sessions"), Bin: m.Config.JupyterBin, Logger: log})
	if err != nil {
		return err
	}
	rec := provisioner.New(provisioner.Options{Store: store, Driver: driver, Logger: log})
	queue, err := jobs.New(ctx, jobs.Options{DB: riverDB, Reconciler: rec, Logger: log})
	if err != nil {
		return err
	}
	server := api.New(api.Options{Store: store, Enqueuer: queue, Driver: driver.Name(), PublicURL: m.Config.PublicURL, Logger: log})

	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Addr, err)
	}
	if err := queue.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	httpServer := &http.Server{Handler: server, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(ln) }()
	log.Info("cohort is serving", "url", "http://"+ln.Addr().String(), "data_dir", m.Config.DataDir, "driver", driver.Name())
	log.Info("to mint an API token, run on this machine: cohort token create --data-dir " + m.Config.DataDir + " --email YOU@EXAMPLE.ORG --role admin")
	if m.Ready != nil {
		m.Ready(ln.Addr().String())
	}

	select {
	case err = <-served:
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Open notebook WebSockets are hijacked connections that Shutdown does
	// not wait for; they end with the process.
	errs := []error{err, httpServer.Shutdown(shutdown), queue.Stop(shutdown)}
	if errors.Is(errs[0], http.ErrServerClosed) {
		errs[0] = nil
	}
	return errors.Join(errs...)
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
