package cost_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestRateOfTheDefaultClass(t *testing.T) {
	t.Parallel()
	rt := cohort.DefaultClass().Runtime // n1-standard-4, one T4, 100 GB, us-central1
	r, err := cost.Default().Rate("gce", rt)
	if err != nil {
		t.Fatal(err)
	}
	if !near(r.VM, 0.189999+0.35) || !near(r.Disk, 100*0.10/730) {
		t.Fatalf("rate %+v, want VM 0.539999/h and disk 10/730 per hour", r)
	}
	rt.Spot = true
	if r, _ := cost.Default().Rate("gce", rt); !near(r.VM, 0.040+0.14) {
		t.Fatalf("spot rate %+v", r)
	}
	rt.Spot, rt.MachineType, rt.GPUType = false, "g2-standard-4", "nvidia-l4"
	if r, _ := cost.Default().Rate("gce", rt); !near(r.VM, 0.706832) {
		t.Fatalf("G2 rate %+v: its L4 is in the machine's price", r)
	}
	rt.Zones = []string{"asia-east1-a"}
	if _, err := cost.Default().Rate("gce", rt); cohort.ErrorCode(err) != cohort.EUNAVAILABLE || !strings.Contains(err.Error(), `no prices for region "asia-east1"`) {
		t.Fatalf("a region without prices = %v", err)
	}
	rt.Zones = []string{"us-central1-a", "asia-east1-a"}
	if _, err := cost.Default().Rate("gce", rt); err == nil {
		t.Fatal("a class with a zone in a region without prices was priced by its first zone")
	}
	if r, err := cost.Default().Rate("local", rt); err != nil || r.Hour() != 0 {
		t.Fatalf("local rate %+v, %v; want 0 unless configured", r, err)
	}
}

func TestMeterBillsPerSecondWithAMinute(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	rate := cost.Rate{VM: 0.54, Disk: 0.01}
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	for _, tt := range []struct {
		name     string
		s        cohort.Session
		now      time.Time
		vm, disk time.Duration
	}{
		{"30 s: a minute of VM", cohort.Session{State: cohort.StateStopped, CreatedAt: t0, EndedAt: at(30 * time.Second)}, t0.Add(time.Hour), time.Minute, 30 * time.Second},
		{"ended", cohort.Session{State: cohort.StateStopped, CreatedAt: t0, EndedAt: at(90*time.Minute + 1500*time.Millisecond)}, t0.Add(5 * time.Hour), 90*time.Minute + 2*time.Second, 90*time.Minute + 2*time.Second},
		{"running", cohort.Session{State: cohort.StateReady, CreatedAt: t0}, t0.Add(2 * time.Hour), 2 * time.Hour, 2 * time.Hour},
		{"waiting for a seat", cohort.Session{State: cohort.StateRequested, CreatedAt: t0}, t0.Add(2 * time.Hour), 0, 0},
		// GCE stopped the VM at its maximum run duration while cohort was
		// down; cohort deleted the disk 3 h later.
		{"a disk that outlives its VM", cohort.Session{State: cohort.StateStopped, Driver: "gce", BillCap: cohort.Duration(2 * time.Hour), CreatedAt: t0, EndedAt: at(5 * time.Hour)},
			t0.Add(6 * time.Hour), 2 * time.Hour, 5 * time.Hour},
		{"a local notebook is not capped", cohort.Session{State: cohort.StateStopped, Driver: "local", BillCap: cohort.Duration(2 * time.Hour), CreatedAt: t0, EndedAt: at(5 * time.Hour)},
			t0.Add(6 * time.Hour), 5 * time.Hour, 5 * time.Hour},
	} {
		b := cost.Meter(&tt.s, rate, tt.now)
		if b.VM != tt.vm || b.Disk != tt.disk || !near(b.Amount, rate.VM*tt.vm.Hours()+rate.Disk*tt.disk.Hours()) {
			t.Errorf("%s: %+v, want VM %s, disk %s", tt.name, b, tt.vm, tt.disk)
		}
	}
}

