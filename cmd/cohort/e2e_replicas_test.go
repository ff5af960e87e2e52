package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/provisioner/gce"
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
	url := pgtest.URL(t)
	database := "COHORT_DATABASE=" + url
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	a := startServer(t, dataDir, database)
	b := startServer(t, dataDir, database)

	teacherToken, adaToken := mintOn(t, url, "teacher@example.org", cohort.RoleInstructor), mintOn(t, url, "ada@example.org", cohort.RoleParticipant)
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

// TestE2ELocalReplicaKilledDuringStartAll: an instructor starts 8 seats
// through replica A, which is killed at once, with notebooks spawned and
// not recorded. Replica B finishes: every seat ready, each with exactly
// one notebook, none left over, code runs, and stop-all ends them all.
func TestE2ELocalReplicaKilledDuringStartAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	a := startServer(t, dataDir, "COHORT_DATABASE="+url)
	b := startServer(t, dataDir, "COHORT_DATABASE="+url)
	teacherToken := mintOn(t, url, "teacher@example.org", cohort.RoleInstructor)
	class, err := client.New(a.url, teacherToken).CreateClass(ctx, map[string]any{"name": "kill during start-all"})
	if err != nil {
		t.Fatal(err)
	}
	var roster []string
	for i := range 8 {
		roster = append(roster, fmt.Sprintf("p%d@example.org", i))
	}
	if _, err := client.New(a.url, teacherToken).AddMembers(ctx, class.ID, roster, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	if r, err := client.New(a.url, teacherToken).StartAll(ctx, class.ID); err != nil || r.Started != 8 {
		t.Fatalf("start-all = %+v, %v", r, err)
	}
	a.kill()

	teacher := client.New(b.url, teacherToken)
	seats, err := teacher.ListSessions(ctx, class.ID)
	if err != nil || len(seats) != 8 {
		t.Fatalf("sessions = %d, %v", len(seats), err)
	}
	for _, s := range seats {
		waitState(t, teacher, s.ID, cohort.StateReady)
	}
	running, err := sessionsOf(t, dataDir).driver(t).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, s := range seats {
		want[s.ID] = true
	}
	if len(running) != 8 {
		t.Fatalf("%d sessions have processes for 8 seats: %v", len(running), running)
	}
	for _, id := range running {
		if !want[id] {
			t.Errorf("processes of %s, which is no seat of the class", id)
		}
	}
	p3 := mintOn(t, url, "p3@example.org", cohort.RoleParticipant)
	mine, _, err := client.New(b.url, p3).StartSession(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := runKernel(t, b.notebook(mine.ID), p3, "print(6*7)"); got != "42\n" {
		t.Fatalf("through replica B the kernel printed %q", got)
	}
	if n, err := teacher.StopAll(ctx, class.ID); err != nil || n != 8 {
		t.Fatalf("stop-all = %d, %v", n, err)
	}
	for _, s := range seats {
		waitState(t, teacher, s.ID, cohort.StateStopped)
		if n := notebookProcs(t, dataDir, s.ID); n != 0 {
			t.Errorf("%s still has processes after stop-all", s.ID)
		}
	}
}

// mintOn mints an API token into the database at url, as an admin would.
func mintOn(t *testing.T, url, email string, role cohort.Role) string {
	t.Helper()
	cmd := exec.Command(binary, "token", "create", "--email", email, "--role", string(role))
	cmd.Env = append(cmd.Environ(), "COHORT_DATABASE="+url)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("token create --database: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestE2EGCEReplicasShareTheShards: two replicas on one Postgres run the
// GCE driver on one state backend, behind a TCP balancer whose address is
// their public URL. An instructor starts 20 seats; the replica running a
// shard update is killed in the middle of it; the other takes the shard
// over when the lease runs out. Every seat is ready with exactly one VM,
// no lock is left, code runs through the balancer, and stop-all leaves
// nothing in the cloud.
func TestE2EGCEReplicasShareTheShards(t *testing.T) {
	t.Parallel()
	fake := startFakeGCE(t)
	fake.Latency = 3 * time.Second
	ctx := context.Background()
	url := pgtest.URL(t)
	shared := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() { // what the replicas left in the shared state, to tell a torn write
			filepath.WalkDir(shared, func(path string, d fs.DirEntry, err error) error {
				if info, ierr := os.Stat(path); err == nil && ierr == nil && !d.IsDir() {
					t.Logf("state: %s %d bytes", strings.TrimPrefix(path, shared), info.Size())
				}
				return nil
			})
		}
	})
	lb := &balancer{}
	public := lb.listen(t)
	env := append(gceEnv(t, fake), "COHORT_DATABASE="+url, "COHORT_PULUMI_STATE=file://"+shared+"/state",
		"COHORT_PULUMI_PASSPHRASE_FILE="+shared+"/passphrase", "COHORT_PUBLIC_URL="+public.url)
	replicas := []*server{startServer(t, t.TempDir(), env...), startServer(t, t.TempDir(), env...)}
	for _, r := range replicas {
		lb.add(listenAddr(t, r))
	}
	teacherToken := mintOn(t, url, "teacher@example.org", cohort.RoleInstructor)
	teacher := client.New(public.url, teacherToken)
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "replicated"})
	if err != nil {
		t.Fatal(err)
	}
	var roster []string
	for i := range 20 {
		roster = append(roster, fmt.Sprintf("p%d@example.org", i))
	}
	if _, err := teacher.AddMembers(ctx, class.ID, roster, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	if r, err := teacher.StartAll(ctx, class.ID); err != nil || r.Started != 20 {
		t.Fatalf("start-all = %+v, %v", r, err)
	}

	// Kill the replica that holds a shard's lease while GCE creates VMs.
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var victim int
	waitFor(t, "an update under way", func() bool {
		var owner string
		err := db.QueryRow(`SELECT lease_owner FROM shards WHERE lease_owner <> '' LIMIT 1`).Scan(&owner)
		// Once creates are under way: a kill as the update began once left
		// the stack's checkpoint empty on the file:// backend, under the
		// full suite's load; not understood yet (the note).
		if err != nil || fake.CreatesInFlight() < 5 {
			return false
		}
		for i, r := range replicas {
			if strings.Contains(owner, fmt.Sprintf("/%d/", r.cmd.Process.Pid)) {
				victim = i
				return true
			}
		}
		return false
	})
	replicas[victim].kill()
	t.Logf("killed replica %d mid-update; %d creates in flight", victim, fake.CreatesInFlight())

	seats, err := teacher.ListSessions(ctx, class.ID)
	if err != nil || len(seats) != 20 {
		t.Fatalf("sessions = %d, %v", len(seats), err)
	}
	for _, s := range seats {
		waitState(t, teacher, s.ID, cohort.StateReady)
	}
	// A replica given another passphrase than the stacks were made with
	// refuses to start, rather than fail every update it takes.
	wrong := filepath.Join(t.TempDir(), "passphrase")
	os.WriteFile(wrong, []byte("another-passphrase\n"), 0o600)
	refusedCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	refused := exec.CommandContext(refusedCtx, binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	refused.Env = append(append(os.Environ(), env...), "COHORT_PULUMI_PASSPHRASE_FILE="+wrong)
	if out, err := refused.CombinedOutput(); err == nil || !strings.Contains(string(out), "the passphrase in "+wrong) {
		t.Fatalf("a replica with another passphrase: %v\n%s", err, out)
	}
	vms := map[string]int{}
	for _, vm := range fake.Instances() {
		vms[vm.Inputs["name"].(string)]++
	}
	if len(vms) != 20 {
		t.Fatalf("%d VMs for 20 ready seats: %v", len(vms), vms)
	}
	for _, s := range seats {
		if n := vms[gce.InstanceName(s.ID)]; n != 1 {
			t.Errorf("seat %s has %d VMs", s.ID, n)
		}
	}
	if locks := stateLocks(filepath.Join(shared, "state")); len(locks) != 0 {
		t.Fatalf("locks left with every seat ready: %v", locks)
	}
	p7 := mintOn(t, url, "p7@example.org", cohort.RoleParticipant)
	participant := client.New(public.url, p7)
	mine, _, err := participant.StartSession(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := runKernel(t, public.notebook(mine.ID), p7, "print(6*7)"); got != "42\n" {
		t.Fatalf("through the balancer the kernel printed %q", got)
	}
	if n, err := teacher.StopAll(ctx, class.ID); err != nil || n != 20 {
		t.Fatalf("stop-all = %d, %v", n, err)
	}
	for _, s := range seats {
		waitState(t, teacher, s.ID, cohort.StateStopped)
	}
	if inv := fake.Leftovers(); len(inv) != 0 {
		t.Fatalf("left in the cloud after stop-all: %d resources", len(inv))
	}
	waitFor(t, "the empty shards to be removed", func() bool {
		var n int
		return db.QueryRow(`SELECT count(*) FROM shards`).Scan(&n) == nil && n == 0
	})
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

// balancer passes each TCP connection to the next replica that accepts
// it, as a load balancer with WebSocket support does: it knows nothing of
// HTTP, and skips a replica that is gone.
type balancer struct {
	mu       sync.Mutex
	backends []string
	next     int
}

func (b *balancer) add(addr string) {
	b.mu.Lock()
	b.backends = append(b.backends, addr)
	b.mu.Unlock()
}

// listen starts the balancer; its server's url is the replicas' public URL.
func (b *balancer) listen(t *testing.T) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.pass(c)
		}
	}()
	return &server{t: t, url: "http://" + ln.Addr().String()}
}

func (b *balancer) pass(c net.Conn) {
	defer c.Close()
	b.mu.Lock()
	order := make([]string, len(b.backends))
	for i := range order {
		order[i] = b.backends[(b.next+i)%len(b.backends)]
	}
	b.next++
	b.mu.Unlock()
	for _, addr := range order {
		up, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue
		}
		defer up.Close()
		go func() { io.Copy(up, c); up.Close() }()
		io.Copy(c, up)
		return
	}
}

// listenAddr is the address a replica listens on, from its log (its url
// is the public one).
func listenAddr(t *testing.T, s *server) string {
	t.Helper()
	log := s.log.String()
	i := strings.Index(log, " addr=")
	if i < 0 {
		t.Fatalf("the replica did not say where it listens:\n%s", log)
	}
	return strings.Fields(log[i+len(" addr="):])[0]
}
