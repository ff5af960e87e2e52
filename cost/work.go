package cost

import (
	"time"

	"github.com/cohortdev/cohort"
)

// WorkMonth is what a GB of kept work costs a month in a class's region
// (pd-balanced, as work disks are).
func (t *Table) WorkMonth(zones []string) (float64, error) {
	region := RegionOf(zones)
	reg, ok := t.Regions[region]
	price, found := reg.Disks["pd-balanced"]
	if !ok || !found {
		return 0, cohort.Errorf(cohort.EUNAVAILABLE, "no price for pd-balanced disks in %q: add it with a price file (--prices; docs/cost.md)", region)
	}
	return price, nil
}

// MeterWork is what kept work has cost by now at perGBMonth, what it
// costs a month, and what it will have cost when it is deleted at until
// (zero: not known, and nothing is committed past now).
func MeterWork(work []cohort.KeptWork, perGBMonth float64, now, until time.Time) (spent, month, committed float64) {
	for _, w := range work {
		hour := float64(w.GB) * perGBMonth / hoursPerMonth
		month += float64(w.GB) * perGBMonth
		if now.After(w.Created) {
			spent += hour * now.Sub(w.Created).Hours()
		}
		committed += hour * max(until.Sub(w.Created), now.Sub(w.Created), 0).Hours()
	}
	return spent, month, committed
}
