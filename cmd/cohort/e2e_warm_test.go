package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
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
