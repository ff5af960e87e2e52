package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
)

// TestStartAllKeepsTheClassTimes: "start all" follows the rules of a
// participant's start, bar the opening time (instructors start seats ahead
// of class): before the class opens it starts every seat; once the class
// has ended it starts none (before, it made seats the sweeper then
// stopped, VMs paid for nothing).
func TestStartAllKeepsTheClassTimes(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	e := newEnv(t, func(o *api.Options) { o.Now = func() time.Time { return now } })
	e.db.Now = func() time.Time { return now }
	opens, ends := now.Add(time.Hour), now.Add(3*time.Hour)
	c := e.createClass("teacher", fmt.Sprintf(`{"name": "Timed", "policy": {"starts_at": %q, "ends_at": %q}}`,
		opens.Format(time.RFC3339), ends.Format(time.RFC3339)))

	if _, st := e.startSession("alice", c.ID); st != http.StatusConflict {
		t.Fatalf("a participant's start before the class opens: %d, want 409", st)
	}
	if r := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/start-all", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), `"started":2`) {
		t.Fatalf("start all before the class opens: %d %s, want both seats started", r.status, r.body)
	}
	if r := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/stop-all", ""); r.status != http.StatusOK {
		t.Fatalf("stop all: %d %s", r.status, r.body)
	}
	for _, s := range must(e.store.ListSessions(context.Background(), cohort.SessionFilter{ClassID: c.ID})) {
		s.State = cohort.StateStopped
		if err := e.store.UpdateSession(context.Background(), s, nil); err != nil {
			t.Fatal(err)
		}
	}

	now = ends.Add(time.Minute)
	r := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/start-all", "")
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), "ended") {
		t.Fatalf("start all after the class ended: %d %s, want 409 saying it ended", r.status, r.body)
	}
	live := must(e.store.ListSessions(context.Background(), cohort.SessionFilter{ClassID: c.ID, States: cohort.ActiveStates}))
	if len(live) != 0 {
		t.Fatalf("start all after the class ended made %d seats", len(live))
	}
}
