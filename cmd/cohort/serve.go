//go:build linux && !client

package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/auth"
	"github.com/cohortdev/cohort/auth/localissuer"
	"github.com/cohortdev/cohort/cost"
	"github.com/cohortdev/cohort/jobs"
	"github.com/cohortdev/cohort/metrics"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/provisioner/local"
	"github.com/cohortdev/cohort/store/cache"
	"github.com/cohortdev/cohort/store/postgres"
	"github.com/cohortdev/cohort/timeouts"
)

// Config is everything `cohort serve` can be told. Defaults work on a
// laptop; every field has a flag and an environment variable.
type Config struct {
	Addr    string
	DataDir string
	// Database is empty for SQLite in DataDir, or a postgres:// URL.
	Database  string
	PublicURL string
	// NotebookDomain serves session S at {S}.{NotebookDomain}: a wildcard
	// DNS name of its own (default localhost:PORT on a loopback address).
	NotebookDomain string
	// TrustedProxies are the addresses whose X-Forwarded-For is believed.
	TrustedProxies string
	// Prices is a price file over the embedded table (docs/cost.md).
	Prices     string
	JupyterBin string
	LogLevel   string
	// SessionsDir holds the local driver's sessions; SessionUIDs is the
	// range of uids they run as when cohort runs as root ("off": none).
	SessionsDir, SessionUIDs string
	// Sign-in: with no client ID, the embedded local issuer (loopback only).
	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string
	OIDCHostedDomain string
	Admins           string
	// Timeouts: how often deadlines are checked, and who may call the
	// scheduler endpoints (Cloud Scheduler's service account).
	SweepEvery        time.Duration
	SchedulerAccount  string
	SchedulerAudience string
	SchedulerIssuer   string
	// LocalMaterials admits file:// repositories and paths as class
	// materials; by default only with the built-in sign-in (one machine).
	LocalMaterials string
	// SecretKeyFile keeps the key that seals private repositories'
	// tokens (DATA_DIR/secret-key with SQLite if empty; replicas on
	// Postgres must name one file they all read). MaterialsCAFile is a
	// certificate bundle git trusts instead of the system's.
	SecretKeyFile   string
	MaterialsCAFile string
	// ForgetTokens removes the tokens sealed with a key that is lost
	// (checkSecretKey).
	ForgetTokens bool
	// Driver runs notebooks: "local" (this machine) or "gce".
	Driver string
	GCE    GCEConfig
}

// GCEConfig is where and as whom the gce driver runs sessions.
type GCEConfig struct {
	Project, ImageProject, Network, Subnetwork, NetworkTag string
	SessionAccount, SchedulerRegion                        string
	// PulumiState is the state backend (file:// or gs://); PulumiRoot the
	// directory whose bin/pulumi is the CLI (empty: the installed one).
	PulumiState, PulumiRoot string
	// ComputeEndpoint is the Compute Engine API (tests: a fake).
	ComputeEndpoint string
	// SecretsProvider is "passphrase" or a gcpkms:// key for Pulumi;
	// PassphraseFile keeps the passphrase (DATA_DIR/pulumi-passphrase if
	// empty): replicas share one.
	SecretsProvider, PassphraseFile string
	// WorkGB is the size of a participant's work disk; "off" keeps no
	// work disks.
	WorkGB string
}

