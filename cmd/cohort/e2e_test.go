package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/provisioner/local"
	"github.com/cohortdev/cohort/provisioner/local/localtest"
	"github.com/cohortdev/cohort/store/postgres/pgtest"
	"github.com/cohortdev/cohort/store/sqlite"
)

// binary is the cohort command built once for all end-to-end tests, which
// run it as a separate process so that they can kill it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cohort-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "cohort")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cohort:", err)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a `cohort serve` process.
type server struct {
	t       testing.TB
	dataDir string
	cmd     *exec.Cmd
	url     string
	log     *syncBuffer
	link    chan string // the built-in sign-in link it printed
}

// signInLink returns the sign-in link the server printed at start.
func (s *server) signInLink() string {
	s.t.Helper()
	select {
	case l := <-s.link:
		s.link <- l
		return l
	case <-time.After(30 * time.Second):
		s.t.Fatalf("the server printed no sign-in link:\n%s", s.log)
		return ""
	}
}

// notebook returns the origin of a session's notebook (the server's
// default notebook domain, localhost:PORT).
func (s *server) notebook(sessionID string) string {
	return "http://" + strings.ReplaceAll(sessionID, "_", "-") + ".localhost:" + s.url[strings.LastIndex(s.url, ":")+1:]
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs `cohort serve` on a free port over dataDir and waits
// until it listens. Extra environment (e.g. COHORT_JUPYTER) may be given.
func startServer(t testing.TB, dataDir string, env ...string) *server {
	t.Helper()
	s := &server{t: t, dataDir: dataDir, log: &syncBuffer{}, link: make(chan string, 1)}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "debug"}, sessionsOf(t, dataDir).args()...)
	s.cmd = exec.Command(binary, args...)
	s.cmd.Env = append(os.Environ(), env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.log, line)
			if i := strings.Index(line, "url=http://"); i >= 0 && strings.Contains(line, "cohort is serving") {
				found <- strings.Fields(line[i+4:])[0]
			}
			if l := strings.TrimSpace(line); strings.HasPrefix(l, "http") && strings.Contains(l, "/local-oidc/link?key=") {
				s.link <- l
			}
		}
	}()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server log:\n%s", s.log)
		}
	})
	select {
	case s.url = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start:\n%s", s.log)
	}
	return s
}

// kill ends the server at once, as a crash would.
func (s *server) kill() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
	}
}

// token mints an API token with the CLI, as an admin would.
func token(t testing.TB, dataDir, email string, role cohort.Role) string {
	t.Helper()
	out, err := exec.Command(binary, "token", "create", "--data-dir", dataDir, "--email", email, "--role", string(role)).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// localSessions is where the servers a test starts over one data dir keep
// their local sessions, and as root the uids those run as: the same for
// every server of the test (a restart adopts the notebooks), apart from
// every other test's.
type localSessions struct {
	dir  string
	uids local.UIDRange
}

var sessionsByDataDir sync.Map // data dir -> localSessions

func sessionsOf(t testing.TB, dataDir string) localSessions {
	if v, ok := sessionsByDataDir.Load(dataDir); ok {
		return v.(localSessions)
	}
	ls := localSessions{dir: localtest.Root(t)}
	if os.Geteuid() == 0 {
		ls.uids = localtest.UIDs(t, 16)
	}
	sessionsByDataDir.Store(dataDir, ls)
	return ls
}

// args are the server's flags for these sessions.
func (ls localSessions) args() []string {
	uids := "off"
	if !ls.uids.IsZero() {
		uids = ls.uids.String()
	}
	return []string{"--sessions-dir", ls.dir, "--session-uids", uids}
}

// driver is a local driver over the same sessions, to look at or stop
// their processes.
func (ls localSessions) driver(t testing.TB) *local.Driver {
	d, err := local.New(local.Options{Root: ls.dir, UIDs: ls.uids})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// cleanupNotebooks stops whatever notebook processes a test left behind
// under dataDir.
func cleanupNotebooks(t testing.TB, dataDir string) {
	ls := sessionsOf(t, dataDir)
	t.Cleanup(func() {
		d := ls.driver(t)
		ids, _ := d.List(context.Background())
		for _, id := range ids {
			d.Stop(context.Background(), id)
		}
	})
}

// notebookProcs reports whether a session has live processes (1) or not (0).
func notebookProcs(t testing.TB, dataDir, sessionID string) int {
	t.Helper()
	ids, err := sessionsOf(t, dataDir).driver(t).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, id := range ids {
		if id == sessionID {
			n++
		}
	}
	return n
}

// waitState follows the session's events until it reaches want (or ends).
func waitState(t testing.TB, c *client.Client, id string, want cohort.SessionState) *client.Session {
	t.Helper()
	// Generous: the whole suite runs at once on two cores, and a GCE start
	// runs the Pulumi engine several times.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		s, err := c.GetSession(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.State == want {
			return s
		}
		if !s.State.Active() {
			t.Fatalf("session %s is %s (%s), want %s", id, s.State, s.Reason, want)
		}
		err = c.FollowEvents(ctx, id, 0, func(e cohort.Event) bool { return e.State != want })
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
	}
}

