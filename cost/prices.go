// Package cost says what sessions cost: a price table per region
// (embedded, and overridden by a file), the hourly rate of a class's
// runtime, what a session has cost from the times cohort recorded, and
// the most a class can cost.
package cost

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/cohortdev/cohort/catalog"
)

//go:embed prices.json
var embedded []byte

// Price is an hourly price, on demand and spot.
type Price struct {
	OnDemand float64 `json:"on_demand"`
	Spot     float64 `json:"spot"`
}

// Region holds a region's prices: machine types and GPUs per hour,
// disks per GB-month by disk type.
type Region struct {
	Machines map[string]Price   `json:"machines"`
	GPUs     map[string]Price   `json:"gpus"`
	Disks    map[string]float64 `json:"disks"`
}

// Table is a price list in one currency.
type Table struct {
	Currency string `json:"currency"`
	// Checked is when the prices were taken from Source.
	Checked string            `json:"checked"`
	Source  string            `json:"source"`
	Regions map[string]Region `json:"regions"`
	// LocalHour is what an hour of a session on this machine (the local
	// driver) costs; 0 unless a file says otherwise.
	LocalHour float64 `json:"local_hour"`
}

// Default returns the embedded table.
func Default() *Table {
	t, err := parse(bytes.NewReader(embedded), "the embedded price table")
	if err != nil {
		panic(err) // tested: the embedded table parses
	}
	return t
}

// Load returns the embedded table with a file's prices over it: a price
// the file names replaces the embedded one, the rest stay. A file in
// another currency replaces the whole table. path "" is the embedded
// table alone.
func Load(path string) (*Table, error) {
	t := Default()
	if path == "" {
		return t, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("price file: %w", err)
	}
	defer f.Close()
	over, err := parse(f, path)
	if err != nil {
		return nil, err
	}
	if over.Currency != "" && over.Currency != t.Currency {
		if over.Checked == "" || over.Source == "" {
			return nil, fmt.Errorf("%s: a table in %s replaces the embedded one (in %s): it needs its own checked and source", path, over.Currency, t.Currency)
		}
		return over, nil
	}
	for name, r := range over.Regions {
		base := t.Regions[name]
		base.Machines = merge(base.Machines, r.Machines)
		base.GPUs = merge(base.GPUs, r.GPUs)
		base.Disks = merge(base.Disks, r.Disks)
		t.Regions[name] = base
	}
	t.LocalHour = over.LocalHour // the embedded table has none
	if over.Checked != "" || over.Source != "" {
		t.Checked, t.Source = over.Checked, over.Source
	} else {
		t.Source += "; with the prices of " + path
	}
	return t, nil
}

func merge[V any](base, over map[string]V) map[string]V {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]V{}
	}
	maps.Copy(out, over)
	return out
}

var (
	regionName = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+$`)
	currency   = regexp.MustCompile(`^[A-Z]{3}$`)
)

// parse reads a table and checks it: unknown fields, regions, machine
// types, GPUs or disk types, and negative prices are errors naming where.
func parse(r io.Reader, name string) (*Table, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	var t Table
	if len(bytes.TrimSpace(src)) == 0 || bytes.Equal(bytes.TrimSpace(src), []byte("null")) {
		return nil, fmt.Errorf("%s: empty; a price file is a JSON object (docs/cost.md)", name)
	}
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("%s: %s", name, describe(src, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: line %d: more than one JSON value", name, 1+bytes.Count(src[:dec.InputOffset()], []byte("\n")))
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if t.Currency != "" && !currency.MatchString(t.Currency) {
		bad("currency %q is not a three-letter code such as USD", t.Currency)
	}
	if t.LocalHour < 0 {
		bad("local_hour %v is negative", t.LocalHour)
	}
	for _, rn := range sorted(t.Regions) {
		reg := t.Regions[rn]
		if !regionName.MatchString(rn) {
			bad("regions.%s: not a region name such as us-central1", rn)
		}
		for _, m := range sorted(reg.Machines) {
			if _, ok := catalog.LookupMachineType(m); !ok {
				bad("regions.%s.machines.%s: unknown machine type; known: %s", rn, m, strings.Join(catalog.MachineTypeNames(), ", "))
			}
			checkPrice(bad, "regions."+rn+".machines."+m, reg.Machines[m])
		}
		for _, g := range sorted(reg.GPUs) {
			if _, ok := catalog.LookupGPU(g); !ok {
				bad("regions.%s.gpus.%s: unknown GPU; known: %s", rn, g, strings.Join(catalog.GPUTypes(), ", "))
			}
			checkPrice(bad, "regions."+rn+".gpus."+g, reg.GPUs[g])
		}
		for _, d := range sorted(reg.Disks) {
			if d != "pd-balanced" {
				bad("regions.%s.disks.%s: cohort's session disks are pd-balanced", rn, d)
			}
			if reg.Disks[d] <= 0 {
				bad("regions.%s.disks.%s: %v is not a price per GB-month", rn, d, reg.Disks[d])
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: %s", name, strings.Join(problems, "; "))
	}
	return &t, nil
}

// checkPrice refuses a negative price, and a missing or zero one: a
// price replaces the embedded one whole, so a file that gave only
// on_demand would meter spot seats at nothing.
func checkPrice(bad func(string, ...any), path string, p Price) {
	for _, f := range []struct {
		name string
		v    float64
	}{{"on_demand", p.OnDemand}, {"spot", p.Spot}} {
		switch {
		case f.v < 0:
			bad("%s.%s: %v is negative", path, f.name, f.v)
		case f.v == 0:
			bad("%s.%s: missing or 0; give both on_demand and spot (0 would meter seats at nothing)", path, f.name)
		}
	}
}

// describe says where in src a JSON error is, by line.
func describe(src []byte, err error) string {
	var off int64 = -1
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		off = se.Offset
	} else if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		off = te.Offset
	}
	if off < 0 {
		return err.Error()
	}
	line := 1 + bytes.Count(src[:min(off, int64(len(src)))], []byte("\n"))
	return fmt.Sprintf("line %d: %v", line, err)
}

func sorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