func newServeCmd() *cobra.Command {
	var cfg Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the cohort server (SQLite, local notebooks by default)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Database = cmp.Or(cfg.Database, os.Getenv("COHORT_DATABASE"))
			m := &Main{Config: cfg}
			return m.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", envOr("COHORT_ADDR", "127.0.0.1:8080"), "listen address HOST:PORT (env COHORT_ADDR)")
	f.StringVar(&cfg.DataDir, "data-dir", envOr("COHORT_DATA_DIR", defaultDataDir()), "directory for the database and local notebooks (env COHORT_DATA_DIR)")
	// No default from the environment: help would print it, password and all.
	f.StringVar(&cfg.Database, "database", "", "a postgres:// URL for an installation of several replicas (env COHORT_DATABASE, best: it may hold a password); default: SQLite in the data directory")
	f.StringVar(&cfg.PublicURL, "public-url", os.Getenv("COHORT_PUBLIC_URL"), "URL browsers use to reach cohort, e.g. https://cohort.example.org (env COHORT_PUBLIC_URL; default: http://ADDR on a loopback address)")
	f.StringVar(&cfg.NotebookDomain, "notebook-domain", os.Getenv("COHORT_NOTEBOOK_DOMAIN"), "domain whose subdomains serve the notebooks, one origin per session, e.g. nb.example.org (wildcard DNS and TLS; env COHORT_NOTEBOOK_DOMAIN; default: localhost:PORT on a loopback address)")
	f.StringVar(&cfg.Prices, "prices", os.Getenv("COHORT_PRICES"), "price file over the embedded list prices: negotiated discounts, other regions or currencies, the local driver's hourly price (env COHORT_PRICES; docs/cost.md)")
	f.StringVar(&cfg.TrustedProxies, "trusted-proxies", os.Getenv("COHORT_TRUSTED_PROXIES"), "comma-separated addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is believed (env COHORT_TRUSTED_PROXIES; default: none)")
	f.StringVar(&cfg.JupyterBin, "jupyter", envOr("COHORT_JUPYTER", local.DefaultBin), "notebook server of the local driver (env COHORT_JUPYTER)")
	f.StringVar(&cfg.SessionsDir, "sessions-dir", os.Getenv("COHORT_SESSIONS_DIR"), "where the local driver keeps sessions' files (env COHORT_SESSIONS_DIR; default: DATA_DIR/sessions, or /var/lib/cohort/sessions as root)")
	f.StringVar(&cfg.SessionUIDs, "session-uids", os.Getenv("COHORT_SESSION_UIDS"), "as root, the uids local sessions run as, one each, FIRST-LAST, or off (env COHORT_SESSION_UIDS; default: "+local.DefaultUIDs().String()+")")
	f.StringVar(&cfg.LogLevel, "log-level", envOr("COHORT_LOG_LEVEL", "info"), "debug, info, warn or error (env COHORT_LOG_LEVEL)")
	f.StringVar(&cfg.OIDCIssuer, "oidc-issuer", envOr("COHORT_OIDC_ISSUER", "https://accounts.google.com"), "OpenID Connect issuer for sign-in (env COHORT_OIDC_ISSUER)")
	f.StringVar(&cfg.OIDCClientID, "oidc-client-id", os.Getenv("COHORT_OIDC_CLIENT_ID"), "OAuth client ID; empty: the built-in local sign-in, loopback only (env COHORT_OIDC_CLIENT_ID)")
	f.StringVar(&cfg.OIDCHostedDomain, "oidc-hosted-domain", os.Getenv("COHORT_OIDC_HOSTED_DOMAIN"), "admit only accounts of this Google Workspace domain (hd claim) (env COHORT_OIDC_HOSTED_DOMAIN)")
	f.StringVar(&cfg.Admins, "admins", os.Getenv("COHORT_ADMINS"), "comma-separated emails that become admins when they sign in (env COHORT_ADMINS)")
	f.DurationVar(&cfg.SweepEvery, "sweep-interval", envDuration("COHORT_SWEEP_INTERVAL", 5*time.Second), "how often session deadlines are checked (env COHORT_SWEEP_INTERVAL)")
	f.StringVar(&cfg.SchedulerAccount, "scheduler-service-account", os.Getenv("COHORT_SCHEDULER_SERVICE_ACCOUNT"), "service account whose OIDC tokens may call /v1/scheduler/... (env COHORT_SCHEDULER_SERVICE_ACCOUNT)")
	f.StringVar(&cfg.SchedulerAudience, "scheduler-audience", os.Getenv("COHORT_SCHEDULER_AUDIENCE"), "audience of those tokens; default: the public URL (env COHORT_SCHEDULER_AUDIENCE)")
	f.StringVar(&cfg.SchedulerIssuer, "scheduler-issuer", envOr("COHORT_SCHEDULER_ISSUER", "https://accounts.google.com"), "issuer of those tokens (env COHORT_SCHEDULER_ISSUER)")
	f.StringVar(&cfg.SecretKeyFile, "secret-key-file", os.Getenv("COHORT_SECRET_KEY_FILE"), "file keeping the key that seals private repositories' tokens, made on first use; replicas share one (env COHORT_SECRET_KEY_FILE; default: DATA_DIR/secret-key with SQLite, none with Postgres)")
	f.BoolVar(&cfg.ForgetTokens, "forget-tokens", false, "start although classes' repository tokens are sealed with another key than --secret-key-file's, removing them (the key they were sealed with is lost)")
	f.StringVar(&cfg.MaterialsCAFile, "materials-ca-file", os.Getenv("COHORT_MATERIALS_CA_FILE"), "certificates (PEM) git trusts instead of the system's when it fetches class materials: a git server with a private CA (env COHORT_MATERIALS_CA_FILE)")
	f.StringVar(&cfg.LocalMaterials, "local-materials", os.Getenv("COHORT_LOCAL_MATERIALS"), "admit git repositories on this machine (file:// or a path) as class materials: yes or no (env COHORT_LOCAL_MATERIALS; default: yes with the built-in sign-in only, since any instructor could read the server's repositories)")
	f.StringVar(&cfg.Driver, "driver", envOr("COHORT_DRIVER", "local"), "where notebooks run: local (this machine) or gce (env COHORT_DRIVER)")
	g := &cfg.GCE
	f.StringVar(&g.Project, "gce-project", os.Getenv("COHORT_GCE_PROJECT"), "Google Cloud project for session VMs (env COHORT_GCE_PROJECT)")
	f.StringVar(&g.ImageProject, "gce-image-project", os.Getenv("COHORT_GCE_IMAGE_PROJECT"), "project of the image families; default: --gce-project (env COHORT_GCE_IMAGE_PROJECT)")
	f.StringVar(&g.Network, "gce-network", os.Getenv("COHORT_GCE_NETWORK"), "VPC network of session VMs (env COHORT_GCE_NETWORK)")
	f.StringVar(&g.Subnetwork, "gce-subnetwork", os.Getenv("COHORT_GCE_SUBNETWORK"), "subnetwork of session VMs (env COHORT_GCE_SUBNETWORK)")
	f.StringVar(&g.NetworkTag, "gce-network-tag", envOr("COHORT_GCE_NETWORK_TAG", "cohort-session"), "tag the firewall rule admitting cohort targets (env COHORT_GCE_NETWORK_TAG)")
	f.StringVar(&g.SessionAccount, "gce-session-account", os.Getenv("COHORT_GCE_SESSION_ACCOUNT"), "service account session VMs run as (env COHORT_GCE_SESSION_ACCOUNT)")
	f.StringVar(&g.SchedulerRegion, "gce-scheduler-region", envOr("COHORT_GCE_SCHEDULER_REGION", "us-central1"), "region of the Cloud Scheduler jobs (env COHORT_GCE_SCHEDULER_REGION)")
	f.StringVar(&g.PulumiState, "pulumi-state", os.Getenv("COHORT_PULUMI_STATE"), "Pulumi state backend, file:// or gs://; default: file://DATA_DIR/pulumi-state (env COHORT_PULUMI_STATE)")
	f.StringVar(&g.ComputeEndpoint, "gce-compute-endpoint", envOr("COHORT_GCE_COMPUTE_ENDPOINT", "https://compute.googleapis.com"), "Compute Engine API, read for the VMs' boot progress (env COHORT_GCE_COMPUTE_ENDPOINT)")
	f.StringVar(&g.SecretsProvider, "pulumi-secrets-provider", envOr("COHORT_PULUMI_SECRETS_PROVIDER", "passphrase"), "what encrypts notebook tokens in the Pulumi state: passphrase (kept in DATA_DIR/pulumi-passphrase) or gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K (env COHORT_PULUMI_SECRETS_PROVIDER)")
	f.StringVar(&g.PassphraseFile, "pulumi-passphrase-file", os.Getenv("COHORT_PULUMI_PASSPHRASE_FILE"), "file keeping the passphrase secrets provider's passphrase, made on first use; replicas share one (env COHORT_PULUMI_PASSPHRASE_FILE; default: DATA_DIR/pulumi-passphrase)")
	f.StringVar(&g.WorkGB, "gce-work-gb", envOr("COHORT_GCE_WORK_GB", "10"), "size in GB of each participant's work disk, kept between their sessions of a class (10-1000), or off (env COHORT_GCE_WORK_GB)")
	f.StringVar(&g.PulumiRoot, "pulumi-root", os.Getenv("COHORT_PULUMI_ROOT"), "directory whose bin/pulumi is the CLI; default: the installed CLI (env COHORT_PULUMI_ROOT)")
	// The client secret comes from the environment only: flags show in ps.
	cfg.OIDCClientSecret = os.Getenv("COHORT_OIDC_CLIENT_SECRET")
	return cmd
}

