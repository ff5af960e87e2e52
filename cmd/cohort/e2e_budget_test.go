package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/cost"
	"github.com/cohortdev/cohort/provisioner/gce"
	"github.com/cohortdev/cohort/store/sqlite"
)

// TestE2EGCEBudgetHoldsWhileDown: a class's budget admits two seats of
// three; cohort is killed (-9) with both running and stays down past
// their hard stops, while GCE stops the VMs by their maximum run
// duration; back up, cohort ends the seats and what it meters for the
// class is within the budget. The downtime is played by moving the
// store's times back (the clock of a process cannot be stopped): the
// store then reads as it would after that long down.
func TestE2EGCEBudgetHoldsWhileDown(t *testing.T) {
	t.Parallel()
	fake := startFakeGCE(t)
	ctx := context.Background()
	dataDir := t.TempDir()
	env := gceEnv(t, fake)
	srv := startServer(t, dataDir, env...)
	tok := token(t, dataDir, "teacher@example.com", cohort.RoleInstructor)
	teacher := client.New(srv.url, tok)
	def := cohort.DefaultClass()
	rate, err := cost.Default().Rate("gce", def.Runtime)
	if err != nil {
		t.Fatal(err)
	}
	seatCap := cost.SeatCap(def.Policy, "gce")
	budget := 2*rate.Seat(seatCap) + 1e-6 // two seats to their hard stops, to the cent and below
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "capped", "policy": map[string]any{"budget": budget}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := teacher.AddMembers(ctx, class.ID, []string{"p0@example.org", "p1@example.org", "p2@example.org"}, cohort.MemberParticipant); err != nil {
		t.Fatal(err)
	}
	r, err := teacher.StartAll(ctx, class.ID)
	if err != nil || r.Started != 2 || r.OverBudget != 1 {
		t.Fatalf("start-all under a budget of two seats = %+v, %v", r, err)
	}
	seats, err := teacher.ListSessions(ctx, class.ID)
	if err != nil || len(seats) != 2 {
		t.Fatalf("seats = %d, %v", len(seats), err)
	}
	for _, s := range seats {
		waitState(t, teacher, s.ID, cohort.StateReady)
	}
	srv.kill()

	// Down for the seats' whole cap and 5 minutes more: GCE stopped each
	// VM at its maximum run duration meanwhile.
	down := seatCap + 5*time.Minute
	shiftStore(t, filepath.Join(dataDir, "cohort.db"), down)
	for _, s := range seats {
		fake.RunOut(gce.InstanceName(s.ID))
	}

	srv = startServer(t, dataDir, env...)
	teacher = client.New(srv.url, tok)
	for _, s := range seats {
		waitFor(t, "seat "+s.ID+" to end", func() bool {
			got, err := teacher.GetSession(ctx, s.ID)
			return err == nil && got.EndedAt != nil
		})
	}
	spent, err := teacher.ClassCost(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	if spent.Spent > spent.Budget {
		t.Fatalf("metered %v for a class with a budget of %v, after cohort was down %s", spent.Spent, spent.Budget, down)
	}
	// Not trivially: each seat billed its VM to its cap.
	if vm := 2 * rate.VM * seatCap.Hours(); spent.Spent < vm {
		t.Fatalf("metered %v, less than the two VMs to their caps (%v): the downtime was not metered", spent.Spent, vm)
	}
	waitFor(t, "the disks to be deleted", func() bool { return len(fake.Leftovers()) == 0 })
}

// shiftStore moves every time cohort recorded of its sessions back by d,
// as if that long had passed since.
func shiftStore(t *testing.T, path string, d time.Duration) {
	t.Helper()
	db, err := sql.Open("sqlite", sqlite.DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	us := d.Microseconds()
	_, err = db.Exec(`UPDATE sessions SET created_at = created_at - ?1, state_changed_at = state_changed_at - ?1,
		ready_at = ready_at - ?1, last_activity_at = last_activity_at - ?1, idle_deadline = idle_deadline - ?1,
		hard_deadline = hard_deadline - ?1, check_at = check_at - ?1, warned_at = warned_at - ?1`, us)
	if err != nil {
		t.Fatal(err)
	}
}