func TestE2ENotebookRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	srv := startServer(t, dataDir)
	teacher := client.New(srv.url, token(t, dataDir, "teacher@example.com", cohort.RoleInstructor))
	alice := client.New(srv.url, token(t, dataDir, "alice@example.com", cohort.RoleParticipant))

	class, err := teacher.CreateClass(ctx, map[string]any{"name": "spaCy NER", "policy": map[string]any{"seats": 2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := alice.StartSession(ctx, class.ID); cohort.ErrorCode(err) != cohort.ENOTFOUND {
		t.Fatalf("start before enrollment = %v, want not found", err)
	}
	if _, err := teacher.AddMembers(ctx, class.ID, []string{"alice@example.com"}, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	s, created, err := alice.StartSession(ctx, class.ID)
	if err != nil || !created {
		t.Fatalf("start = %v, created %v", err, created)
	}
	ready := waitState(t, alice, s.ID, cohort.StateReady)
	t.Logf("local session ready in %s", time.Since(started).Round(time.Millisecond))
	if ready.URL != srv.notebook(s.ID)+"/tree" {
		t.Fatalf("ready session URL %q, want its own origin %s", ready.URL, srv.notebook(s.ID))
	}
	// A second start reconnects to the same session.
	if again, created, err := alice.StartSession(ctx, class.ID); err != nil || created || again.ID != s.ID {
		t.Fatalf("reconnect = %v, created %v, id %s", err, created, again.ID)
	}

	out := runKernel(t, srv.notebook(s.ID), alice.Token, "print(6*7)")
	if out != "42\n" {
		t.Fatalf("kernel printed %q, want 42", out)
	}

	if _, err := alice.StopSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	stopped := waitState(t, alice, s.ID, cohort.StateStopped)
	if stopped.Reason != "stopped by alice@example.com" || stopped.EndedAt == nil {
		t.Fatalf("stopped session = %+v", stopped)
	}
	if n := notebookProcs(t, dataDir, s.ID); n != 0 {
		t.Fatalf("%d processes of the session survive its stop", n)
	}
	resp, err := client.HTTPClient().Get(srv.notebook(s.ID) + "/api/status")
	if err == nil {
		resp.Body.Close()
	}
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("proxy without credentials after stop = %v %v", resp.Status, err)
	}
}

// runKernel creates a kernel through the proxy at a notebook origin, runs
// code on it over the kernel WebSocket, and returns what it printed.
func runKernel(t *testing.T, notebook, token, code string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	auth := http.Header{"Authorization": {"Bearer " + token}}
	req, _ := http.NewRequestWithContext(ctx, "POST", notebook+"/api/kernels", strings.NewReader(`{"name": "python3"}`))
	req.Header = auth.Clone()
	resp, err := client.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var kernel struct{ ID string }
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &kernel) != nil {
		t.Fatalf("create kernel = %s %s", resp.Status, body)
	}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(notebook, "http")+"/api/kernels/"+kernel.ID+"/channels",
		&websocket.DialOptions{HTTPHeader: auth, HTTPClient: client.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 22)
	msgID := cohort.NewID("msg")
	execute := map[string]any{
		"header": map[string]any{"msg_id": msgID, "username": "e2e", "session": cohort.NewID("e2e"),
			"msg_type": "execute_request", "version": "5.3", "date": time.Now().UTC().Format(time.RFC3339)},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": code, "silent": false, "store_history": false,
			"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true},
	}
	b, _ := json.Marshal(execute)
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	var printed strings.Builder
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("kernel channel: %v (printed so far %q)", err, printed.String())
		}
		var msg struct {
			Channel string
			Header  struct {
				MsgType string `json:"msg_type"`
			}
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content struct {
				Text           string
				ExecutionState string `json:"execution_state"`
			}
		}
		if err := json.Unmarshal(data, &msg); err != nil || msg.ParentHeader.MsgID != msgID {
			continue
		}
		switch msg.Header.MsgType {
		case "stream":
			printed.WriteString(msg.Content.Text)
		case "status":
			if msg.Content.ExecutionState == "idle" {
				return printed.String()
			}
		}
	}
}

