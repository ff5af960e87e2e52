package timeouts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jupyter"
	"github.com/cohortdev/cohort/provisioner"
	"github.com/cohortdev/cohort/provisioner/local"
	"github.com/cohortdev/cohort/provisioner/local/localtest"
	"github.com/cohortdev/cohort/store/sqlite"
	"github.com/cohortdev/cohort/timeouts"
)

// TestE2EIdleRulesOnLocalNotebook runs the timeout rules against a real
// Jupyter: a kernel busy with a long cell keeps its session past the idle
// timeout; once the cell is interrupted and the session stays unused, the
// sweep stops it and the provisioner ends the process. The clock of the
// sweep is moved; the notebook runs in real time.
func TestE2EIdleRulesOnLocalNotebook(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(local.DefaultBin); err != nil {
		t.Fatalf("%s is missing: run `make deps`", local.DefaultBin)
	}
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "cohort.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	opts := local.Options{Root: localtest.Root(t), StopGrace: 2 * time.Second}
	if os.Geteuid() == 0 {
		opts.UIDs = localtest.UIDs(t, 2) // as `cohort serve` runs as root
	}
	driver, err := local.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ids, _ := driver.List(ctx)
		for _, id := range ids {
			driver.Stop(ctx, id)
		}
	})
	rec := provisioner.New(provisioner.Options{Store: store, Driver: driver})
	u, _ := store.EnsureUser(ctx, "ada@example.com", cohort.RoleInstructor)
	class := cohort.DefaultClass()
	class.Name, class.OwnerID = "NLP", u.ID
	if err := store.CreateClass(ctx, &class); err != nil {
		t.Fatal(err)
	}
	s, _, err := store.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: class.ID, UserID: u.ID,
		State: cohort.StateRequested, Driver: "local", NotebookToken: cohort.NewSecret("")}, 10)
	if err != nil {
		t.Fatal(err)
	}
	reconcileUntil(t, rec, store, s.ID, cohort.StateReady)
	s, _ = store.GetSession(ctx, s.ID)

	// A long cell, sent straight to the notebook (as the proxy would).
	kernel := runCell(t, s, "import time; time.sleep(600)")

	var now time.Time
	sweeper := timeouts.New(timeouts.Options{Store: store, Driver: driver, Enqueuer: &queue{}, Now: func() time.Time { return now }})
	now = s.ReadyAt.Add(91 * time.Minute)
	st, err := sweeper.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Expired != 0 || st.Revived != 1 {
		// What each side saw, for a failure that happens only under load.
		in, err := driver.Inspect(ctx, cohort.NotebookSpec{SessionID: s.ID, Token: s.NotebookToken, BasePath: s.BasePath()})
		t.Fatalf("sweep 91m after start with a busy kernel: %+v, want the session kept; the kernel is %q now, the driver sees %+v (%v)",
			st, kernelState(t, s, kernel), in, err)
	}

	// Interrupt the cell; nobody uses the notebook any more.
	interrupt(t, s, kernel)
	now = now.Add(95 * time.Minute)
	if st, err = sweeper.Sweep(ctx); err != nil || st.Expired != 1 {
		t.Fatalf("sweep after 95 idle minutes: %+v, %v; want expiry", st, err)
	}
	reconcileUntil(t, rec, store, s.ID, cohort.StateStopped)
	got, _ := store.GetSession(ctx, s.ID)
	if got.EndCause != cohort.CauseIdle {
		t.Fatalf("end cause %s", got.EndCause)
	}
	if ids, _ := driver.List(ctx); len(ids) != 0 {
		t.Fatalf("processes left after the idle stop: %v", ids)
	}
	events, _ := store.ListEvents(ctx, s.ID, 0)
	if last := events[len(events)-1].Message; !strings.Contains(last, "download them") {
		t.Fatalf("the participant is not told about their files: %q", last)
	}
}

