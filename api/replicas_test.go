package api_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/cost"
	"github.com/cohortdev/cohort/store/cache"
	"github.com/cohortdev/cohort/store/postgres"
	"github.com/cohortdev/cohort/store/postgres/pgtest"
)

// TestReplicasKeepTheBudget: two API replicas on one Postgres database,
// each with its own cache, admit participants of a class whose budget
// covers two seats, all at once, half through each replica. Two are
// admitted: admission holds a lock every replica shares and reads past
// the caches. While another replica holds a class's admission lock, a
// start waits for it.
func TestReplicasKeepTheBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	var replicas [2]string
	var db *cache.Store
	var other cohort.Store // a third replica's store, holding locks by hand
	for i := range replicas {
		s, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		c := cache.New(s, cache.Options{})
		db = c
		srv, _ := serve(t, func(string) api.Options {
			return api.Options{Store: c, Enqueuer: &recorder{}, Driver: "gce"}
		})
		replicas[i] = srv.URL
	}
	teacher, err := db.EnsureUser(ctx, "teacher@example.org", cohort.RoleInstructor)
	if err != nil {
		t.Fatal(err)
	}
	class := cohort.DefaultClass()
	class.Name, class.OwnerID, class.Policy.Seats = "Capped", teacher.ID, 20
	rate, err := cost.Default().Rate("gce", class.Runtime)
	if err != nil {
		t.Fatal(err)
	}
	class.Policy.Budget = 2.5 * rate.Seat(cost.SeatCap(class.Policy, "gce"))
	if err := db.CreateClass(ctx, &class); err != nil {
		t.Fatal(err)
	}
	const participants = 8
	tokens := make([]string, participants)
	var emails []string
	for i := range tokens {
		u, err := db.EnsureUser(ctx, fmt.Sprintf("p%d@example.org", i), cohort.RoleParticipant)
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = cohort.NewSecret(cohort.TokenPrefix)
		if err := db.CreateToken(ctx, &cohort.Token{ID: cohort.NewID("tok"), UserID: u.ID, Name: "t"}, cohort.HashSecret(tokens[i])); err != nil {
			t.Fatal(err)
		}
		emails = append(emails, u.Email)
	}
	if _, err := db.AddMembers(ctx, class.ID, emails, cohort.MemberParticipant, teacher.Email); err != nil {
		t.Fatal(err)
	}
	other, err = postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.(interface{ Close() error }).Close()
	start := func(replica int, token string) int {
		req, _ := http.NewRequest("POST", replicas[replica]+"/v1/classes/"+class.ID+"/sessions", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Another replica admits into the class: a start waits until it is done.
	release, err := other.Hold(ctx, "cohort admission "+class.ID)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- start(0, tokens[0]) }()
	select {
	case st := <-done:
		t.Fatalf("a start while another replica held the class's admission lock answered %d at once", st)
	case <-time.After(time.Second):
	}
	release()
	if st := <-done; st != http.StatusCreated {
		t.Fatalf("the start after the lock was released: %d", st)
	}
	admitted, refused := atomic.Int32{}, atomic.Int32{}
	admitted.Add(1) // the one above
	var wg sync.WaitGroup
	for i, tok := range tokens[1:] {
		wg.Go(func() {
			switch st := start(i%2, tok); st {
			case http.StatusCreated:
				admitted.Add(1)
			case http.StatusConflict:
				refused.Add(1)
			default:
				t.Errorf("start through replica %d: %d", i%2, st)
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 2 || refused.Load() != participants-2 {
		t.Fatalf("a budget of 2.5 seats on two replicas: %d admitted, %d refused", admitted.Load(), refused.Load())
	}
}
