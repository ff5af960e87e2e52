package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/store/cache"
	"github.com/cohortdev/cohort/store/postgres"
	"github.com/cohortdev/cohort/store/postgres/pgtest"
	"github.com/cohortdev/cohort/store/sqlstore"
	"github.com/cohortdev/cohort/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) cohort.Store {
		s, err := postgres.Open(context.Background(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		s.Now = now
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestReplicasShareTheSeats: two stores on one database (two replicas)
// admit participants of one class at once; the class's seats hold, as
// they do with SQLite's one writer. Without serializable transactions,
// both count the same free seats and the class overfills.
func TestReplicasShareTheSeats(t *testing.T) {
	// A class with few seats, and a class starting with all its seats
	// taken at once: everyone admitted, nobody told the database is busy.
	for _, tc := range []struct{ seats, participants int }{{5, 24}, {30, 30}} {
		t.Run(fmt.Sprintf("%d-seats-%d-participants", tc.seats, tc.participants), func(t *testing.T) {
			shareSeats(t, tc.seats, tc.participants)
		})
	}
}

// Participants claiming warm seats through two replicas get each once.
func TestReplicasNeverHandOutAWarmSeatTwice(t *testing.T) {
	replicas, c := twoReplicas(t)
	storetest.ClaimRace(t, []cohort.Store{replicas[0], replicas[1]}, c)
}

// twoReplicas opens two stores on one new database, as two replicas of
// cohort would, with a class made through the first.
func twoReplicas(t *testing.T) ([2]*sqlstore.Store, *cohort.Class) {
	ctx := context.Background()
	url := pgtest.URL(t)
	var replicas [2]*sqlstore.Store
	for i := range replicas {
		s, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		replicas[i] = s
	}
	owner, err := replicas[0].EnsureUser(ctx, "teacher@example.org", cohort.RoleInstructor)
	if err != nil {
		t.Fatal(err)
	}
	c := cohort.DefaultClass()
	c.Name, c.OwnerID = "NLP with spaCy", owner.ID
	if err := replicas[0].CreateClass(ctx, &c); err != nil {
		t.Fatal(err)
	}
	return replicas, &c
}

func shareSeats(t *testing.T, seats, participants int) {
	ctx := context.Background()
	replicas, c := twoReplicas(t)
	var admitted, full atomic.Int32
	var wg sync.WaitGroup
	for i := range participants {
		s := replicas[i%2]
		wg.Go(func() {
			u, err := s.EnsureUser(ctx, fmt.Sprintf("p%d@example.org", i), cohort.RoleParticipant)
			if err != nil {
				t.Error(err)
				return
			}
			sess := &cohort.Session{ID: cohort.NewID("ses"), ClassID: c.ID, UserID: u.ID,
				State: cohort.StateRequested, Driver: "local", NotebookToken: cohort.NewSecret("")}
			_, created, err := s.StartSession(ctx, sess, seats)
			switch {
			case cohort.ErrorCode(err) == cohort.ECONFLICT:
				full.Add(1)
			case err != nil:
				t.Errorf("%s: %v", u.Email, err)
			case created:
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if int(admitted.Load()) != seats || int(full.Load()) != participants-seats {
		t.Fatalf("%d participants for %d seats on two replicas: %d admitted, %d told the class is full", participants, seats, admitted.Load(), full.Load())
	}
	live, err := replicas[1].ListSessions(ctx, cohort.SessionFilter{ClassID: c.ID})
	if err != nil || len(live) != seats {
		t.Fatalf("the class has %d sessions (%v), want %d", len(live), err, seats)
	}
}

// TestReplicasMigrateOnce: replicas starting together on an empty
// database migrate it once; each starts.
func TestReplicasMigrateOnce(t *testing.T) {
	url := pgtest.URL(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
}

// TestUnreachableIsUnavailable: a database that does not answer is a 503
// to clients ("cannot reach the database"), not an internal error; a
// malformed URL names the problem and never repeats the URL, which may
// hold a password.
func TestUnreachableIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres:///cohort?host="+t.TempDir()+"&user=cohort&connect_timeout=2")
	if cohort.ErrorCode(err) != cohort.EUNAVAILABLE || !strings.Contains(err.Error(), "cannot reach the database") {
		t.Fatalf("open with no server: %v (code %q), want unavailable", err, cohort.ErrorCode(err))
	}
	for _, bad := range []string{"mysql://root:s3cret@db/cohort", "postgres://root:s3cret@db:port/cohort"} {
		_, err := postgres.Open(ctx, bad)
		if cohort.ErrorCode(err) != cohort.EINVALID || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("open %s: %v, want invalid, without the password", bad, err)
		}
	}
}

// TestHoldIsSharedByReplicas: a lock one replica holds makes another's
// Hold of the same name wait (here until its context ends); other names
// are free; released, it is the other's.
func TestHoldIsSharedByReplicas(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	release, err := a.Hold(ctx, "class cls_1")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := b.Hold(short, "class cls_1"); err == nil {
		t.Fatal("a second replica took a lock the first holds")
	}
	other, err := b.Hold(ctx, "class cls_2")
	if err != nil {
		t.Fatal(err)
	}
	other()
	release()
	again, err := b.Hold(ctx, "class cls_1")
	if err != nil {
		t.Fatalf("after its release: %v", err)
	}
	again()
}

// TestCachesHearEachOther: each replica keeps hot answers in its cache; a
// token revoked through one replica is refused by the other at once (its
// cache here keeps answers for an hour), told through Postgres.
func TestCachesHearEachOther(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.URL(t)
	var caches [2]*cache.Store
	for i := range caches {
		s, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		db, err := postgres.OpenDB(url, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		n := postgres.NewNotifier(url, db, nil)
		caches[i] = cache.New(s, cache.Options{TTL: time.Hour, Publish: n.Publish})
		go n.Run(ctx, caches[i].Apply)
		select {
		case <-n.Listening():
		case <-time.After(10 * time.Second):
			t.Fatal("the notifier never listened")
		}
	}
	u, err := caches[0].EnsureUser(ctx, "ada@example.org", cohort.RoleParticipant)
	if err != nil {
		t.Fatal(err)
	}
	tok := &cohort.Token{ID: cohort.NewID("tok"), UserID: u.ID, Name: "t"}
	if err := caches[0].CreateToken(ctx, tok, "hash"); err != nil {
		t.Fatal(err)
	}
	for _, c := range caches { // both keep the answer now
		if _, err := c.UserByTokenHash(ctx, "hash"); err != nil {
			t.Fatal(err)
		}
	}
	if err := caches[0].RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := caches[1].UserByTokenHash(ctx, "hash"); err != nil {
			break // refused
		}
		if time.Now().After(deadline) {
			t.Fatal("the other replica still admits a token revoked 10 s ago")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
