package cohort

// ClassCost is what a class has cost and can cost, in the price table's
// currency (GET /v1/classes/:class/cost; docs/cost.md).
type ClassCost struct {
	Currency      string `json:"currency"`
	PricesChecked string `json:"prices_checked"`
	// SeatHour is one seat's rate; Unpriced says why there is none (a
	// region the price table lacks), and then every amount is 0.
	SeatHour float64 `json:"seat_hour"`
	Unpriced string  `json:"unpriced,omitempty"`
	// The estimate: all seats for an hour, for the class's window, and at
	// most: to the hard stop GCE enforces even when cohort is down.
	AllSeatsHour float64 `json:"all_seats_hour"`
	Typical      float64 `json:"typical"`
	Max          float64 `json:"max"`
	// Budget is the class's (0: none); Committed what it has spent and
	// its seats can still cost, each to its hard stop.
	Budget    float64 `json:"budget"`
	Committed float64 `json:"committed"`
	// Warning says the class has committed BudgetWarnAt of its budget or
	// more: few or no seats are left to start.
	Warning string `json:"warning,omitempty"`
	// Spent so far, and what the running seats cost per hour.
	Spent        float64           `json:"spent"`
	RunningSeats int               `json:"running_seats"`
	RunningHour  float64           `json:"running_hour"`
	Participants []ParticipantCost `json:"participants"`
	// KeptWork is the participants' work kept between sessions on storage
	// that bills (GCE's work disks): how many, how large, what they cost
	// a month. Spent counts what they have cost; Committed what they will
	// until the class's work is deleted.
	KeptWork      int     `json:"kept_work,omitempty"`
	KeptWorkGB    int     `json:"kept_work_gb,omitempty"`
	KeptWorkMonth float64 `json:"kept_work_month,omitempty"`
}

// BudgetWarnAt is the share of its budget a class may commit before its
// instructors are warned.
const BudgetWarnAt = 0.8

// ParticipantCost is one participant's share of a class's spend.
type ParticipantCost struct {
	Email    string  `json:"email"`
	Sessions int     `json:"sessions"`
	Hours    float64 `json:"hours"`
	Spent    float64 `json:"spent"`
}

// Spend is what a class's sessions that ended cost in a month.
type Spend struct {
	Month     string  `json:"month"`
	ClassID   string  `json:"class_id"`
	ClassName string  `json:"class_name"`
	Amount    float64 `json:"spent"`
	Sessions  int     `json:"sessions"`
}

// Settings are the installation's settings an admin changes at run time.
type Settings struct {
	// MonthlyBudget caps what all classes together may commit in a
	// calendar month (UTC), in the price table's currency; 0: no cap.
	MonthlyBudget float64 `json:"monthly_budget"`
}

// Validate checks settings an admin sent.
func (s Settings) Validate() error {
	if s.MonthlyBudget < 0 || s.MonthlyBudget > MaxBudget {
		return Invalid("monthly_budget", "monthly_budget must be between 0 (none) and %d, not %v", MaxBudget, s.MonthlyBudget)
	}
	return nil
}

// MonthSpend is what the installation spent in a calendar month (UTC),
// by class (GET /v1/spend, admins).
type MonthSpend struct {
	Month    string `json:"month"`
	Currency string `json:"currency"`
	// Budget is the installation's monthly budget (0: none). Committed,
	// the running seats and Warning are of the current month only: what
	// it has spent, and what its running seats can still cost, each to
	// its hard stop.
	Budget       float64 `json:"budget"`
	Spent        float64 `json:"spent"`
	Committed    float64 `json:"committed"`
	RunningSeats int     `json:"running_seats"`
	RunningHour  float64 `json:"running_hour"`
	Warning      string  `json:"warning,omitempty"`
	// Classes spent in the month, dearest first; Months are every month
	// with spend, newest first.
	Classes []ClassSpend `json:"classes"`
	Months  []MonthTotal `json:"months"`
}

// ClassSpend is one class's part of a month's spend.
type ClassSpend struct {
	ClassID      string  `json:"class_id"`
	ClassName    string  `json:"class_name"`
	Spent        float64 `json:"spent"`
	Sessions     int     `json:"sessions"`
	RunningSeats int     `json:"running_seats"`
	RunningHour  float64 `json:"running_hour"`
	Committed    float64 `json:"committed"`
}

// MonthTotal is what a month cost in all.
type MonthTotal struct {
	Month string  `json:"month"`
	Spent float64 `json:"spent"`
}
