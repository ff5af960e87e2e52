package cost

import (
	"fmt"
	"strings"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/catalog"
)

// hoursPerMonth converts a GB-month price to an hourly one, as Google's
// price list does (730 hours).
const hoursPerMonth = 730

// Rate is what one session of a runtime costs per hour while its VM
// runs, and while its disk exists.
type Rate struct {
	VM, Disk float64
}

// Hour is the rate of a running session.
func (r Rate) Hour() float64 { return r.VM + r.Disk }

// RegionOf is the region of a class's first zone ("us-central1-a" →
// "us-central1").
func RegionOf(zones []string) string {
	if len(zones) == 0 {
		return ""
	}
	return zones[0][:max(strings.LastIndex(zones[0], "-"), 0)]
}

// Rate returns the hourly rate of one session of a runtime on a driver:
// a GCE VM's machine type, its attached GPUs and its disk, on demand or
// spot; a local session's configured hourly price.
func (t *Table) Rate(driver string, r cohort.Runtime) (Rate, error) {
	if driver != "gce" {
		return Rate{VM: t.LocalHour}, nil
	}
	region := RegionOf(r.Zones)
	reg, ok := t.Regions[region]
	if !ok {
		return Rate{}, cohort.Errorf(cohort.EUNAVAILABLE, "no prices for region %q: add them with a price file (--prices; docs/cost.md)", region)
	}
	pick := func(p Price) float64 {
		if r.Spot {
			return p.Spot
		}
		return p.OnDemand
	}
	m, ok := reg.Machines[r.MachineType]
	if !ok {
		return Rate{}, cohort.Errorf(cohort.EUNAVAILABLE, "no price for machine type %s in %s: add it with a price file (--prices; docs/cost.md)", r.MachineType, region)
	}
	rate := Rate{VM: pick(m)}
	// G2 and A2 prices include their built-in GPUs; N1's are attached.
	if mt, _ := catalog.LookupMachineType(r.MachineType); mt.BuiltinGPU == "" && r.GPUType != "" && r.GPUCount > 0 {
		g, ok := reg.GPUs[r.GPUType]
		if !ok {
			return Rate{}, cohort.Errorf(cohort.EUNAVAILABLE, "no price for GPU %s in %s: add it with a price file (--prices; docs/cost.md)", r.GPUType, region)
		}
		rate.VM += pick(g) * float64(r.GPUCount)
	}
	disk, ok := reg.Disks["pd-balanced"]
	if !ok {
		return Rate{}, cohort.Errorf(cohort.EUNAVAILABLE, "no price for pd-balanced disks in %s: add it with a price file (--prices; docs/cost.md)", region)
	}
	rate.Disk = disk * float64(r.DiskGB) / hoursPerMonth
	return rate, nil
}

// Billed is how long a session has been billed for, and what it cost.
type Billed struct {
	VM, Disk time.Duration
	Amount   float64
}

// Meter says what a session has cost by now, from the times cohort
// recorded: its VM and disk exist from when it was asked for until it
// ended (or now), billed per second with a one-minute minimum for the
// VM, as GCE bills. A session still waiting for a seat has cost nothing.
// It overstates the time before a VM exists (cohort records the request,
// not the VM's create), never understates it.
func Meter(s *cohort.Session, rate Rate, now time.Time) Billed {
	if s.State == cohort.StateRequested {
		return Billed{}
	}
	end := now
	if s.EndedAt != nil {
		end = *s.EndedAt
	}
	d := max(end.Sub(s.CreatedAt), 0).Round(time.Second)
	b := Billed{VM: max(d, time.Minute), Disk: d}
	b.Amount = rate.VM*b.VM.Hours() + rate.Disk*b.Disk.Hours()
	return b
}

// Estimate is what a class can cost.
type Estimate struct {
	// Hour is one seat's rate, and Running all seats' together.
	Hour, AllSeatsHour float64
	// Max is the most the class can cost if every seat runs to its hard
	// stop: GCE's own maximum run duration (lifetime, extensions and
	// cohort's margin), which holds even when cohort is down.
	Max float64
	// Typical is every seat running the class's window (ends_at -
	// starts_at), or its maximum lifetime without extensions.
	Typical float64
}

// EstimateClass says what a class of seats of a rate can cost; margin
// is what the driver adds to a session's lifetime for its own hard stop
// (cohort.HardStopMargin on GCE).
func EstimateClass(p cohort.Policy, rate Rate, margin time.Duration) Estimate {
	seats := float64(p.Seats)
	hardStop := p.MaxLifetime.D() + p.MaxExtension.D() + margin
	typical := p.MaxLifetime.D()
	if p.StartsAt != nil && p.EndsAt != nil && p.EndsAt.After(*p.StartsAt) {
		typical = min(typical, p.EndsAt.Sub(*p.StartsAt))
	}
	return Estimate{Hour: rate.Hour(), AllSeatsHour: seats * rate.Hour(), Max: seats * rate.Hour() * hardStop.Hours(), Typical: seats * rate.Hour() * typical.Hours()}
}

// Money formats an amount: "$12.34", or "12.34 EUR" in another currency.
func Money(amount float64, currency string) string {
	if currency == "" || currency == "USD" {
		return fmt.Sprintf("$%.2f", amount)
	}
	return fmt.Sprintf("%.2f %s", amount, currency)
}
