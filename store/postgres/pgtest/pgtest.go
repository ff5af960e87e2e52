// Package pgtest runs a real Postgres server for tests: Debian's
// postgresql, in a temporary directory, listening on a unix socket only,
// started at a package's first use and stopped when its tests end (and
// with the test binary, if that dies). Each test gets a database of its
// own.
//
// Without Postgres installed, tests that need it skip, unless
// COHORT_TEST_POSTGRES=required (as `make test` sets), where they fail.
package pgtest

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// Server is a running Postgres server.
type Server struct {
	dir, socket string
	cmd         *exec.Cmd
	exited      chan struct{}
	log         bytes.Buffer
	databases   atomic.Int64
}

// superuser is the role the tests connect as (trust authentication: the
// socket is in a directory of the test's own).
const superuser = "cohort"

// binDir finds Debian's newest installed Postgres.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("postgres is not installed (apt-get install postgresql)")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises a cluster in a new temporary directory and starts it.
// As root, Postgres runs as the postgres user (it refuses to run as root).
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	removeStale()
	dir, err := os.MkdirTemp("", "cohort-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, socket: filepath.Join(dir, "socket"), exited: make(chan struct{})}
	var cred *syscall.Credential
	if os.Getuid() == 0 {
		if cred, err = postgresUser(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	for _, d := range []string{dir, s.socket} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if cred != nil {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", superuser, "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", s.socket,
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	// The server dies with the test binary, whatever ends it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// removeStale removes the directories of servers that test binaries
// killed outright left behind (their server died with them): older than
// an hour, with no server running in them.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "cohort-pgtest-*"))
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil || time.Since(fi.ModTime()) < time.Hour {
			continue
		}
		if pid, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			if f := bytes.Fields(pid); len(f) > 0 {
				if n, err := strconv.Atoi(string(f[0])); err == nil && syscall.Kill(n, 0) == nil {
					continue // running
				}
			}
		}
		os.RemoveAll(dir)
	}
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, the tests run Postgres as the postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) waitReady(limit time.Duration) error {
	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited while starting:\n%s", s.log.String())
		default:
		}
		if err = db.Ping(); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not answer within %s: %v\n%s", limit, err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL is the address of database name on this server.
func (s *Server) URL(name string) string {
	q := url.Values{"host": {s.socket}, "user": {superuser}, "sslmode": {"disable"}}
	return "postgres:///" + name + "?" + q.Encode()
}

// NewDatabase creates an empty database and returns its URL.
func (s *Server) NewDatabase() (string, error) {
	name := fmt.Sprintf("test_%d", s.databases.Add(1))
	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// Stop shuts the server down (fast: open connections are ended) and
// removes its directory.
func (s *Server) Stop() error {
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	return os.RemoveAll(s.dir)
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// URL returns a new, empty database on the package's server, starting the
// server at first use.
func URL(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() { shared.srv, shared.err = Start() })
	if shared.err != nil {
		if os.Getenv("COHORT_TEST_POSTGRES") == "required" {
			t.Fatalf("Postgres: %v", shared.err)
		}
		t.Skipf("Postgres: %v (COHORT_TEST_POSTGRES=required makes this fail)", shared.err)
	}
	u, err := shared.srv.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Run runs a package's tests, then stops the server if one was started,
// and returns the tests' exit code: call it from TestMain.
func Run(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: stop postgres:", err)
		}
	}
	return code
}
