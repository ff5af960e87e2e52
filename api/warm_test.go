package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
)

// warmNotebook stands for the notebook servers of warm seats: Jupyter's
// /api/status behind its token, and the extension cohort gives Jupyter
// (jupyter/cohort_token.py; provisioner/local tests the real one), which
// replaces the token. kernels makes every server report that many.
type warmNotebook struct {
	*httptest.Server
	mu      sync.Mutex
	tokens  map[string]bool // the tokens that open a server now
	claims  int
	kernels int
}

func newWarmNotebook(t *testing.T) *warmNotebook {
	n := &warmNotebook{tokens: map[string]bool{}}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "token ")
		if !n.tokens[tok] {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case "/api/status":
			fmt.Fprintf(w, `{"started": "2026-12-01T08:00:00Z", "kernels": %d, "connections": 0}`, n.kernels)
		case "/cohort/token":
			var in struct{ Token string }
			if json.NewDecoder(r.Body).Decode(&in) != nil || len(in.Token) < 32 {
				http.Error(w, "bad token", http.StatusBadRequest)
				return
			}
			delete(n.tokens, tok)
			n.tokens[in.Token], n.claims = true, n.claims+1
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(n.Close)
	return n
}

// poolQueue records reconcile and pool requests without acting on them:
// the test tends the pool itself, when its clock says.
type poolQueue struct {
	recorder
	mu    sync.Mutex
	pools int
}

func (q *poolQueue) EnqueuePool(context.Context, string, time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pools++
	return nil
}

// warmEnv is a server on a clock the test moves, with n participants
// p0..p(n-1) on the roster of a class made of body.
func warmEnv(t *testing.T, clock *time.Time, n int, body string, mods ...func(*api.Options)) (*env, *cohort.Class, *poolQueue) {
	t.Helper()
	q := &poolQueue{}
	e := newEnv(t, append([]func(*api.Options){func(o *api.Options) {
		o.Enqueuer = q
		o.Now = func() time.Time { return *clock }
	}}, mods...)...)
	e.db.Now = func() time.Time { return *clock } // sessions are made at the same time
	c := e.createClass("teacher", body)
	var emails []string
	for i := range n {
		name := fmt.Sprintf("p%d", i)
		e.addUser(name, cohort.RoleParticipant)
		emails = append(emails, `"`+name+`@example.com"`)
	}
	if r := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/members", `{"emails": [`+strings.Join(emails, ",")+`]}`); r.status != 200 {
		t.Fatalf("enroll: %d %s", r.status, r.body)
	}
	return e, c, q
}

// warmNow has the teacher warm seats of a class from now.
func warmNow(t *testing.T, e *env, classID string, seats int) {
	t.Helper()
	if r := e.do("teacher", "POST", "/v1/classes/"+classID+"/warm", fmt.Sprintf(`{"seats": %d}`, seats)); r.status != 200 {
		t.Fatalf("warm now: %d %s", r.status, r.body)
	}
}