func TestEstimateIsTheHardStop(t *testing.T) {
	t.Parallel()
	p := cohort.DefaultClass().Policy // 30 seats, 12 h, 4 h of extensions
	e := cost.EstimateClass(p, cost.Rate{VM: 0.5, Disk: 0.05}, 16*time.Hour+30*time.Minute)
	if !near(e.Max, 30*(0.5*16.5+0.05*(16.5+cost.StopAllowance.Hours()))) || !near(e.Typical, 30*0.55*12) || !near(e.AllSeatsHour, 30*0.55) {
		t.Fatalf("estimate %+v", e)
	}
	start := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	end := start.Add(3 * time.Hour)
	p.StartsAt, p.EndsAt = &start, &end
	if e := cost.EstimateClass(p, cost.Rate{VM: 0.5, Disk: 0.05}, 0); !near(e.Typical, 30*0.55*3) {
		t.Fatalf("typical of a 3-hour class = %v", e.Typical)
	}
}

func write(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPriceFileOverrides(t *testing.T) {
	t.Parallel()
	tbl, err := cost.Load(write(t, `{"regions": {"us-central1": {"gpus": {"nvidia-tesla-t4": {"on_demand": 0.30, "spot": 0.12}}},
		"europe-west4": {"machines": {"n1-standard-4": {"on_demand": 0.21, "spot": 0.05}}, "gpus": {"nvidia-tesla-t4": {"on_demand": 0.37, "spot": 0.15}},
		"disks": {"pd-balanced": 0.11}}}, "local_hour": 0.05}`))
	if err != nil {
		t.Fatal(err)
	}
	rt := cohort.DefaultClass().Runtime
	if r, _ := tbl.Rate("gce", rt); !near(r.VM, 0.189999+0.30) {
		t.Errorf("negotiated T4 price not applied: %+v", r)
	}
	rt.Zones = []string{"europe-west4-a"}
	if r, err := tbl.Rate("gce", rt); err != nil || !near(r.VM, 0.21+0.37) || !near(r.Disk, 100*0.11/730) {
		t.Errorf("a region the file adds: %+v, %v", r, err)
	}
	rt.Zones = []string{"us-central1-a", "europe-west4-a"}
	if r, _ := tbl.Rate("gce", rt); !near(r.VM, 0.21+0.37) {
		t.Errorf("a class over two regions is priced at %+v, want the dearer one's", r)
	}
	if r, _ := tbl.Rate("local", rt); r.VM != 0.05 {
		t.Errorf("local hour %v", r.VM)
	}
	if !strings.Contains(tbl.Source, "with the prices of") {
		t.Errorf("source %q does not say a file changed the prices", tbl.Source)
	}
	eur, err := cost.Load(write(t, `{"currency": "EUR", "checked": "2026-12-01", "source": "our contract", "regions": {"europe-west4": {
		"machines": {"n1-standard-4": {"on_demand": 0.19, "spot": 0.05}}, "gpus": {"nvidia-tesla-t4": {"on_demand": 0.33, "spot": 0.13}}, "disks": {"pd-balanced": 0.10}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eur.Rate("gce", cohort.DefaultClass().Runtime); err == nil || eur.Currency != "EUR" {
		t.Errorf("a table in another currency kept the embedded us-central1 prices (%v, %s)", err, eur.Currency)
	}
}

func TestBadPriceFiles(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct{ body, want string }{
		"syntax":           {"{\n  \"regions\": {\n    \"us-central1\": {,}\n  }\n}", "line 3"},
		"unknown field":    {`{"regoins": {}}`, `unknown field "regoins"`},
		"negative":         {`{"regions": {"us-central1": {"gpus": {"nvidia-tesla-t4": {"on_demand": -1}}}}}`, "regions.us-central1.gpus.nvidia-tesla-t4.on_demand: -1 is negative"},
		"unknown region":   {`{"regions": {"Moon": {}}}`, "regions.Moon: not a region name"},
		"unknown machine":  {`{"regions": {"us-central1": {"machines": {"n9-mega": {"on_demand": 1}}}}}`, "regions.us-central1.machines.n9-mega: unknown machine type"},
		"unknown GPU":      {`{"regions": {"us-central1": {"gpus": {"nvidia-h9000": {"on_demand": 1}}}}}`, "regions.us-central1.gpus.nvidia-h9000: unknown GPU"},
		"a string price":   {`{"regions": {"us-central1": {"disks": {"pd-balanced": "cheap"}}}}`, "line 1"},
		"other currency":   {`{"currency": "EUR", "regions": {}}`, "a table in EUR replaces the embedded one"},
		"currency name":    {`{"currency": "euro"}`, `currency "euro" is not a three-letter code`},
		"negative local":   {`{"local_hour": -0.5}`, "local_hour -0.5 is negative"},
		"other disk types": {`{"regions": {"us-central1": {"disks": {"pd-ssd": 0.17}}}}`, "regions.us-central1.disks.pd-ssd"},
		"spot left out":    {`{"regions": {"us-central1": {"gpus": {"nvidia-tesla-t4": {"on_demand": 0.30}}}}}`, "regions.us-central1.gpus.nvidia-tesla-t4.spot: missing or 0"},
		"empty":            {"", "empty"},
		"null":             {"null", "empty"},
		"two values":       {"{}\n{}", "line 2: more than one JSON value"},
	} {
		_, err := cost.Load(write(t, tt.body))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tt.want)
		}
	}
	if _, err := cost.Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing price file was accepted")
	}
}

func TestMoney(t *testing.T) {
	t.Parallel()
	if got := cost.Money(12.345, "USD"); got != "$12.35" && got != "$12.34" {
		t.Errorf("Money = %q", got)
	}
	if got := cost.Money(3, "EUR"); got != "3.00 EUR" {
		t.Errorf("Money = %q", got)
	}
}

// TestCommittedCountsSeatsToTheirCap: an ended session counts what it
// cost, a stopping one that and the stop allowance, any other what it can
// cost to its cap, at the terms fixed when it was admitted if it has them.
func TestCommittedCountsSeatsToTheirCap(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	ended := t0.Add(time.Hour)
	rate := cost.Rate{VM: 1, Disk: 0}
	now := t0.Add(2 * time.Hour)
	tenMin := now.Add(10 * time.Minute)
	for _, tt := range []struct {
		name string
		s    cohort.Session
		want float64
	}{
		{"ended: 1 h spent", cohort.Session{State: cohort.StateStopped, CreatedAt: t0, EndedAt: &ended}, 1},
		{"failed without an end time: what it ran", cohort.Session{State: cohort.StateFailed, CreatedAt: t0}, 2},
		{"stopping: 1 h so far and the allowance", cohort.Session{State: cohort.StateStopping, CreatedAt: t0.Add(time.Hour)}, 1 + cost.StopAllowance.Hours()},
		{"ready: to its 5 h cap", cohort.Session{State: cohort.StateReady, CreatedAt: t0.Add(time.Hour)}, 5},
		{"waiting for a seat: its cap too", cohort.Session{State: cohort.StateRequested, CreatedAt: now}, 5},
		{"past its cap: what it ran", cohort.Session{State: cohort.StateReady, CreatedAt: t0.Add(-5 * time.Hour)}, 7},
		{"to be stopped for the budget in 10 min: to then and the allowance", cohort.Session{State: cohort.StateReady, CreatedAt: t0, BudgetStopAt: &tenMin}, 2 + (10*time.Minute + cost.StopAllowance).Hours()},
		{"admitted at other terms: those", cohort.Session{State: cohort.StateReady, CreatedAt: t0, BillVM: 3, BillCap: cohort.Duration(10 * time.Hour)}, 30},
	} {
		if got := cost.Committed(&tt.s, rate, now, 5*time.Hour); !near(got, tt.want) {
			t.Errorf("%s: committed %v, want %v", tt.name, got, tt.want)
		}
	}
	p := cohort.DefaultClass().Policy
	if got := cost.SeatCap(p, "gce"); got != 12*time.Hour+4*time.Hour+cohort.GCEStartTimeout+cohort.HardStopMargin {
		t.Errorf("GCE seat cap %s", got)
	}
	if got := cost.SeatCap(p, "local"); got != 16*time.Hour {
		t.Errorf("local seat cap %s", got)
	}
}

// TestByMonth: a session that runs over the turn of a month bills each
// month its share, the VM's minimum minute in the month it began, and
// the shares add up to what it cost.
func TestByMonth(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	end := start.Add(3 * time.Hour)
	s := &cohort.Session{State: cohort.StateStopped, Driver: "gce", CreatedAt: start, EndedAt: &end, BillVM: 1, BillDisk: 0.5, BillCap: cohort.Duration(2 * time.Hour)}
	got := cost.ByMonth(s, cost.Rate{VM: 1, Disk: 0.5}, end)
	// November: 1 h of VM and disk; December: 1 h of VM (its cap) and 2 h of disk.
	if len(got) != 2 || !near(got["2026-11"], 1.5) || !near(got["2026-12"], 1+2*0.5) {
		t.Fatalf("by month %v", got)
	}
	if total := got["2026-11"] + got["2026-12"]; !near(total, cost.Meter(s, cost.Rate{VM: 1, Disk: 0.5}, end).Amount) {
		t.Fatalf("months add up to %v, the session cost %v", total, cost.Meter(s, cost.Rate{VM: 1, Disk: 0.5}, end).Amount)
	}
	short := start.Add(20 * time.Second)
	s = &cohort.Session{State: cohort.StateStopped, CreatedAt: start, EndedAt: &short}
	if got := cost.ByMonth(s, cost.Rate{VM: 60}, end); len(got) != 1 || !near(got["2026-11"], 1) {
		t.Fatalf("20 s session: %v, want a minute in November", got)
	}
	running := &cohort.Session{State: cohort.StateReady, CreatedAt: start}
	if got := cost.ByMonth(running, cost.Rate{VM: 1}, start.Add(2*time.Hour)); len(got) != 2 || !near(got["2026-12"], 1) {
		t.Fatalf("a session running into December, by month: %v", got)
	}
	for _, bad := range []string{"2026-13", "2026-1", "december", ""} {
		if _, err := cost.ParseMonth(bad); cohort.ErrorCode(err) != cohort.EINVALID {
			t.Errorf("month %q: %v", bad, err)
		}
	}
}

// TestRunLeft: a VM made late (its seat waited past the start timeout)
// may run only what is left of its cap, counted from the request.
func TestRunLeft(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	s := &cohort.Session{Driver: "gce", CreatedAt: t0, BillCap: cohort.Duration(5*time.Hour + cohort.GCEStartTimeout + cohort.HardStopMargin)}
	for _, tt := range []struct {
		now  time.Time
		want time.Duration
	}{
		{t0.Add(time.Minute), 5 * time.Hour},
		{t0.Add(cohort.GCEStartTimeout), 5 * time.Hour},
		{t0.Add(cohort.GCEStartTimeout + time.Hour), 4 * time.Hour},
		{t0.Add(24 * time.Hour), time.Minute},
	} {
		if got := cost.RunLeft(s, tt.now); got != tt.want {
			t.Errorf("made %s after the request: %s, want %s", tt.now.Sub(t0), got, tt.want)
		}
	}
	local := &cohort.Session{Driver: "local", CreatedAt: t0, BillCap: cohort.Duration(5 * time.Hour)}
	if got := cost.RunLeft(local, t0.Add(24*time.Hour)); got != 5*time.Hour {
		t.Errorf("local: %s", got)
	}
}