func reconcileUntil(t *testing.T, rec *provisioner.Reconciler, store cohort.Store, id string, want cohort.SessionState) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := rec.Reconcile(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := store.GetSession(context.Background(), id)
		if s.State == want {
			return
		}
		if !s.State.Active() || time.Now().After(deadline) {
			t.Fatalf("session is %s (%s), want %s", s.State, s.Reason, want)
		}
		time.Sleep(max(res.RequeueAfter, 50*time.Millisecond))
	}
}

// notebookURL returns the http URL of the session's notebook (the local
// driver's is a unix socket) and a client that reaches it.
func notebookURL(t *testing.T, s *cohort.Session) (string, *http.Client) {
	t.Helper()
	base, err := jupyter.BaseURL(s.Address)
	if err != nil {
		t.Fatal(err)
	}
	return base + s.BasePath(), jupyter.NewClient(30 * time.Second)
}

func notebookRequest(t *testing.T, s *cohort.Session, method, path, body string) []byte {
	t.Helper()
	base, client := notebookURL(t, s)
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "token "+s.NotebookToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s = %s %s", method, path, resp.Status, b)
	}
	return b
}

// runCell starts a kernel, sends it code, and returns once the notebook
// server reports the kernel busy with it.
func runCell(t *testing.T, s *cohort.Session, code string) string {
	t.Helper()
	var k struct{ ID string }
	json.Unmarshal(notebookRequest(t, s, "POST", "api/kernels", `{"name": "python3"}`), &k)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base, client := notebookURL(t, s)
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"api/kernels/"+k.ID+"/channels",
		&websocket.DialOptions{HTTPClient: client, HTTPHeader: http.Header{"Authorization": {"token " + s.NotebookToken}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 22)
	execute := func(id, code string) {
		msg, _ := json.Marshal(map[string]any{
			"header":        map[string]any{"msg_id": id, "username": "t", "session": "s1", "msg_type": "execute_request", "version": "5.3"},
			"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
			"content": map[string]any{"code": code, "silent": false, "store_history": false, "user_expressions": map[string]any{}, "allow_stdin": false},
		})
		if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		for { // until the kernel reports this request's status
			_, data, err := ws.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				Header struct {
					MsgType string `json:"msg_type"`
				}
				ParentHeader struct {
					MsgID string `json:"msg_id"`
				} `json:"parent_header"`
			}
			json.Unmarshal(data, &m)
			if m.ParentHeader.MsgID == id && m.Header.MsgType == "status" {
				return
			}
		}
	}
	// The server follows kernel states through its own subscription to
	// the kernel, which can miss the first messages while it connects:
	// warm up until it reports the kernel idle.
	for i := 0; kernelState(t, s, k.ID) != "idle"; i++ {
		if i == 100 {
			t.Fatal("the notebook server never saw the kernel idle")
		}
		execute(fmt.Sprintf("warm%d", i), "1")
		time.Sleep(100 * time.Millisecond)
	}
	execute("long", code)
	waitState(t, s, k.ID, "busy")
	return k.ID
}

func kernelState(t *testing.T, s *cohort.Session, kernel string) string {
	var k struct {
		ExecutionState string `json:"execution_state"`
	}
	json.Unmarshal(notebookRequest(t, s, "GET", "api/kernels/"+kernel, ""), &k)
	return k.ExecutionState
}

// waitState waits until the notebook server reports the kernel in state
// want. The server follows kernels through a subscription of its own,
// which lags the kernel under load (the full suite on two cores): it is
// given long.
func waitState(t *testing.T, s *cohort.Session, kernel, want string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if last = kernelState(t, s, kernel); last == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the notebook server did not report the kernel %s within 90 s (it reports %q)", want, last)
}

// interrupt stops the running cell and waits until the kernel is idle.
func interrupt(t *testing.T, s *cohort.Session, kernel string) {
	t.Helper()
	notebookRequest(t, s, "POST", "api/kernels/"+kernel+"/interrupt", "")
	waitState(t, s, kernel, "idle")
}
