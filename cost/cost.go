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
// spot, in the dearest region of the class's zones (a seat may land in
// any of them); a local session's configured hourly price.
func (t *Table) Rate(driver string, r cohort.Runtime) (Rate, error) {
	if driver != "gce" {
		return Rate{VM: t.LocalHour}, nil
	}
	var dearest Rate
	seen := map[string]bool{}
	for _, zone := range r.Zones {
		region := RegionOf([]string{zone})
		if seen[region] {
			continue
		}
		seen[region] = true
		rate, err := t.regionRate(region, r)
		if err != nil {
			return Rate{}, err
		}
		if rate.Hour() > dearest.Hour() {
			dearest = rate
		}
	}
	if len(seen) == 0 {
		return Rate{}, cohort.Errorf(cohort.EUNAVAILABLE, "the class has no zones to price")
	}
	return dearest, nil
}

func (t *Table) regionRate(region string, r cohort.Runtime) (Rate, error) {
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

// SeatCap is the longest a seat of a class can bill: its maximum
// lifetime and extensions; on GCE also the start timeout (the VM may be
// made that late) and the margin GCE's own maximum run duration adds.
// GCE stops the VM then even if cohort is down.
func SeatCap(p cohort.Policy, driver string) time.Duration {
	d := p.MaxLifetime.D() + p.MaxExtension.D()
	if driver == "gce" {
		d += cohort.GCEStartTimeout + cohort.HardStopMargin
	}
	return d
}

// Estimate is what a class can cost.
type Estimate struct {
	// Hour is one seat's rate, and AllSeatsHour all seats' together.
	Hour, AllSeatsHour float64
	// Max is the most the class can cost: every seat to its cap.
	Max float64
	// Typical is every seat running the class's window (ends_at -
	// starts_at), or its maximum lifetime without extensions.
	Typical float64
}

// EstimateClass says what a class of seats of a rate can cost, each
// seat billing at most seatCap.
func EstimateClass(p cohort.Policy, rate Rate, seatCap time.Duration) Estimate {
	seats := float64(p.Seats)
	typical := p.MaxLifetime.D()
	if p.StartsAt != nil && p.EndsAt != nil && p.EndsAt.After(*p.StartsAt) {
		typical = min(typical, p.EndsAt.Sub(*p.StartsAt))
	}
	return Estimate{Hour: rate.Hour(), AllSeatsHour: seats * rate.Hour(), Max: seats * rate.Hour() * seatCap.Hours(), Typical: seats * rate.Hour() * typical.Hours()}
}

// StopAllowance is how long a seat asked to stop may still bill: its VM
// is deleted by the driver's next update, which takes minutes.
const StopAllowance = 10 * time.Minute

// Terms are what a session bills per hour and for how long at most: the
// ones fixed at its admission, or for a session made before cohort
// recorded them, its class's current ones.
func Terms(s *cohort.Session, rate Rate, seatCap time.Duration) (Rate, time.Duration) {
	if s.BillCap > 0 {
		return Rate{VM: s.BillVM, Disk: s.BillDisk}, s.BillCap.D()
	}
	return rate, seatCap
}

// Committed is what one session has cost and can still cost: an ended
// one what it cost; a stopping one what it has cost and StopAllowance
// more; any other what it costs running to its cap. Summed over a class,
// it can be overrun only by a stop that takes longer than the allowance,
// or a disk that outlives its VM, while cohort is down.
func Committed(s *cohort.Session, rate Rate, now time.Time, seatCap time.Duration) float64 {
	rate, seatCap = Terms(s, rate, seatCap)
	switch {
	case s.EndedAt != nil || !s.State.Active():
		return Meter(s, rate, now).Amount
	case s.State == cohort.StateStopping:
		return Meter(s, rate, now).Amount + rate.Hour()*StopAllowance.Hours()
	}
	return rate.Hour() * max(seatCap, now.Sub(s.CreatedAt)).Hours()
}

// Money formats an amount: "$12.34", or "12.34 EUR" in another currency.
func Money(amount float64, currency string) string {
	if currency == "" || currency == "USD" {
		return fmt.Sprintf("$%.2f", amount)
	}
	return fmt.Sprintf("%.2f %s", amount, currency)
}
