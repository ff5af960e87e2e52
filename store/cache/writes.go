package cache

import (
	"context"
	"time"

	"github.com/cohortdev/cohort"
)

// The writes that change a cached answer: each forgets what it could
// change once the store has it (and, for a write that failed half way,
// as well: forgetting is never wrong).

// SetUserRole changes a user's role, which every kept credential carries.
func (c *Store) SetUserRole(ctx context.Context, userID string, role cohort.Role) error {
	defer c.credentials()
	return c.Store.SetUserRole(ctx, userID, role)
}

// SetUserHostedDomain records the hosted domain of the latest sign-in.
func (c *Store) SetUserHostedDomain(ctx context.Context, userID, domain string) error {
	defer c.credentials()
	return c.Store.SetUserHostedDomain(ctx, userID, domain)
}

// RevokeToken revokes an API token.
func (c *Store) RevokeToken(ctx context.Context, id string) error {
	defer c.credentials()
	return c.Store.RevokeToken(ctx, id)
}

// RevokeUserCredentials revokes every token and sign-in of a user.
func (c *Store) RevokeUserCredentials(ctx context.Context, userID string) (int, error) {
	defer c.credentials()
	return c.Store.RevokeUserCredentials(ctx, userID)
}

// RevokeBrowserSession ends a browser sign-in.
func (c *Store) RevokeBrowserSession(ctx context.Context, hash string) error {
	defer c.credentials()
	return c.Store.RevokeBrowserSession(ctx, hash)
}

// RevokeNotebookCookies ends a user's notebook cookies.
func (c *Store) RevokeNotebookCookies(ctx context.Context, userID string) error {
	defer c.credentials()
	return c.Store.RevokeNotebookCookies(ctx, userID)
}

// UpdateClass changes a class.
func (c *Store) UpdateClass(ctx context.Context, cl *cohort.Class) error {
	defer c.class(cl.ID)
	return c.Store.UpdateClass(ctx, cl)
}

// SetMaterials changes a class's materials.
func (c *Store) SetMaterials(ctx context.Context, classID string, m *cohort.Materials) error {
	defer c.class(classID)
	return c.Store.SetMaterials(ctx, classID, m)
}

// SwapMaterials changes a class's materials if they are still old.
func (c *Store) SwapMaterials(ctx context.Context, classID string, old, m *cohort.Materials) error {
	defer c.class(classID)
	return c.Store.SwapMaterials(ctx, classID, old, m)
}

// DeleteClass removes a class and its ended sessions.
func (c *Store) DeleteClass(ctx context.Context, id string) error {
	defer c.all()
	return c.Store.DeleteClass(ctx, id)
}

// AddMembers puts emails on a class's roster.
func (c *Store) AddMembers(ctx context.Context, classID string, emails []string, role cohort.MemberRole, addedBy string) (int, error) {
	defer c.class(classID)
	return c.Store.AddMembers(ctx, classID, emails, role, addedBy)
}

// RemoveMember takes an email off a class's roster.
func (c *Store) RemoveMember(ctx context.Context, classID, email string) error {
	defer c.class(classID)
	return c.Store.RemoveMember(ctx, classID, email)
}

// RedeemInvite enrolls a user with an invite code.
func (c *Store) RedeemInvite(ctx context.Context, codeHash string, u *cohort.User) (*cohort.Invite, error) {
	inv, err := c.Store.RedeemInvite(ctx, codeHash, u)
	if inv != nil {
		c.class(inv.ClassID)
	}
	return inv, err
}

// StartSession adds a session (to lists) or returns the active one.
func (c *Store) StartSession(ctx context.Context, s *cohort.Session, seats int) (*cohort.Session, bool, error) {
	defer c.session(s.ID)
	return c.Store.StartSession(ctx, s, seats)
}

// ClaimSession gives a warm seat to a user.
func (c *Store) ClaimSession(ctx context.Context, id, userID, token string, at time.Time) (*cohort.Session, error) {
	defer c.session(id)
	return c.Store.ClaimSession(ctx, id, userID, token, at)
}

// UpdateSession writes a session's new state.
func (c *Store) UpdateSession(ctx context.Context, s *cohort.Session, e *cohort.Event) error {
	defer c.session(s.ID)
	return c.Store.UpdateSession(ctx, s, e)
}

// RecordActivity moves a session's last activity forward.
func (c *Store) RecordActivity(ctx context.Context, id string, at time.Time) error {
	defer c.session(id)
	return c.Store.RecordActivity(ctx, id, at)
}

// SetDeadlines caches a session's deadlines.
func (c *Store) SetDeadlines(ctx context.Context, id string, d cohort.SessionDeadlines) error {
	defer c.session(id)
	return c.Store.SetDeadlines(ctx, id, d)
}

// SetExtension records an extension of a session's lifetime.
func (c *Store) SetExtension(ctx context.Context, id string, ext cohort.Duration) error {
	defer c.session(id)
	return c.Store.SetExtension(ctx, id, ext)
}

// SetBudgetStop records when a session stops for its class's budget.
func (c *Store) SetBudgetStop(ctx context.Context, id string, at *time.Time) error {
	defer c.session(id)
	return c.Store.SetBudgetStop(ctx, id, at)
}
