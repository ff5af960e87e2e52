package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
)

func TestE2ECLI(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	cleanupNotebooks(t, dataDir)
	prices := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(prices, []byte(`{"local_hour": 0.60}`), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dataDir, "COHORT_PRICES="+prices)
	instructor := token(t, dataDir, "ada@example.com", cohort.RoleInstructor)
	env := append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir(), "COHORT_URL="+srv.url, "COHORT_TOKEN="+instructor)
	runWith := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	run := func(args ...string) (string, error) { return runWith(env, args...) }
	out, err := run("class", "create", "--name", "CLI class", "--seats", "3", "--idle-timeout", "45m", "--budget", "50", "--json")
	if err != nil {
		t.Fatalf("class create: %v\n%s", err, out)
	}
	var class cohort.Class
	if err := json.Unmarshal([]byte(out), &class); err != nil || class.Policy.Seats != 3 || class.Policy.IdleTimeout.D() != 45*time.Minute {
		t.Fatalf("class create --json = %s (%v)", out, err)
	}
	if out, err := run("class", "create", "--name", "bad", "--gpu-type", "nvidia-rtx-9090"); err == nil || !strings.Contains(out, "unknown GPU type") || !strings.Contains(out, "runtime.gpu_type") {
		t.Fatalf("class create with a bad GPU = %v\n%s", err, out)
	}
	if out, err := run("class", "list"); err != nil || !strings.Contains(out, "CLI class") || !strings.Contains(out, "SEATS") {
		t.Fatalf("class list = %v\n%s", err, out)
	}
	out, err = run("session", "start", "--class", class.ID, "--wait")
	if err != nil || !strings.Contains(out, "notebook ready") || !strings.Contains(out, "/_cohort/open?code=cohortcode_") || !strings.Contains(out, "provisioning") {
		t.Fatalf("session start --wait = %v\n%s", err, out)
	}
	if out, err := run("session", "list"); err != nil || !strings.Contains(out, "ready") {
		t.Fatalf("session list = %v\n%s", err, out)
	}
	out, err = run("session", "list", "--json")
	var sessions []cohort.Session
	if err != nil || json.Unmarshal([]byte(out), &sessions) != nil || len(sessions) != 1 {
		t.Fatalf("session list --json = %v\n%s", err, out)
	}
	if out, err := run("session", "stop", sessions[0].ID); err != nil || !strings.Contains(out, "stopping") {
		t.Fatalf("session stop = %v\n%s", err, out)
	}
	if out, err := run("session", "stop", "ses_missing"); err == nil || !strings.Contains(out, "not found") {
		t.Fatalf("stop of an unknown session = %v\n%s", err, out)
	}
	if out, err := run("class", "enroll", class.ID, "--email", "ada@example.org"); err != nil {
		t.Fatalf("class enroll = %v\n%s", err, out)
	}
	if out, err := run("class", "start-all", class.ID); err != nil || !strings.Contains(out, "started 1, already running 0, without a seat 0") {
		t.Fatalf("class start-all = %v\n%s", err, out)
	}
	// --json speaks the API's names.
	out, err = run("class", "start-all", class.ID, "--json")
	var again map[string]int
	if err != nil || json.Unmarshal([]byte(out), &again) != nil || again["started"] != 0 || again["running"] != 1 {
		t.Fatalf("class start-all --json = %v\n%s", err, out)
	}
	if out, err := run("class", "stop-all", class.ID); err != nil || !strings.Contains(out, "stopping 1 session\n") {
		t.Fatalf("class stop-all = %v\n%s", err, out)
	}
	// A stopping seat still commits its stop; the budget below is read
	// once nothing runs.
	teacher := client.New(srv.url, instructor)
	waitFor(t, "the class's seats to stop", func() bool {
		seats, err := teacher.ListSessions(context.Background(), class.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range seats {
			if s.State != cohort.StateStopped && s.State != cohort.StateFailed {
				return false
			}
		}
		return true
	})
	// The price file's hourly price of a local session meters both.
	out, err = run("class", "cost", class.ID)
	if err != nil || !strings.Contains(out, "$0.60 per seat-hour, $1.80 an hour for all 3 seats") ||
		!strings.Contains(out, "at most $28.80") || !strings.Contains(out, "ada@example.com") || !strings.Contains(out, "ada@example.org") ||
		!strings.Contains(out, "Budget:        $50.00; committed $0.0") {
		t.Fatalf("class cost = %v\n%s", err, out)
	}
	out, err = run("class", "cost", class.ID, "--json")
	var spend cohort.ClassCost
	if err != nil || json.Unmarshal([]byte(out), &spend) != nil || spend.SeatHour != 0.60 || spend.Spent <= 0 || len(spend.Participants) != 2 {
		t.Fatalf("class cost --json = %v\n%s", err, out)
	}
	// The month's spend is an admin's; an instructor is told so.
	if out, err := run("spend"); err == nil || !strings.Contains(out, "admin") {
		t.Fatalf("spend as an instructor = %v\n%s", err, out)
	}
	admin := append(slices.Clone(env), "COHORT_TOKEN="+token(t, dataDir, "root@example.com", cohort.RoleAdmin))
	out, err = runWith(admin, "spend", "--set-budget", "100")
	if err != nil || !strings.Contains(out, "Budget:        $100.00 a month") || !strings.Contains(out, class.ID) || !strings.Contains(out, "CLI class") {
		t.Fatalf("spend --set-budget 100 = %v\n%s", err, out)
	}
	out, err = runWith(admin, "spend", "--json")
	var month cohort.MonthSpend
	if err != nil || json.Unmarshal([]byte(out), &month) != nil || month.Spent <= 0 || month.Budget != 100 || len(month.Classes) != 1 || month.Classes[0].ClassID != class.ID {
		t.Fatalf("spend --json = %v\n%s", err, out)
	}
	if out, err := runWith(admin, "spend", "--month", "December"); err == nil || !strings.Contains(out, "not a month") {
		t.Fatalf("spend --month December = %v\n%s", err, out)
	}
	env = append(env, "COHORT_TOKEN=")
	if out, err := run("class", "list"); err == nil || !strings.Contains(out, "not signed in") {
		t.Fatalf("without a token = %v\n%s", err, out)
	}
}

// TestE2EBadPriceFileRefusesToStart: metering at zero would hide the
// spend, so a price file that does not parse stops cohort at start,
// saying where.
func TestE2EBadPriceFileRefusesToStart(t *testing.T) {
	t.Parallel()
	prices := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(prices, []byte("{\n  \"regions\": {\"us-central1\": {\"gpus\": {\"nvidia-tesla-t4\": {\"on_demand\": -0.35}}}}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--prices", prices)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "regions.us-central1.gpus.nvidia-tesla-t4.on_demand: -0.35 is negative") {
		t.Fatalf("serve with a bad price file = %v\n%s", err, out)
	}
}
