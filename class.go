package cohort

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cohortdev/cohort/catalog"
)

// Class is one workshop: what runtime its participants get and the rules
// their sessions live by.
type Class struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	OwnerID string  `json:"owner_id"`
	Runtime Runtime `json:"runtime"`
	Policy  Policy  `json:"policy"`
	// Materials are the files its participants start from (none if nil).
	Materials *Materials `json:"materials,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// Runtime is the machine every participant of a class gets.
type Runtime struct {
	// Image is the GCE image family the VM boots from.
	Image       string   `json:"image"`
	MachineType string   `json:"machine_type"`
	GPUType     string   `json:"gpu_type"`
	GPUCount    int      `json:"gpu_count"`
	Zones       []string `json:"zones"`
	Spot        bool     `json:"spot"`
	DiskGB      int      `json:"disk_gb"`
	// NoEgress keeps the class's GCE sessions off the internet: no pip
	// install, no model downloads (the installation's firewall).
	NoEgress bool `json:"no_egress,omitempty"`
}

// Policy is how long sessions of a class may live and how many there may be.
type Policy struct {
	// IdleTimeout stops a session nobody used for that long: no request
	// through the proxy, no kernel activity.
	IdleTimeout Duration `json:"idle_timeout"`
	// MaxLifetime stops a session that long after it became ready, used or
	// not; instructors may extend it by up to MaxExtension.
	MaxLifetime  Duration `json:"max_lifetime"`
	MaxExtension Duration `json:"max_extension"`
	// WarnBefore is how long before a stop the participant is warned.
	WarnBefore Duration `json:"warn_before"`
	// IgnoreBusyKernels makes a running cell not count as activity (by
	// default a training run keeps its session alive).
	IgnoreBusyKernels bool       `json:"ignore_busy_kernels,omitempty"`
	Seats             int        `json:"seats"`
	StartsAt          *time.Time `json:"starts_at,omitempty"`
	// EndsAt ends every session of the class, whatever their deadlines.
	EndsAt *time.Time `json:"ends_at,omitempty"`
	// Budget caps what the class may commit, in the price table's
	// currency; 0 is none. A seat starts only if what the class has spent
	// and what its seats can still cost, to their hard stops, stays
	// within it (docs/cost.md).
	Budget float64 `json:"budget,omitempty"`
	// ShowCost lets participants see what their own session has cost.
	ShowCost bool `json:"show_cost,omitempty"`
	// Warm keeps seats started ahead for participants to take (warm.go).
	Warm *Warm `json:"warm,omitempty"`
	// KeepWork is how long participants' work is kept after EndsAt;
	// DefaultKeepWork if zero.
	KeepWork Duration `json:"keep_work,omitempty"`
}

// Defaults of policy fields that classes made before they existed lack.
const (
	DefaultWarnBefore   = 10 * time.Minute
	DefaultMaxExtension = 4 * time.Hour
)

// Warn returns how long before a stop to warn.
func (p Policy) Warn() time.Duration {
	if p.WarnBefore == 0 {
		return DefaultWarnBefore
	}
	return p.WarnBefore.D()
}

// Limits on class fields; beyond them the input is a mistake, not a class.
const (
	MaxSeats = 1000
	// MaxBudget bounds a class's budget: more is a typo.
	MaxBudget      = 10_000_000
	MaxNameLength  = 200
	MaxLifetimeCap = 7 * 24 * time.Hour
	MinIdleTimeout = 5 * time.Minute
	MaxDiskGB      = 2000
	MinDiskGB      = 10
	MaxWarnBefore  = time.Hour
	MaxZones       = 16
)

// DefaultClass returns the class a workshop gets when it names nothing but
// itself: one T4 on n1-standard-4 in us-central1, Colab's timeouts.
func DefaultClass() Class {
	return Class{
		Runtime: Runtime{
			Image:       "cohort-notebook",
			MachineType: "n1-standard-4",
			GPUType:     "nvidia-tesla-t4",
			GPUCount:    1,
			Zones:       []string{"us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"},
			DiskGB:      100,
		},
		Policy: Policy{
			IdleTimeout:  Duration(90 * time.Minute),
			MaxLifetime:  Duration(12 * time.Hour),
			MaxExtension: Duration(DefaultMaxExtension),
			WarnBefore:   Duration(DefaultWarnBefore),
			Seats:        30,
		},
	}
}

// Validate checks a class and returns an EINVALID error naming the first
// offending field.
func (c *Class) Validate() error {
	c.Name = strings.TrimSpace(c.Name)
	switch {
	case c.Name == "":
		return Invalid("name", "name is required")
	case utf8.RuneCountInString(c.Name) > MaxNameLength:
		return Invalid("name", "name is longer than %d characters", MaxNameLength)
	}
	if err := c.Runtime.validate(); err != nil {
		return err
	}
	return c.Policy.validate()
}

func (r *Runtime) validate() error {
	if strings.TrimSpace(r.Image) == "" {
		return Invalid("runtime.image", "image is required (a GCE image family such as cohort-notebook)")
	}
	if r.GPUCount < 0 {
		return Invalid("runtime.gpu_count", "gpu_count must not be negative")
	}
	if r.DiskGB < MinDiskGB || r.DiskGB > MaxDiskGB {
		return Invalid("runtime.disk_gb", "disk_gb must be between %d and %d, not %d", MinDiskGB, MaxDiskGB, r.DiskGB)
	}
	// Zones are tried in order, each once: a repeat would only retry a
	// stocked-out zone, and every zone costs a failed create.
	var zones []string
	for _, z := range r.Zones {
		if z = strings.ToLower(strings.TrimSpace(z)); z != "" && !slices.Contains(zones, z) {
			zones = append(zones, z)
		}
	}
	if len(zones) > MaxZones {
		return Invalid("runtime.zones", "at most %d zones, not %d", MaxZones, len(zones))
	}
	r.Zones = zones
	if p := catalog.Check(r.MachineType, r.GPUType, r.GPUCount, r.Zones); p != nil {
		return Invalid(p.Field, "%s", p.Message)
	}
	return nil
}

func (p *Policy) validate() error {
	switch {
	case p.Seats <= 0:
		return Invalid("policy.seats", "seats must be at least 1, not %d", p.Seats)
	case p.Seats > MaxSeats:
		return Invalid("policy.seats", "seats must be at most %d, not %d", MaxSeats, p.Seats)
	case p.IdleTimeout.D() < MinIdleTimeout:
		return Invalid("policy.idle_timeout", "idle_timeout must be at least %s", MinIdleTimeout)
	case p.MaxLifetime.D() < p.IdleTimeout.D():
		return Invalid("policy.max_lifetime", "max_lifetime (%s) must not be shorter than idle_timeout (%s)", p.MaxLifetime, p.IdleTimeout)
	case p.MaxLifetime.D() > MaxLifetimeCap:
		return Invalid("policy.max_lifetime", "max_lifetime must be at most %s", MaxLifetimeCap)
	case p.MaxExtension < 0 || p.MaxExtension.D() > MaxLifetimeCap:
		return Invalid("policy.max_extension", "max_extension must be between 0 and %s", MaxLifetimeCap)
	case p.WarnBefore < 0 || p.WarnBefore.D() >= p.IdleTimeout.D() || p.WarnBefore.D() > MaxWarnBefore:
		return Invalid("policy.warn_before", "warn_before must be shorter than idle_timeout (%s) and at most %s", p.IdleTimeout, MaxWarnBefore)
	case p.StartsAt != nil && p.EndsAt != nil && !p.EndsAt.After(*p.StartsAt):
		return Invalid("policy.ends_at", "ends_at must be after starts_at")
	case p.Budget < 0 || p.Budget > MaxBudget:
		return Invalid("policy.budget", "budget must be between 0 (none) and %d, not %v", MaxBudget, p.Budget)
	case p.KeepWork < 0 || p.KeepWork.D() > MaxKeepWork:
		return Invalid("policy.keep_work", "keep_work must be between 0 (the default, %s) and %s", DefaultKeepWork, MaxKeepWork)
	}
	return p.Warm.validate(p)
}
