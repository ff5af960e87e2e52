package cache_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/store/cache"
	"github.com/cohortdev/cohort/store/sqlite"
	"github.com/cohortdev/cohort/store/storetest"
)

// The cached store passes the same conformance suite as the store it
// fronts: every revoke, stop, roster change and expiry the suite checks is
// seen through the cache at once.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) cohort.Store {
		return open(t, now)
	})
}

func open(t *testing.T, now func() time.Time) *cache.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "cohort.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Now = now
	t.Cleanup(func() { s.Close() })
	return cache.New(s, cache.Options{Now: now, TTL: time.Minute})
}

// TestAnswersAreCopies: a caller that changes what it got (as the API
// does before writing a session back) changes nothing for others.
func TestAnswersAreCopies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := open(t, time.Now)
	u, _ := c.EnsureUser(ctx, "ada@example.com", cohort.RoleInstructor)
	class := cohort.DefaultClass()
	class.ID, class.Name, class.OwnerID = cohort.NewID("cls"), "NLP", u.ID
	class.Materials = &cohort.Materials{Repo: "https://example.org/w.git", Private: true, Credential: "v1.sealed", Version: "git-1"}
	if err := c.CreateClass(ctx, &class); err != nil {
		t.Fatal(err)
	}
	got, _ := c.GetClass(ctx, class.ID)
	got.Runtime.Zones[0], got.Name = "mars-north1-a", "changed"
	got.Materials.Credential = "v1.other"
	again, _ := c.GetClass(ctx, class.ID)
	if again.Runtime.Zones[0] != class.Runtime.Zones[0] || again.Name != "NLP" || again.Materials.Credential != "v1.sealed" {
		t.Fatalf("a caller's change reached the cache: %+v", again)
	}
}

// TestWritesElsewhereAreSeenWithinTTL: a write that does not go through the
// cache (another process on the same database) is seen once the kept
// answer is older than TTL.
func TestWritesElsewhereAreSeenWithinTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cohort.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := cache.New(s, cache.Options{Now: clock, TTL: 5 * time.Second})
	u, _ := s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant)
	tok := &cohort.Token{ID: cohort.NewID("tok"), UserID: u.ID, Name: "t"}
	if err := s.CreateToken(ctx, tok, "hash"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserByTokenHash(ctx, "hash"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, tok.ID); err != nil { // behind the cache's back
		t.Fatal(err)
	}
	if _, err := c.UserByTokenHash(ctx, "hash"); err != nil {
		t.Fatalf("within TTL the kept answer stands (this is what TTL bounds): %v", err)
	}
	now = now.Add(5 * time.Second)
	if _, err := c.UserByTokenHash(ctx, "hash"); cohort.ErrorCode(err) != cohort.EUNAUTHORIZED {
		t.Fatalf("after TTL, a token revoked elsewhere = %v, want refused", err)
	}
	// Through the cache, at once.
	tok2 := &cohort.Token{ID: cohort.NewID("tok"), UserID: u.ID, Name: "t2"}
	s.CreateToken(ctx, tok2, "hash2")
	c.UserByTokenHash(ctx, "hash2")
	if err := c.RevokeToken(ctx, tok2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserByTokenHash(ctx, "hash2"); cohort.ErrorCode(err) != cohort.EUNAUTHORIZED {
		t.Fatalf("a token revoked through the cache = %v, want refused at once", err)
	}
}

// TestFreshSeesOtherReplicas: the reconciler's view reads sessions from the
// database (another replica's stop is seen at once, not after TTL), and
// its writes still reach the cache's readers at once.
func TestFreshSeesOtherReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cohort.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := cache.New(s, cache.Options{TTL: time.Hour})
	u, _ := s.EnsureUser(ctx, "ada@example.com", cohort.RoleInstructor)
	class := cohort.DefaultClass()
	class.Name, class.OwnerID = "NLP", u.ID
	if err := s.CreateClass(ctx, &class); err != nil {
		t.Fatal(err)
	}
	sess, _, err := c.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: class.ID, UserID: u.ID,
		State: cohort.StateReady, Driver: "local", NotebookToken: "t"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSession(ctx, sess.ID); err != nil { // now kept
		t.Fatal(err)
	}
	other, _ := s.GetSession(ctx, sess.ID) // another replica stops it
	other.State = cohort.StateStopping
	if err := s.UpdateSession(ctx, other, nil); err != nil {
		t.Fatal(err)
	}
	fresh := c.Fresh()
	got, err := fresh.GetSession(ctx, sess.ID)
	if err != nil || got.State != cohort.StateStopping {
		t.Fatalf("the fresh view reads %v (%v), want the other replica's stopping", got.State, err)
	}
	got.State = cohort.StateStopped
	if err := fresh.UpdateSession(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
	if cached, _ := c.GetSession(ctx, sess.ID); cached.State != cohort.StateStopped {
		t.Fatalf("after a write through the fresh view the cache answers %s, want stopped", cached.State)
	}
}
