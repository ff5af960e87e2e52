package cohort

import (
	"strings"
	"time"
)

// MemberRole is what a person is in one class.
type MemberRole string

// The roles within a class.
const (
	MemberParticipant MemberRole = "participant"
	MemberInstructor  MemberRole = "instructor"
)

// Member is an email on a class's roster. People are enrolled by email
// before they ever sign in; the roster is matched on sign-in.
type Member struct {
	ClassID string     `json:"class_id"`
	Email   string     `json:"email"`
	Role    MemberRole `json:"role"`
	AddedBy string     `json:"added_by"`
	AddedAt time.Time  `json:"added_at"`
}

// Invite is a join link for a class. Its code is shown once, when made.
type Invite struct {
	ID      string `json:"id"`
	ClassID string `json:"class_id"`
	// Domain, if set, admits only people whose identity provider vouches
	// for that hosted domain (Google's hd claim), not merely an email
	// ending in it.
	Domain    string     `json:"domain,omitempty"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Uses      int        `json:"uses"`
}

// MaxRosterSize bounds one roster upload.
const MaxRosterSize = MaxSeats * 2

// NormalizeEmails validates a list of emails, lower-cases them and drops
// duplicates, naming the first bad entry.
func NormalizeEmails(field string, emails []string) ([]string, error) {
	if len(emails) == 0 {
		return nil, Invalid(field, "no emails given")
	}
	if len(emails) > MaxRosterSize {
		return nil, Invalid(field, "at most %d emails at once, not %d", MaxRosterSize, len(emails))
	}
	seen := map[string]bool{}
	var out []string
	for i, e := range emails {
		n, err := NormalizeEmail(field, e)
		if err != nil {
			return nil, Invalid(field, "entry %d: %s", i+1, ErrorMessage(err))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// Domain returns the part of an email after the @.
func Domain(email string) string {
	_, d, _ := strings.Cut(email, "@")
	return d
}