func TestE2ERestartWhileProvisioning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	// A notebook server that takes 3 seconds to begin, so that cohort can be
	// killed while the session provisions.
	// Where session uids can run it (t.TempDir is root's alone).
	slow := filepath.Join(localtest.Root(t), "slow-jupyter")
	script := "#!/bin/sh\nsleep 3\nexec " + local.DefaultBin + " \"$@\"\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dataDir, "COHORT_JUPYTER="+slow)
	tok := token(t, dataDir, "alice@example.com", cohort.RoleInstructor)
	alice := client.New(srv.url, tok)
	class, err := alice.CreateClass(ctx, map[string]any{"name": "restart"})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := alice.StartSession(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, s.ID, cohort.StateProvisioning)
	// The state is recorded before the process starts: kill once it runs.
	// (The script sleeps 3 s before Jupyter even begins.)
	waitFor(t, "the notebook process", func() bool { return notebookProcs(t, dataDir, s.ID) > 0 })
	srv.kill()

	srv = startServer(t, dataDir, "COHORT_JUPYTER="+slow)
	alice = client.New(srv.url, tok)
	ready := waitState(t, alice, s.ID, cohort.StateReady)
	if ready.ID != s.ID {
		t.Fatalf("ready session %s, want %s", ready.ID, s.ID)
	}
	// Exactly one notebook server: the one started before the crash was
	// adopted, not duplicated.
	out, err := exec.Command("pgrep", "-f", "--", "jupyter-notebook --no-browser").Output()
	if err != nil {
		t.Fatalf("pgrep: %v", err)
	}
	servers := 0
	uids := sessionsOf(t, dataDir).uids
	for _, pid := range strings.Fields(string(out)) {
		if uids.IsZero() { // not root: a session's processes carry its ID
			env, _ := os.ReadFile("/proc/" + pid + "/environ")
			if bytes.Contains(env, []byte("COHORT_SESSION_ID="+s.ID)) {
				servers++
			}
			continue
		}
		// Isolated: the test's one session is the one uid of its range
		// that runs anything.
		status, _ := os.ReadFile("/proc/" + pid + "/status")
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
				if uid, err := strconv.ParseUint(f[1], 10, 32); err == nil && uids.Contains(uint32(uid)) {
					servers++
				}
			}
		}
	}
	if servers != 1 {
		t.Fatalf("%d notebook servers run for the session after the restart, want 1", servers)
	}
	if got := runKernel(t, srv.notebook(s.ID), tok, "print('after restart')"); got != "after restart\n" {
		t.Fatalf("kernel printed %q", got)
	}
	if _, err := alice.StopSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, s.ID, cohort.StateStopped)
	if n := notebookProcs(t, dataDir, s.ID); n != 0 {
		t.Fatalf("%d processes left after stop", n)
	}
}

func TestE2EOrphanIsStoppedOnStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	srv := startServer(t, dataDir)
	tok := token(t, dataDir, "alice@example.com", cohort.RoleInstructor)
	alice := client.New(srv.url, tok)
	class, err := alice.CreateClass(ctx, map[string]any{"name": "orphans"})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := alice.StartSession(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, s.ID, cohort.StateReady)
	srv.kill()
	// While cohort is down, the session is marked stopped (as an admin
	// fixing the database by hand would): its notebook is now an orphan.
	markStopped(t, dataDir, s.ID)
	srv = startServer(t, dataDir)
	deadline := time.Now().Add(30 * time.Second)
	for notebookProcs(t, dataDir, s.ID) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the orphaned notebook still runs 30s after cohort started")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func markStopped(t *testing.T, dataDir, id string) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dataDir, "cohort.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s, err := store.GetSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	s.State = cohort.StateStopped
	if err := store.UpdateSession(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
}
