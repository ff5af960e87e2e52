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

// Seat is the most a seat of this rate costs when it bills for d: its VM
// for d, and its disk StopAllowance longer (cohort deletes it after GCE
// stopped the VM).
func (r Rate) Seat(d time.Duration) float64 {
	return r.VM*d.Hours() + r.Disk*(d+StopAllowance).Hours()
}

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
//
// A VM that stops itself (GCE's maximum run duration) bills no longer
// than the cap it was admitted with, even when cohort saw the stop late
// (it was down); its disk bills until cohort deleted it.
func Meter(s *cohort.Session, rate Rate, now time.Time) Billed {
	return MeterWithin(s, rate, now, time.Time{}, endOfTime)
}

var endOfTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// MeterWithin is Meter for the part of a session's life within [from,
// to): a month's share of it. The VM's one-minute minimum is billed
// where the session began.
func MeterWithin(s *cohort.Session, rate Rate, now, from, to time.Time) Billed {
	if s.State == cohort.StateRequested {
		return Billed{}
	}
	start, end := s.CreatedAt, now
	if s.EndedAt != nil {
		end = *s.EndedAt
	}
	end = maxTime(end, start)
	vmEnd := end
	if s.Driver == "gce" && s.BillCap > 0 {
		vmEnd = minTime(end, start.Add(max(s.BillCap.D(), time.Minute)))
	}
	b := Billed{VM: overlap(start, vmEnd, from, to), Disk: overlap(start, end, from, to)}
	if !start.Before(from) && start.Before(to) {
		b.VM = max(b.VM, time.Minute)
	}
	b.Amount = rate.VM*b.VM.Hours() + rate.Disk*b.Disk.Hours()
	return b
}

// overlap is how much of [a, b) lies within [from, to), to the second.
func overlap(a, b, from, to time.Time) time.Duration {
	return max(minTime(b, to).Sub(maxTime(a, from)), 0).Round(time.Second)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Month is a calendar month in UTC, as "2026-12".
type Month string

// MonthOf is the month of t.
func MonthOf(t time.Time) Month {
	y, m, _ := t.UTC().Date()
	b := [7]byte{byte('0' + y/1000%10), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-', byte('0' + int(m)/10), byte('0' + int(m)%10)}
	return Month(b[:])
}

// ParseMonth reads "2026-12".
func ParseMonth(v string) (Month, error) {
	if _, err := time.Parse("2006-01", v); err != nil {
		return "", cohort.Invalid("month", "month %q is not a month such as \"2026-12\"", v)
	}
	return Month(v), nil
}

// Span is when the month begins and the next one does.
func (m Month) Span() (from, to time.Time) {
	from, _ = time.Parse("2006-01", string(m))
	return from, from.AddDate(0, 1, 0)
}

// ByMonth splits what a session has cost by now by the months it ran
// in. The store adds an ended session's to its monthly rollup, at the
// terms it was admitted with, in the update that ends it.
func ByMonth(s *cohort.Session, rate Rate, now time.Time) map[Month]float64 {
	out := map[Month]float64{}
	EachMonth(s, rate, now, func(m Month, amount float64) { out[m] = amount })
	return out
}

// EachMonth calls fn with each month a session has run in by now, and
// what it cost in it (0 at a price of 0: a free session still counts).
func EachMonth(s *cohort.Session, rate Rate, now time.Time, fn func(Month, float64)) {
	end := now
	if s.EndedAt != nil {
		end = *s.EndedAt
	}
	first, last := MonthOf(s.CreatedAt), MonthOf(end)
	if first == last {
		if b := Meter(s, rate, now); b.VM > 0 || b.Disk > 0 {
			fn(first, b.Amount)
		}
		return
	}
	for m := first; m <= last; {
		from, to := m.Span()
		if b := MeterWithin(s, rate, now, from, to); b.VM > 0 || b.Disk > 0 {
			fn(m, b.Amount)
		}
		m = MonthOf(to)
	}
}

// SeatCap is the longest a seat of a class can bill: its maximum
// lifetime and extensions; on GCE also the start timeout (the VM may be
// made that late) and the margin GCE's own maximum run duration adds.
// GCE stops the VM then even if cohort is down.
func SeatCap(p cohort.Policy, driver string) time.Duration {
	return p.MaxLifetime.D() + p.MaxExtension.D() + driverMargin(driver)
}

func driverMargin(driver string) time.Duration {
	if driver == "gce" {
		return cohort.GCEStartTimeout + cohort.HardStopMargin
	}
	return 0
}

// Life is the longest a session may run, extensions included, as it was
// admitted: its cap less what the driver adds to it. A later change of
// its class's lifetime cannot take it past this: its budget counted no
// more, and its VM stops there. 0 for a session without recorded terms.
func Life(s *cohort.Session) time.Duration {
	if s.BillCap == 0 {
		return 0
	}
	return s.BillCap.D() - driverMargin(s.Driver)
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
	return Estimate{Hour: rate.Hour(), AllSeatsHour: seats * rate.Hour(), Max: seats * rate.Seat(seatCap), Typical: seats * rate.Hour() * typical.Hours()}
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
// more; one to be stopped for a budget what it costs until then and the
// allowance; any other what it costs running to its cap, and its disk
// the allowance after that (cohort deletes it once GCE stopped the VM).
// Summed over a class, it can be overrun only by a stop that takes longer
// than the allowance, or a disk that outlives its VM longer, while cohort
// is down.
func Committed(s *cohort.Session, rate Rate, now time.Time, seatCap time.Duration) float64 {
	rate, seatCap = Terms(s, rate, seatCap)
	toCap := max(rate.Seat(seatCap), Meter(s, rate, now).Amount)
	switch {
	case s.EndedAt != nil || !s.State.Active():
		return Meter(s, rate, now).Amount
	case s.State == cohort.StateStopping:
		return Meter(s, rate, now).Amount + rate.Hour()*StopAllowance.Hours()
	case s.BudgetStopAt != nil && s.State != cohort.StateRequested:
		return min(Meter(s, rate, maxTime(now, s.BudgetStopAt.Add(StopAllowance))).Amount, toCap)
	}
	return toCap
}

// RunLeft is how long a session's VM, made now, may run: its admitted
// life, less the time its seat waited past the start timeout (cohort was
// down, say): its cap counts from when it was asked for, GCE's maximum
// run duration from the VM's create. At least a minute; 0 for a session
// without recorded terms.
func RunLeft(s *cohort.Session, now time.Time) time.Duration {
	life := Life(s)
	if life == 0 || s.Driver != "gce" {
		return life
	}
	if late := now.Sub(s.CreatedAt) - cohort.GCEStartTimeout; late > 0 {
		life -= late
	}
	return max(life, time.Minute)
}

// Money formats an amount: "$12.34", or "12.34 EUR" in another currency.
func Money(amount float64, currency string) string {
	if currency == "" || currency == "USD" {
		return fmt.Sprintf("$%.2f", amount)
	}
	return fmt.Sprintf("%.2f %s", amount, currency)
}