// warmSeats returns the class's unclaimed seats that run or start.
func warmSeats(t *testing.T, e *env, classID string) []*cohort.Session {
	t.Helper()
	list, err := e.db.ListSessions(context.Background(), cohort.SessionFilter{ClassID: classID, UserID: cohort.PoolUserID,
		States: []cohort.SessionState{cohort.StateRequested, cohort.StateProvisioning, cohort.StateReady}})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// bootWarm marks every requested warm seat of the class ready at the
// notebook, as the provisioner would once its notebook answers.
func bootWarm(t *testing.T, e *env, nb *warmNotebook, classID string, at time.Time) {
	t.Helper()
	for _, s := range warmSeats(t, e, classID) {
		if s.State == cohort.StateReady {
			continue
		}
		s.State, s.Address, s.ReadyAt = cohort.StateReady, nb.URL, &at
		if err := e.store.UpdateSession(context.Background(), s, nil); err != nil {
			t.Fatal(err)
		}
		nb.mu.Lock()
		nb.tokens[s.NotebookToken] = true
		nb.mu.Unlock()
	}
}

func pool(t *testing.T, e *env, classID string) (v struct {
	Target, Ready, Starting, Claimed int
	ColdStarts                       int `json:"cold_starts"`
	Cost                             float64
}) {
	t.Helper()
	r := e.do("teacher", "GET", "/v1/classes/"+classID+"/warm", "")
	if r.status != 200 {
		t.Fatalf("GET warm: %d %s", r.status, r.body)
	}
	r.json(t, &v)
	return v
}

// A class opening at T with 10 warm seats from T-15m: nothing before,
// 10 seats at T-15m, 10 participants at T each get a ready seat at once
// (with a token nobody else had), the 11th a cold start; at the window's
// end the unclaimed seats stop.
func TestWarmSeatsAreClaimedAtClassStart(t *testing.T) {
	t.Parallel()
	T := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	clock := T.Add(-20 * time.Minute)
	e, c, q := warmEnv(t, &clock, 11, fmt.Sprintf(`{"name": "NLP", "policy": {"seats": 30, "starts_at": %q, "warm": {"seats": 10}}}`, T.Format(time.RFC3339)))
	nb := newWarmNotebook(t)
	ctx := context.Background()

	if err := e.server.TendPool(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(warmSeats(t, e, c.ID)); n != 0 {
		t.Fatalf("%d warm seats 20 minutes before the class, want 0 (the window opens 15 minutes before)", n)
	}
	clock = T.Add(-15 * time.Minute)
	if err := e.server.TendPool(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if got := pool(t, e, c.ID); got.Target != 10 || got.Starting != 10 {
		t.Fatalf("at T-15m: %+v, want 10 starting", got)
	}
	warm := warmSeats(t, e, c.ID)
	for _, s := range warm {
		if q.count(s.ID) == 0 {
			t.Fatalf("warm seat %s was not queued for the provisioner", s.ID)
		}
	}
	bootWarm(t, e, nb, c.ID, clock.Add(2*time.Minute))
	// Nobody opens a warm seat, an admin included.
	if r := e.do("admin", "POST", "/v1/sessions/"+warm[0].ID+"/open", ""); r.status != http.StatusForbidden {
		t.Fatalf("an admin opened a warm seat: %d %s", r.status, r.body)
	}
	if r := e.do("admin", "GET", e.nb(warm[0].ID, "/tree"), ""); r.status != http.StatusForbidden {
		t.Fatalf("an admin reached a warm seat's notebook: %d %s", r.status, r.body)
	}

	clock = T
	var wg sync.WaitGroup
	got := make([]*cohort.Session, 10)
	codes := make([]int, 10)
	for i := range 10 {
		wg.Go(func() { got[i], codes[i] = e.startSession(fmt.Sprintf("p%d", i), c.ID) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, s := range got {
		if codes[i] != http.StatusCreated || s.State != cohort.StateReady || s.ClaimedAt == nil {
			t.Fatalf("p%d: %d, state %s, claimed %v; want a ready warm seat at once", i, codes[i], s.State, s.ClaimedAt)
		}
		if seen[s.ID] {
			t.Fatalf("seat %s was handed out twice", s.ID)
		}
		seen[s.ID] = true
		stored, _ := e.db.GetSession(ctx, s.ID)
		if stored.UserID != e.users[fmt.Sprintf("p%d", i)].ID || !stored.ReadyAt.Equal(T) {
			t.Fatalf("claimed seat: owner %s, ready at %v; want p%d's, ready at the claim", stored.UserID, stored.ReadyAt, i)
		}
		for _, w := range warm {
			if w.ID == s.ID && w.NotebookToken == stored.NotebookToken {
				t.Fatalf("seat %s kept the token it had while warm", s.ID)
			}
		}
		nb.mu.Lock()
		open := nb.tokens[stored.NotebookToken]
		nb.mu.Unlock()
		if !open {
			t.Fatalf("the notebook of %s does not take the token cohort stored for it", s.ID)
		}
	}
	// The extension that replaced the tokens is cohort's alone: a
	// participant's page cannot reach it through the proxy.
	r := e.do("p0", "PUT", e.nb(got[0].ID, "/cohort/token"), `{"token": "`+strings.Repeat("x", 40)+`"}`)
	if r.status != http.StatusNotFound {
		t.Fatalf("PUT /cohort/token through the proxy: %d %s", r.status, r.body)
	}
	if nb.claims != 10 {
		t.Fatalf("%d tokens replaced, want 10", nb.claims)
	}
	eleventh, code := e.startSession("p10", c.ID)
	if code != http.StatusCreated || eleventh.ClaimedAt != nil || eleventh.State != cohort.StateRequested {
		t.Fatalf("11th participant: %d, %s, claimed %v; want a cold start", code, eleventh.State, eleventh.ClaimedAt)
	}
	if v := pool(t, e, c.ID); v.Claimed != 10 || v.ColdStarts != 1 || v.Ready != 0 {
		t.Fatalf("pool after the rush: %+v", v)
	}
	// Two are left to arrive (alice and bob are on the roster too): the
	// pool keeps two seats, no more.
	if err := e.server.TendPool(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(warmSeats(t, e, c.ID)); n != 2 {
		t.Fatalf("%d warm seats with two participants left to arrive, want 2", n)
	}
}

// Unclaimed seats stop at the end of their window: the pool stops them,
// and the sweeper's deadline for them is the window's end.
func TestUnclaimedSeatsStopAtTheWindowsEnd(t *testing.T) {
	t.Parallel()
	T := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	clock := T
	e, c, _ := warmEnv(t, &clock, 5, fmt.Sprintf(`{"name": "NLP", "policy": {"seats": 30, "starts_at": %q, "ends_at": %q, "warm": {"seats": 3, "until": %q}}}`,
		T.Format(time.RFC3339), T.Add(3*time.Hour).Format(time.RFC3339), T.Add(time.Hour).Format(time.RFC3339)))
	nb := newWarmNotebook(t)
	ctx := context.Background()
	if err := e.server.TendPool(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	bootWarm(t, e, nb, c.ID, T)
	warm := warmSeats(t, e, c.ID)
	if len(warm) != 3 {
		t.Fatalf("%d warm seats, want 3", len(warm))
	}
	// The participant's deadlines after a claim are theirs: idle timeout
	// and lifetime from the claim. A warm seat's are the window's end.
	claimedAt := T.Add(10 * time.Minute)
	clock = claimedAt
	mine, _ := e.startSession("p0", c.ID)
	var v struct {
		StopsAt   time.Time       `json:"stops_at"`
		StopCause cohort.EndCause `json:"stop_cause"`
	}
	e.do("p0", "GET", "/v1/sessions/"+mine.ID, "").json(t, &v)
	if !v.StopsAt.Equal(claimedAt.Add(90*time.Minute)) || v.StopCause != cohort.CauseIdle {
		t.Fatalf("a claimed seat stops at %s (%s), want the idle timeout from the claim", v.StopsAt, v.StopCause)
	}
	e.do("teacher", "GET", "/v1/sessions/"+warmSeats(t, e, c.ID)[0].ID, "").json(t, &v)
	if !v.StopsAt.Equal(T.Add(time.Hour)) || v.StopCause != cohort.CauseUnclaimed {
		t.Fatalf("a warm seat stops at %s (%s), want the window's end", v.StopsAt, v.StopCause)
	}
	clock = T.Add(time.Hour)
	if err := e.server.TendPool(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(warmSeats(t, e, c.ID)); n != 0 {
		t.Fatalf("%d warm seats run after their window", n)
	}
	for _, w := range warm {
		if stopped, _ := e.db.GetSession(ctx, w.ID); w.ID != mine.ID && (stopped.State != cohort.StateStopping || stopped.EndCause != cohort.CauseUnclaimed) {
			t.Fatalf("an unclaimed seat after its window: %s (%s)", stopped.State, stopped.EndCause)
		}
	}
	if s, _ := e.db.GetSession(ctx, mine.ID); s.State != cohort.StateReady {
		t.Fatalf("the claimed seat is %s after the window, want ready", s.State)
	}
}

// A drain and claims at once: each participant gets a seat that goes on,
// or a cold start; never a seat being stopped.
func TestClaimRacingADrain(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	e, c, _ := warmEnv(t, &clock, 8, `{"name": "NLP", "policy": {"seats": 30}}`)
	nb := newWarmNotebook(t)
	warmNow(t, e, c.ID, 6)
	bootWarm(t, e, nb, c.ID, clock)
	var wg sync.WaitGroup
	got := make([]*cohort.Session, 8)
	for i := range 8 {
		wg.Go(func() { got[i], _ = e.startSession(fmt.Sprintf("p%d", i), c.ID) })
		if i == 3 {
			wg.Go(func() {
				if r := e.do("teacher", "DELETE", "/v1/classes/"+c.ID+"/warm", ""); r.status != 200 {
					t.Errorf("drain: %d %s", r.status, r.body)
				}
			})
		}
	}
	wg.Wait()
	claimed := 0
	for i, s := range got {
		stored, err := e.db.GetSession(context.Background(), s.ID)
		if err != nil {
			t.Fatalf("p%d: %v", i, err)
		}
		if stored.ClaimedAt != nil {
			claimed++
		}
		if !stored.State.WantsRunning() || stored.UserID != e.users[fmt.Sprintf("p%d", i)].ID {
			t.Fatalf("p%d got a seat that is %s, of %s", i, stored.State, stored.UserID)
		}
	}
	if n := len(warmSeats(t, e, c.ID)); n != 0 {
		t.Fatalf("%d warm seats run after the drain", n)
	}
	t.Logf("%d of 8 participants took a warm seat before the drain", claimed)
}

// A warm seat that was used (its notebook has a kernel: it should never
// have) is not handed over: it stops, and the participant gets a cold
// start. Nor does a warm seat count as a reconnect for the budget.
func TestUsedOrUnaffordableWarmSeats(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	// A GCE seat of n1-standard-4 + T4 warm for an hour, then 12h + 4h,
	// and the driver's margin of 45 minutes, can cost $9.83; $25 holds two
	// warm seats, not three.
	e, c, _ := warmEnv(t, &clock, 3, `{"name": "NLP", "policy": {"seats": 30, "budget": 25}}`,
		func(o *api.Options) { o.Driver = "gce" })
	nb := newWarmNotebook(t)
	warmNow(t, e, c.ID, 3)
	warm := warmSeats(t, e, c.ID)
	if len(warm) != 2 {
		t.Fatalf("%d warm seats within a budget that holds 2", len(warm))
	}
	bootWarm(t, e, nb, c.ID, clock)
	nb.kernels = 1
	r := e.do("p0", "POST", "/v1/classes/"+c.ID+"/sessions", "")
	var s cohort.Session
	r.json(t, &s)
	if r.status != http.StatusCreated || s.ClaimedAt != nil {
		t.Fatalf("a used warm seat was handed over (%d %s)", r.status, r.body)
	}
	// One handover is tried per Start: a fault of every seat does not
	// burn the pool in one click.
	states := map[cohort.SessionState]int{}
	for _, w := range warm {
		got, _ := e.db.GetSession(context.Background(), w.ID)
		states[got.State]++
		if got.State == cohort.StateStopping && got.EndCause != cohort.CauseFailure {
			t.Fatalf("used warm seat %s stops for %s, want failure", w.ID, got.EndCause)
		}
	}
	if states[cohort.StateStopping] != 1 || states[cohort.StateReady] != 1 {
		t.Fatalf("after one Start with used seats: %v, want one stopping, one ready", states)
	}
	// The class's costs name the pool as such, not as a participant.
	var cc cohort.ClassCost
	e.do("teacher", "GET", "/v1/classes/"+c.ID+"/cost", "").json(t, &cc)
	var names []string
	for _, p := range cc.Participants {
		names = append(names, p.Email)
	}
	if !slices.Contains(names, "(warm seats, unclaimed)") || slices.Contains(names, cohort.PoolEmail) {
		t.Fatalf("the class's costs list %v", names)
	}
}

// A budget lowered below what the class committed stops its unclaimed
// warm seats first, at once, before any participant's seat, even one
// newer than they are.
func TestLoweredBudgetStopsWarmSeatsFirst(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	e, c, _ := warmEnv(t, &clock, 3, `{"name": "NLP", "policy": {"seats": 30, "budget": 30}}`,
		func(o *api.Options) { o.Driver = "gce" })
	nb := newWarmNotebook(t)
	warmNow(t, e, c.ID, 1)
	older := warmSeats(t, e, c.ID)[0]
	clock = clock.Add(time.Minute)
	warmNow(t, e, c.ID, 2)
	bootWarm(t, e, nb, c.ID, clock)
	older, _ = e.db.GetSession(context.Background(), older.ID)
	older.State = cohort.StateProvisioning // booting again: the newer one is taken
	if err := e.store.UpdateSession(context.Background(), older, nil); err != nil {
		t.Fatal(err)
	}
	mine, _ := e.startSession("p0", c.ID)
	if mine.ClaimedAt == nil || mine.ID == older.ID {
		t.Fatalf("p0 got %s (claimed %v), want the newer warm seat", mine.ID, mine.ClaimedAt)
	}
	if r := e.do("teacher", "PATCH", "/v1/classes/"+c.ID, `{"policy": {"budget": 12}}`); r.status != 200 {
		t.Fatalf("lower the budget: %d %s", r.status, r.body)
	}
	if n := len(warmSeats(t, e, c.ID)); n != 0 {
		t.Fatalf("%d warm seats run under a budget that holds one seat", n)
	}
	if s, _ := e.db.GetSession(context.Background(), mine.ID); !s.State.WantsRunning() || s.BudgetStopAt != nil {
		t.Fatalf("the participant's seat: %s, budget stop %v; want it kept", s.State, s.BudgetStopAt)
	}
}