// Main is a running server; end-to-end tests drive it as a process.
type Main struct {
	Config Config
	// Ready, if set, receives the address the server listens on.
	Ready func(addr string)
	// metrics is what Run counts, served at /metrics.
	metrics *metrics.Metrics
}

// Run serves until ctx ends, then shuts down in order: stop taking
// requests, let running jobs finish, close the database. Notebooks keep
// running; the next start picks them up.
func (m *Main) Run(ctx context.Context) error {
	log, err := newLogger(m.Config.LogLevel)
	if err != nil {
		return err
	}
	// A price file that does not parse refuses the start: metering at zero
	// would hide the spend.
	prices, err := cost.Load(m.Config.Prices)
	if err != nil {
		return fmt.Errorf("--prices: %w", err)
	}
	// Only cohort may enter its data: the database holds every session's
	// notebook token. A directory made earlier (or by hand) is tightened.
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := os.Chmod(m.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	db, err := openDatabase(ctx, m.Config.Database, m.Config.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	// Every part of cohort reads and writes through the one cache, so that
	// a write any of them makes is seen by the others at once; replicas on
	// Postgres tell each other's caches too.
	var notifier *postgres.Notifier
	cacheOpts := cache.Options{}
	if db.kind == jobs.Postgres {
		notifier = postgres.NewNotifier(m.Config.Database, db.river, log)
		cacheOpts.Publish = notifier.Publish
	}
	store := cache.New(db.store, cacheOpts)
	if notifier != nil {
		go notifier.Run(ctx, store.Apply)
	}

	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Addr, err)
	}
	defer ln.Close()
	publicURL, err := m.publicURL(ln.Addr().String())
	if err != nil {
		return err
	}
	signIn, err := m.signIn(publicURL)
	if err != nil {
		return err
	}
	notebookDomain, err := m.notebookDomain(publicURL)
	if err != nil {
		return err
	}

	audience := m.schedulerAudience(publicURL)
	m.metrics = metrics.New()
	var queue *jobs.Queue // made after the driver, which queues its shards' updates on it
	shards := shardQueue(func(ctx context.Context, class, shard string, after time.Duration) error {
		return queue.EnqueueShard(ctx, class, shard, after)
	})
	library, err := m.materials(signIn.local != nil, db.kind, log)
	if err != nil {
		return err
	}
	driver, timing, err := m.driver(log, publicURL, audience, db, shards, library)
	if err != nil {
		return err
	}
	// After the driver's own checks (the Pulumi secrets), which refuse
	// a start before forget-tokens removes anything.
	if err := checkSecretKey(ctx, store, library.KeyID(), m.secretKeyPath(), db.kind == jobs.Postgres, m.Config.ForgetTokens, log); err != nil {
		return err
	}
	// The reconciler reads sessions as they are, whatever replica wrote them.
	rec := provisioner.New(provisioner.Options{Store: store.Fresh(), Driver: driver, Logger: log, Timing: timing, Metrics: m.metrics, Materials: library})
	enqueuer := &lateEnqueuer{}
	sweeper := timeouts.New(timeouts.Options{Store: store, Driver: driver, Enqueuer: enqueuer, Materials: library, Logger: log})
	updates, _ := driver.(jobs.Shards)
	pools := &latePools{} // the API server keeps the warm seats; it is made after the queue
	queue, err = jobs.New(ctx, jobs.Options{DB: db.river, Database: db.kind, Reconciler: rec, Shards: updates, Pools: pools,
		Sweeper: sweeper, SweepEvery: m.Config.SweepEvery, Logger: log})
	if err != nil {
		return err
	}
	enqueuer.q = queue
	m.metrics.CountSessions(db.store.CountSessions)
	m.metrics.QueueDepth(queue.Depth)
	scheduler, err := m.schedulerVerifier(audience)
	if err != nil {
		return err
	}
	runtimes, _ := driver.(cohort.RuntimeChecker)
	claimer, _ := driver.(cohort.Claimer)
	work, _ := driver.(cohort.WorkKeeper)
	// The proxy notes use in memory; this writes it, off the request path.
	tracker := timeouts.NewTracker(store, nil, 30*time.Second, log)
	// It stops after the server (the deferred call), writing the use the
	// last requests brought.
	trackCtx, stopTracking := context.WithCancel(context.WithoutCancel(ctx))
	tracked := make(chan struct{})
	go func() { tracker.Run(trackCtx, time.Second); close(tracked) }()
	defer func() { stopTracking(); <-tracked }()
	server, err := api.New(api.Options{
		Store: store, Enqueuer: queue, Driver: driver.Name(), FilesNote: driver.FilesNote(), Runtimes: runtimes, Claimer: claimer, Prices: prices, Logger: log,
		Materials: library, Work: work,
		PublicURL: publicURL, NotebookDomain: notebookDomain, TrustedProxies: splitList(m.Config.TrustedProxies),
		Auth: signIn.rp, LocalIssuer: signIn.local, LocalIssuerPath: localIssuerPath,
		Admins:         splitList(m.Config.Admins),
		FirstUserAdmin: signIn.local != nil,
		Tracker:        tracker,
		Metrics:        m.metrics,
		Sweeper:        sweeper, Scheduler: scheduler,
	})
	if err != nil {
		return err
	}
	pools.Pools = server
	if err := queue.Start(ctx); err != nil {
		return err
	}
	// Headers and bodies must arrive in time (api bounds bodies per route);
	// idle keep-alive connections are closed, later than Google's load
	// balancer closes its own (600 s): a connection it still reuses must
	// not be gone (cloud.google.com/load-balancing/docs/https#timeouts).
	httpServer := &http.Server{Handler: server, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 620 * time.Second}
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(ln) }()
	log.Info("cohort is serving", "url", publicURL, "addr", ln.Addr().String(), "notebooks", server.NotebookOrigin("ses_*"), "data_dir", m.Config.DataDir, "database", db.kind, "driver", driver.Name())
	if signIn.local != nil {
		// The link is for the person who started cohort: it goes to the
		// terminal (stderr), as Jupyter's token URL does.
		log.Info("sign-in: built-in local issuer, for this machine only; configure --oidc-client-id for Google")
		fmt.Fprintf(os.Stderr, "\n    To sign in, open this link in your browser (it changes each time cohort starts):\n    %s\n\n", signIn.local.SignInLink())
	} else {
		log.Info("sign-in: OpenID Connect", "issuer", signIn.rp.Issuer(), "redirect_uri", publicURL+"/auth/callback")
	}
	where := "--data-dir " + m.Config.DataDir
	if m.Config.Database != "" {
		where = "--database \"$COHORT_DATABASE\""
	}
	log.Info("to mint an API token, run on this machine: cohort token create " + where + " --email YOU@EXAMPLE.ORG --role admin")
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
	// An engine interrupted mid-update may take its command's WaitDelay (2
	// minutes) to finish what it sent to GCE and release the stack's lock.
	// The queue stops taking jobs at once, while requests drain.
	drain, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), 150*time.Second)
	defer cancelDrain()
	stopped := make(chan error, 1)
	go func() { stopped <- queue.Stop(drain) }()
	errs := []error{err, httpServer.Shutdown(shutdown), <-stopped}
	if errors.Is(errs[0], http.ErrServerClosed) {
		errs[0] = nil
	}
	return errors.Join(errs...)
}

