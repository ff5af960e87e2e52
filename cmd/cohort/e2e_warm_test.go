package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/store/postgres/pgtest"
)

// TestE2EWarmSeatsLocal: 10 warm seats of real notebooks, 10 participants
// starting at once: each Start answers with a ready notebook, which runs
// code through the proxy with the token its claim gave it; none is
// handed out twice; nothing is warmed for nobody; stop-all ends them.
func TestE2EWarmSeatsLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	srv := startServer(t, dataDir)
	teacher := client.New(srv.url, token(t, dataDir, "teacher@example.com", cohort.RoleInstructor))
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "spaCy NER", "policy": map[string]any{"seats": 12}})
	if err != nil {
		t.Fatal(err)
	}
	var emails []string
	participants := make([]*client.Client, 10)
	for i := range participants {
		emails = append(emails, fmt.Sprintf("p%d@example.com", i))
		participants[i] = client.New(srv.url, token(t, dataDir, emails[i], cohort.RoleParticipant))
	}
	if _, err := teacher.AddMembers(ctx, class.ID, emails, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	warming := time.Now()
	if _, err := teacher.WarmNow(ctx, class.ID, 10, false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		p, err := teacher.WarmPool(ctx, class.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Ready == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes the pool is %+v, want 10 ready", p)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("10 warm seats ready in %s", time.Since(warming).Round(time.Millisecond))

	var wg sync.WaitGroup
	got := make([]*client.Session, len(participants))
	took := make([]time.Duration, len(participants))
	for i, p := range participants {
		wg.Go(func() {
			start := time.Now()
			s, created, err := p.StartSession(ctx, class.ID)
			took[i] = time.Since(start)
			if err != nil || !created {
				t.Errorf("p%d: start = %v, created %v", i, err, created)
			}
			got[i] = s
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[string]bool{}
	for i, s := range got {
		if s.State != cohort.StateReady || s.URL == "" || s.ClaimedAt == nil || seen[s.ID] {
			t.Fatalf("p%d: %s, claimed %v, url %q (or handed out twice); want a ready warm seat in the answer to Start", i, s.State, s.ClaimedAt, s.URL)
		}
		seen[s.ID] = true
	}
	t.Logf("10 participants starting at once: each answered with a ready notebook in %s", took)

	out := runKernel(t, srv.notebook(got[3].ID), participants[3].Token, "print(6*7)")
	if out != "42\n" {
		t.Fatalf("kernel printed %q, want 42", out)
	}
	if n := notebookProcs(t, dataDir, got[3].ID); n != 1 {
		t.Fatalf("%d notebook servers for a claimed seat, want 1 (the warm one, not restarted)", n)
	}
	p, err := teacher.WarmPool(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Claimed != 10 || p.Ready+p.Starting != 0 || p.Target != 0 {
		t.Fatalf("pool after everyone arrived: %+v, want 10 claimed and nothing warm", p)
	}
	if _, err := teacher.StopAll(ctx, class.ID); err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		waitState(t, teacher, s.ID, cohort.StateStopped)
		if n := notebookProcs(t, dataDir, s.ID); n != 0 {
			t.Fatalf("%d processes of %s survive stop-all", n, s.ID)
		}
	}
}

// TestE2EReplicasClaimWarmSeats: two replicas on one Postgres; 8
// participants start at once, half through each, in a class with 4 warm
// seats. No seat is handed out twice, 4 answers are ready warm seats,
// and every participant has a seat of their own.
func TestE2EReplicasClaimWarmSeats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	replicas := []*server{startServer(t, dataDir, "COHORT_DATABASE="+url), startServer(t, dataDir, "COHORT_DATABASE="+url)}
	teacher := client.New(replicas[0].url, mintOn(t, url, "teacher@example.org", cohort.RoleInstructor))
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "warm replicas", "policy": map[string]any{"seats": 12}})
	if err != nil {
		t.Fatal(err)
	}
	var roster []string
	participants := make([]*client.Client, 8)
	for i := range participants {
		roster = append(roster, fmt.Sprintf("p%d@example.org", i))
		participants[i] = client.New(replicas[i%2].url, mintOn(t, url, roster[i], cohort.RoleParticipant))
	}
	if _, err := teacher.AddMembers(ctx, class.ID, roster, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	if _, err := teacher.WarmNow(ctx, class.ID, 4, false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 warm seats ready", func() bool {
		p, err := teacher.WarmPool(ctx, class.ID)
		return err == nil && p.Ready == 4
	})
	var wg sync.WaitGroup
	got := make([]*client.Session, len(participants))
	for i, p := range participants {
		wg.Go(func() {
			s, created, err := p.StartSession(ctx, class.ID)
			if err != nil || !created {
				t.Errorf("p%d: %v, created %v", i, err, created)
			}
			got[i] = s
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen, ready := map[string]int{}, 0
	for i, s := range got {
		if j, dup := seen[s.ID]; dup {
			t.Fatalf("seat %s handed to p%d and p%d", s.ID, j, i)
		}
		seen[s.ID] = i
		if s.State == cohort.StateReady && s.ClaimedAt != nil {
			ready++
		}
		if mine, err := participants[i].GetSession(ctx, s.ID); err != nil || mine.UserID != got[i].UserID {
			t.Fatalf("p%d cannot see their seat %s: %v", i, s.ID, err)
		}
	}
	if ready != 4 {
		t.Fatalf("%d participants got a ready warm seat, want 4", ready)
	}
	if _, err := teacher.StopAll(ctx, class.ID); err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		waitState(t, teacher, s.ID, cohort.StateStopped)
	}
}
