package main

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/store/postgres/pgtest"
)

// TestE2EReplicasOnPostgres: two `cohort serve` replicas on one Postgres
// database, sharing the machine's local sessions. A token minted into the
// database works on both; a session started through one is ready, runs
// code and stops through the other; after the replica that started it is
// killed, the other still serves it.
func TestE2EReplicasOnPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	database := "COHORT_DATABASE=" + pgtest.URL(t)
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	a := startServer(t, dataDir, database)
	b := startServer(t, dataDir, database)

	mint := func(email string, role cohort.Role) string {
		cmd := exec.Command(binary, "token", "create", "--email", email, "--role", string(role))
		cmd.Env = append(cmd.Environ(), database)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("token create --database: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	teacherToken, adaToken := mint("teacher@example.org", cohort.RoleInstructor), mint("ada@example.org", cohort.RoleParticipant)
	class, err := client.New(a.url, teacherToken).CreateClass(ctx, map[string]any{"name": "replicas"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(b.url, teacherToken).AddMembers(ctx, class.ID, []string{"ada@example.org"}, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	s, created, err := client.New(a.url, adaToken).StartSession(ctx, class.ID)
	if err != nil || !created {
		t.Fatalf("start through replica A: %v (created %v)", err, created)
	}
	waitState(t, client.New(b.url, adaToken), s.ID, cohort.StateReady)
	if got := runKernel(t, b.notebook(s.ID), adaToken, "print(6*7)"); got != "42\n" {
		t.Fatalf("through replica B the kernel printed %q", got)
	}
	a.kill()
	if got := runKernel(t, b.notebook(s.ID), adaToken, "print(6*7)"); got != "42\n" {
		t.Fatalf("with replica A gone, the kernel printed %q", got)
	}
	// Reconnecting through B finds the same session.
	again, created, err := client.New(b.url, adaToken).StartSession(ctx, class.ID)
	if err != nil || created || again.ID != s.ID {
		t.Fatalf("reconnect through replica B: %v (created %v, %s)", err, created, again.ID)
	}
	if _, err := client.New(b.url, adaToken).StopSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, client.New(b.url, adaToken), s.ID, cohort.StateStopped)
	if n := notebookProcs(t, dataDir, s.ID); n != 0 {
		t.Fatalf("%d processes of the session survive its stop", n)
	}
}

// TestE2EGCEDriverRunsInOneReplica: until the GCE driver's shards live on
// the queue, a second replica on the same database refuses to run it
// (two would manage the same VMs apart). A replica whose lock went with
// its database connection stops; once the first is killed, the lock goes
// with it and another replica starts.
func TestE2EGCEDriverRunsInOneReplica(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	env := append(gceEnv(t, startFakeGCE(t)), "COHORT_DATABASE="+url)
	first := startServer(t, t.TempDir(), env...)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second := exec.CommandContext(ctx, binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	second.Env = append(os.Environ(), env...)
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another cohort replica on this database runs the GCE driver") {
		t.Fatalf("a second GCE replica on the database: %v\n%s", err, out)
	}
	first.kill()
	third := startServer(t, t.TempDir(), env...)

	// The database ends the third's lock connection (as a restart would).
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- third.cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(third.log.String(), "lost the database connection that holds the GCE driver's lock") {
			t.Fatalf("after its lock went: exit %v\n%s", err, third.log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("cohort ran on without its GCE driver lock:\n%s", third.log)
	}
}

// TestDatabaseURLStaysOutOfHelp: the Postgres URL may hold a password, and
// the docs say to give it in COHORT_DATABASE; help must not print it as
// a flag's default.
func TestDatabaseURLStaysOutOfHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"serve", "--help"}, {"token", "create", "--help"}} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "COHORT_DATABASE=postgres://cohort:s3cret-pw@db.internal/cohort")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--database") {
			t.Fatalf("cohort %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if strings.Contains(string(out), "s3cret-pw") {
			t.Errorf("cohort %s prints the database's password:\n%s", strings.Join(args, " "), out)
		}
	}
}
