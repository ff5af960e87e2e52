package cohort

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as text such as
// "90m" or "12h", which people can type, or as a number of seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes the duration as people type it: "90m" as "1h30m", "12h"
// as "12h" (time.Duration would say "1h30m0s" and "12h0m0s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalJSON writes the duration as text, e.g. "1h30m".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// UnmarshalJSON reads "90m"-style text or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case float64:
		// Beyond ±292 years a time.Duration overflows (and a conversion
		// from float64 is then undefined): refuse rather than wrap.
		if math.Abs(v) > maxSeconds {
			return fmt.Errorf("%g seconds is too long for a duration", v)
		}
		*d = Duration(time.Duration(v * float64(time.Second)))
	case string:
		p, err := time.ParseDuration(v) // refuses what would overflow
		if err != nil {
			return fmt.Errorf("%q is not a duration such as \"90m\" or \"12h\" (at most 2562047h)", v)
		}
		*d = Duration(p)
	default:
		return fmt.Errorf("a duration is text such as \"90m\" or a number of seconds")
	}
	return nil
}

// maxSeconds is the longest duration, in seconds, that time.Duration holds.
const maxSeconds = float64(math.MaxInt64 / int64(time.Second))