const localIssuerPath = "/local-oidc"

// shardQueue queues a shard's update (provisioner/gce).
type shardQueue = func(ctx context.Context, class, shard string, after time.Duration) error

// lateEnqueuer lets the sweeper, made before the queue that runs it, queue
// sessions on it.
type lateEnqueuer struct{ q *jobs.Queue }

func (l *lateEnqueuer) Enqueue(ctx context.Context, id string) error { return l.q.Enqueue(ctx, id) }

// latePools lets the queue, made before the API server that keeps the
// warm seats, run its pool jobs (set before the queue starts).
type latePools struct{ jobs.Pools }

// schedulerAudience is the audience of Cloud Scheduler's tokens: the
// scheduler jobs mint them for it and the verifier expects it, from this
// one value, so the two can never disagree.
func (m *Main) schedulerAudience(publicURL string) string {
	return cmp.Or(strings.TrimRight(m.Config.SchedulerAudience, "/"), publicURL)
}

// schedulerVerifier admits Cloud Scheduler's calls when a service account
// is configured; without one the scheduler endpoints refuse every call.
func (m *Main) schedulerVerifier(audience string) (api.CallerVerifier, error) {
	c := m.Config
	if c.SchedulerAccount == "" {
		return nil, nil
	}
	return auth.NewCallerVerifier(auth.CallerOptions{Issuer: c.SchedulerIssuer, Audience: audience, Email: c.SchedulerAccount}), nil
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type signInSetup struct {
	rp    *auth.RelyingParty
	local *localissuer.Issuer // nil with an external issuer
}

// signIn configures sign-in: the configured OIDC issuer, or the built-in
// local issuer, which admits whoever holds its sign-in link as any email
// and so only ever runs on a loopback address.
func (m *Main) signIn(publicURL string) (signInSetup, error) {
	c := m.Config
	if c.OIDCClientID != "" {
		if c.OIDCClientSecret == "" {
			return signInSetup{}, errors.New("--oidc-client-id is set but COHORT_OIDC_CLIENT_SECRET is empty")
		}
		return signInSetup{rp: auth.New(auth.Options{
			Issuer: c.OIDCIssuer, ClientID: c.OIDCClientID, ClientSecret: c.OIDCClientSecret, HostedDomain: c.OIDCHostedDomain,
		})}, nil
	}
	if !isLoopback(c.Addr) || !isLoopbackURL(publicURL) {
		return signInSetup{}, fmt.Errorf("the built-in sign-in lets its link's holder sign in as any email, so it runs only on a loopback address, "+
			"not on %s (public URL %q): serve on 127.0.0.1:PORT, or configure Google sign-in (--oidc-client-id and COHORT_OIDC_CLIENT_SECRET; see docs/signin.md)", c.Addr, publicURL)
	}
	callbackOK := func(uri string) bool {
		u, err := url.Parse(uri)
		return err == nil && u.Path == "/auth/callback" && isLoopbackURL(uri)
	}
	issuer, err := localissuer.New(localissuer.Options{URL: publicURL + localIssuerPath, RedirectOK: callbackOK,
		AfterLink: "/auth/login", Secure: strings.HasPrefix(publicURL, "https://")})
	if err != nil {
		return signInSetup{}, err
	}
	rp := auth.New(auth.Options{Issuer: issuer.URL(), ClientID: localissuer.ClientID, Endpoints: issuer.Endpoints()})
	return signInSetup{rp: rp, local: issuer}, nil
}

// publicURL returns the app's URL: as configured, or on a loopback
// address http://ADDR.
func (m *Main) publicURL(listenAddr string) (string, error) {
	if u := strings.TrimRight(m.Config.PublicURL, "/"); u != "" {
		return u, nil
	}
	if !isLoopback(listenAddr) {
		return "", fmt.Errorf("--public-url is required when cohort listens on %s: the URL browsers use, e.g. https://cohort.example.org", listenAddr)
	}
	return "http://" + listenAddr, nil
}

// notebookDomain returns the domain whose subdomains serve notebooks: as
// configured, or with a loopback app localhost:PORT, which browsers
// resolve to this machine for every subdomain.
func (m *Main) notebookDomain(publicURL string) (string, error) {
	if d := m.Config.NotebookDomain; d != "" {
		return d, nil
	}
	u, err := url.Parse(publicURL)
	if err != nil || !isLoopbackURL(publicURL) {
		return "", fmt.Errorf("--notebook-domain is required with --public-url %s: each notebook is served on a subdomain of a domain of "+
			"its own (wildcard DNS and TLS), e.g. nb.example.org; see docs/security.md", publicURL)
	}
	if u.Port() == "" {
		return "localhost", nil
	}
	return "localhost:" + u.Port(), nil
}

// splitList splits a comma-separated flag, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// isLoopback reports whether a listen address binds loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	return isLoopback(host)
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
