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
