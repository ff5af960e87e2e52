package timeouts_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/store/sqlite"
	"github.com/cohortdev/cohort/timeouts"
)

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func TestCompute(t *testing.T) {
	t.Parallel()
	p := cohort.DefaultClass().Policy
	ends := t0.Add(3 * time.Hour)
	early := t0.Add(30 * time.Minute)
	tests := []struct {
		name       string
		activity   *time.Time
		extension  time.Duration
		endsAt     *time.Time
		idle, hard time.Time
		cause      cohort.EndCause
	}{
		{"fresh", nil, 0, nil, t0.Add(90 * time.Minute), t0.Add(12 * time.Hour), cohort.CauseMaxLifetime},
		{"used", ptr(t0.Add(time.Hour)), 0, nil, t0.Add(150 * time.Minute), t0.Add(12 * time.Hour), cohort.CauseMaxLifetime},
		{"activity before ready is ignored", ptr(t0.Add(-time.Hour)), 0, nil, t0.Add(90 * time.Minute), t0.Add(12 * time.Hour), cohort.CauseMaxLifetime},
		{"extended", nil, 2 * time.Hour, nil, t0.Add(90 * time.Minute), t0.Add(14 * time.Hour), cohort.CauseMaxLifetime},
		{"class ends first", ptr(t0.Add(2 * time.Hour)), 0, &ends, ends, ends, cohort.CauseClassEnded},
		{"class ends before idle", nil, 0, &early, early, early, cohort.CauseClassEnded},
	}
	opens := t0.Add(2 * time.Hour)
	pre := p
	pre.StartsAt = &opens
	if d, _ := timeouts.Compute(&cohort.Session{ReadyAt: ptr(t0)}, pre); !d.Idle.Equal(opens.Add(90 * time.Minute)) {
		t.Fatalf("a seat started 2h before the class opens idles out at %s, want 90m after the opening", d.Idle)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := p
			pol.EndsAt = tt.endsAt
			s := &cohort.Session{ReadyAt: ptr(t0), LastActivityAt: tt.activity, Extension: cohort.Duration(tt.extension)}
			d, ok := timeouts.Compute(s, pol)
			if !ok || !d.Idle.Equal(tt.idle) || !d.Hard.Equal(tt.hard) || d.HardCause != tt.cause {
				t.Fatalf("Compute = %+v, want idle %s hard %s (%s)", d, tt.idle, tt.hard, tt.cause)
			}
		})
	}
	if _, ok := timeouts.Compute(&cohort.Session{}, p); ok {
		t.Fatal("a session never ready has deadlines")
	}
	d, _ := timeouts.Compute(&cohort.Session{ReadyAt: ptr(t0)}, p)
	for _, tt := range []struct {
		at   time.Duration
		want cohort.EndCause
	}{{79 * time.Minute, ""}, {80 * time.Minute, cohort.CauseIdle}, {95 * time.Minute, cohort.CauseIdle}} {
		if got := d.Warning(t0.Add(tt.at)); got != tt.want {
			t.Errorf("Warning at +%s = %q, want %q", tt.at, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// kernels is a driver whose kernels report what a test says.
type kernels struct {
	mu       sync.Mutex
	last     time.Time
	busy     bool
	silent   bool // the notebook does not answer about its kernels
	inspects int
	moved    map[string]time.Time // backstops rescheduled, by session
}

// Reschedule records a backstop moved to a session's deadline.
func (k *kernels) Reschedule(_ context.Context, sessionID string, deadline time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.moved == nil {
		k.moved = map[string]time.Time{}
	}
	k.moved[sessionID] = deadline
	return nil
}

func (k *kernels) set(last time.Time, busy bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.last, k.busy = last, busy
}

func (k *kernels) Name() string                                     { return "fake" }
func (k *kernels) Start(context.Context, cohort.NotebookSpec) error { return nil }
func (k *kernels) Stop(context.Context, string) error               { return nil }
func (k *kernels) List(context.Context) ([]string, error)           { return nil, nil }
func (k *kernels) FilesNote() string                                { return "Files: kept." }
func (k *kernels) Inspect(context.Context, cohort.NotebookSpec) (cohort.Instance, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.inspects++
	if k.silent {
		return cohort.Instance{State: cohort.InstanceReady}, nil
	}
	return cohort.Instance{State: cohort.InstanceReady, KernelActivityKnown: true, LastKernelActivity: k.last, KernelBusy: k.busy}, nil
}

type queue struct {
	mu  sync.Mutex
	ids []string
}

func (q *queue) Enqueue(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, id)
	return nil
}

type world struct {
	t       *testing.T
	store   *sqlite.Store
	now     time.Time
	kernels *kernels
	queue   *queue
	class   *cohort.Class
	sweeper *timeouts.Sweeper
}

func newWorld(t *testing.T, edit func(*cohort.Policy)) *world {
	t.Helper()
	w := &world{t: t, now: t0, kernels: &kernels{}, queue: &queue{}}
	var err error
	w.store, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "cohort.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.store.Close() })
	w.store.Now = func() time.Time { return w.now }
	w.sweeper = w.newSweeper()
	u, err := w.store.EnsureUser(context.Background(), "teacher@example.com", cohort.RoleInstructor)
	if err != nil {
		t.Fatal(err)
	}
	c := cohort.DefaultClass()
	c.Name, c.OwnerID = "NLP", u.ID
	if edit != nil {
		edit(&c.Policy)
	}
	if err := w.store.CreateClass(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	w.class = &c
	return w
}

// newSweeper is what a restarted cohort makes: nothing carried over but the store.
func (w *world) newSweeper() *timeouts.Sweeper {
	return timeouts.New(timeouts.Options{Store: w.store, Driver: w.kernels, Enqueuer: w.queue, Now: func() time.Time { return w.now }})
}

// readySession makes a session that became ready at t0.
func (w *world) readySession(email string) *cohort.Session {
	w.t.Helper()
	ctx := context.Background()
	u, err := w.store.EnsureUser(ctx, email, cohort.RoleParticipant)
	if err != nil {
		w.t.Fatal(err)
	}
	s, _, err := w.store.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: w.class.ID, UserID: u.ID,
		State: cohort.StateRequested, Driver: "fake", NotebookToken: "tok"}, 100)
	if err != nil {
		w.t.Fatal(err)
	}
	s.State, s.ReadyAt = cohort.StateReady, ptr(t0)
	if err := w.store.UpdateSession(ctx, s, nil); err != nil {
		w.t.Fatal(err)
	}
	return s
}

func (w *world) at(d time.Duration) timeouts.Stats {
	w.t.Helper()
	w.now = t0.Add(d)
	st, err := w.sweeper.Sweep(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

func (w *world) session(id string) *cohort.Session {
	w.t.Helper()
	s, err := w.store.GetSession(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// warnings returns the warning messages the participant saw.
func (w *world) warnings(id string) []string {
	w.t.Helper()
	events, err := w.store.ListEvents(context.Background(), id, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		if strings.HasPrefix(e.Message, "this session will stop") {
			out = append(out, e.Message)
		}
	}
	return out
}

func TestIdleExpiry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	s := w.readySession("ada@example.com")
	if st := w.at(79 * time.Minute); st.Warned != 0 || st.Expired != 0 {
		t.Fatalf("at 79m: %+v", st)
	}
	if st := w.at(81 * time.Minute); st.Warned != 1 {
		t.Fatalf("at 81m: %+v, want a warning", st)
	}
	if ws := w.warnings(s.ID); len(ws) != 1 || !strings.Contains(ws[0], "10:30 UTC") || !strings.Contains(ws[0], "keepalive") {
		t.Fatalf("warnings = %q", ws)
	}
	if st := w.at(85 * time.Minute); st.Warned != 0 {
		t.Fatalf("at 85m warned again: %+v", st)
	}
	if st := w.at(90 * time.Minute); st.Expired != 1 {
		t.Fatalf("at 90m: %+v, want expiry", st)
	}
	got := w.session(s.ID)
	if got.State != cohort.StateStopping || got.EndCause != cohort.CauseIdle || !strings.Contains(got.Reason, "1h30m without use") {
		t.Fatalf("expired session = %s %s %q", got.State, got.EndCause, got.Reason)
	}
	if len(w.queue.ids) != 1 || w.queue.ids[0] != s.ID {
		t.Fatalf("queued %v, want the session once (the provisioner stops it)", w.queue.ids)
	}
	if st := w.at(91 * time.Minute); st.Checked != 0 {
		t.Fatalf("a stopping session is swept again: %+v", st)
	}
}

func TestProxyActivityPushesDeadline(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	s := w.readySession("ada@example.com")
	tracker := timeouts.NewTracker(w.store, func() time.Time { return w.now }, 30*time.Second, nil)
	w.now = t0.Add(60 * time.Minute)
	tracker.Touch(s.ID)
	tracker.Touch(s.ID) // within 30s: not written twice
	if err := tracker.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := w.at(91 * time.Minute); st.Expired != 0 || st.Warned != 0 {
		t.Fatalf("at 91m after use at 60m: %+v", st)
	}
	if got := w.session(s.ID); !got.IdleDeadline.Equal(t0.Add(150 * time.Minute)) {
		t.Fatalf("idle deadline = %s, want 60m+90m", got.IdleDeadline)
	}
	if st := w.at(150 * time.Minute); st.Expired != 1 {
		t.Fatalf("at 150m: %+v", st)
	}
}

func TestBusyKernelKeepsSession(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	s := w.readySession("ada@example.com")
	w.kernels.set(t0.Add(10*time.Minute), true) // a training run, no browser
	for m := 80; m <= 300; m += 20 {
		if st := w.at(time.Duration(m) * time.Minute); st.Expired != 0 || st.Warned != 0 {
			t.Fatalf("at %dm with a busy kernel: %+v", m, st)
		}
	}
	// The run ends; its last message was at 300m. Idle counts from there.
	w.kernels.set(t0.Add(300*time.Minute), false)
	if st := w.at(385 * time.Minute); st.Warned != 1 {
		t.Fatalf("at 385m: %+v, want a warning", st)
	}
	if st := w.at(391 * time.Minute); st.Expired != 1 {
		t.Fatalf("at 391m: %+v, want expiry", st)
	}
	if w.session(s.ID).EndCause != cohort.CauseIdle {
		t.Fatal("wrong cause")
	}
}

func TestBusyKernelIgnoredByPolicy(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(p *cohort.Policy) { p.IgnoreBusyKernels = true })
	w.readySession("ada@example.com")
	w.kernels.set(t0.Add(5*time.Minute), true)
	if st := w.at(95 * time.Minute); st.Expired != 1 {
		t.Fatalf("busy kernel ignored by policy: %+v, want expiry", st)
	}
}

func TestWarningThenKeepAlive(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	s := w.readySession("ada@example.com")
	w.at(82 * time.Minute)
	if got := w.session(s.ID); got.WarnedAt == nil {
		t.Fatal("not warned at 82m")
	}
	// The participant keeps it alive at 84m.
	if err := w.store.RecordActivity(context.Background(), s.ID, t0.Add(84*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if st := w.at(86 * time.Minute); st.Expired != 0 || st.Warned != 0 {
		t.Fatalf("after keep-alive: %+v", st)
	}
	if got := w.session(s.ID); got.WarnedAt != nil {
		t.Fatal("the warning outlived the keep-alive")
	}
	if st := w.at(165 * time.Minute); st.Warned != 1 {
		t.Fatalf("second idle stretch: %+v, want a new warning", st)
	}
	if st := w.at(174 * time.Minute); st.Expired != 1 {
		t.Fatalf("at 174m: %+v", st)
	}
	if n := len(w.warnings(s.ID)); n != 2 {
		t.Fatalf("%d warnings, want 2", n)
	}
}

func TestMaxLifetimeIgnoresActivity(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	s := w.readySession("ada@example.com")
	w.kernels.set(t0, true) // busy all day
	if st := w.at(11*time.Hour + 51*time.Minute); st.Warned != 1 {
		t.Fatalf("before the maximum: %+v, want a warning", st)
	}
	if ws := w.warnings(s.ID); !strings.Contains(ws[0], "maximum session length") {
		t.Fatalf("warning = %q", ws)
	}
	if st := w.at(12 * time.Hour); st.Expired != 1 {
		t.Fatalf("at 12h: %+v", st)
	}
	if got := w.session(s.ID); got.EndCause != cohort.CauseMaxLifetime {
		t.Fatalf("cause = %s", got.EndCause)
	}
}

func TestExtensionMovesHardDeadline(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	s := w.readySession("ada@example.com")
	w.kernels.set(t0, true)
	if err := w.store.SetExtension(context.Background(), s.ID, cohort.Duration(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st := w.at(12*time.Hour + time.Minute); st.Expired != 0 {
		t.Fatalf("extended session expired at 12h: %+v", st)
	}
	if st := w.at(14 * time.Hour); st.Expired != 1 {
		t.Fatalf("at 14h: %+v", st)
	}
}

func TestClassEnd(t *testing.T) {
	t.Parallel()
	ends := t0.Add(3 * time.Hour)
	w := newWorld(t, func(p *cohort.Policy) { p.EndsAt = &ends })
	s := w.readySession("ada@example.com")
	w.kernels.set(t0, true)
	if st := w.at(2*time.Hour + 55*time.Minute); st.Warned != 1 {
		t.Fatalf("before the class ends: %+v", st)
	}
	if st := w.at(3 * time.Hour); st.Expired != 1 {
		t.Fatalf("at the class end: %+v", st)
	}
	if got := w.session(s.ID); got.EndCause != cohort.CauseClassEnded || !strings.Contains(got.Reason, "class ended") {
		t.Fatalf("session = %s %q", got.EndCause, got.Reason)
	}
}

func TestRestartBetweenWarningAndExpiry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	s := w.readySession("ada@example.com")
	w.at(81 * time.Minute)
	w.sweeper = w.newSweeper() // cohort restarts
	if st := w.at(83 * time.Minute); st.Warned != 0 {
		t.Fatalf("warned again after a restart: %+v", st)
	}
	if st := w.at(95 * time.Minute); st.Expired != 1 {
		t.Fatalf("late first sweep after the restart: %+v, want expiry", st)
	}
	if n := len(w.warnings(s.ID)); n != 1 {
		t.Fatalf("%d warnings", n)
	}
}

func TestExpireIfDueIsIdempotent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	s := w.readySession("ada@example.com")
	ctx := context.Background()
	w.now = t0.Add(30 * time.Minute)
	if done, err := w.sweeper.ExpireIfDue(ctx, s.ID); err != nil || done {
		t.Fatalf("early call = %v, %v; want no stop", done, err)
	}
	// The early call moves the driver's backstop to the real deadline: a
	// pinned schedule would not fire again.
	if got, want := w.kernels.moved[s.ID], t0.Add(w.class.Policy.MaxLifetime.D()); !got.Equal(want) {
		t.Fatalf("backstop moved to %v after an early call, want the hard deadline %v", got, want)
	}
	w.now = t0.Add(95 * time.Minute) // the scheduler's call arrives late
	if done, err := w.sweeper.ExpireIfDue(ctx, s.ID); err != nil || !done {
		t.Fatalf("due call = %v, %v", done, err)
	}
	if done, err := w.sweeper.ExpireIfDue(ctx, s.ID); err != nil || done {
		t.Fatalf("duplicate call = %v, %v", done, err)
	}
	if len(w.queue.ids) != 1 {
		t.Fatalf("queued %d times", len(w.queue.ids))
	}
	if _, err := w.sweeper.ExpireIfDue(ctx, "ses_missing"); cohort.ErrorCode(err) != cohort.ENOTFOUND {
		t.Fatalf("unknown session = %v", err)
	}
}

func TestKernelsAskedOnlyNearIdleDeadline(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		w.readySession(e)
	}
	w.at(10 * time.Minute)
	w.at(70 * time.Minute)
	if w.kernels.inspects != 0 {
		t.Fatalf("kernels asked %d times far from any deadline", w.kernels.inspects)
	}
	w.at(85 * time.Minute)
	if w.kernels.inspects != 3 {
		t.Fatalf("kernels asked %d times near the idle deadline, want 3", w.kernels.inspects)
	}
}

func TestSilentKernelsGetGrace(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.readySession("ada@example.com")
	w.kernels.silent = true // e.g. a CPU-bound training run slows the notebook's answers
	if st := w.at(91 * time.Minute); st.Expired != 0 {
		t.Fatalf("expired on no news: %+v", st)
	}
	if st := w.at(90*time.Minute + timeouts.UnknownGrace); st.Expired != 1 {
		t.Fatalf("after the grace: %+v, want expiry", st)
	}
}
