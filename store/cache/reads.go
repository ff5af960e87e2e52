package cache

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cohortdev/cohort"
)

// The cached reads. Each returns a copy: callers change what they get
// (a session's state before they write it back), and that must not change
// what others are told.

// UserByTokenHash returns the owner of a live API token.
func (c *Store) UserByTokenHash(ctx context.Context, hash string) (*cohort.User, error) {
	if u, ok := lookup(c, c.tokens, hash); ok {
		return &u, nil
	}
	gen := c.generation()
	u, err := c.Store.UserByTokenHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	keep(c, c.tokens, hash, *u, gen)
	return u, nil
}

// GetBrowserSession returns a live browser sign-in.
func (c *Store) GetBrowserSession(ctx context.Context, hash string) (*cohort.BrowserSession, error) {
	if bs, ok := lookup(c, c.cookies, hash); ok && c.now().Before(bs.ExpiresAt) {
		u := *bs.User
		bs.User = &u
		return &bs, nil
	}
	gen := c.generation()
	bs, err := c.Store.GetBrowserSession(ctx, hash)
	if err != nil {
		return nil, err
	}
	kept := *bs
	u := *bs.User
	kept.User = &u
	keep(c, c.cookies, hash, kept, gen)
	return bs, nil
}

// GetSession returns a session.
func (c *Store) GetSession(ctx context.Context, id string) (*cohort.Session, error) {
	if s, ok := lookup(c, c.sessions, id); ok {
		return cloneSession(s), nil
	}
	gen := c.generation()
	s, err := c.Store.GetSession(ctx, id)
	if err != nil {
		return nil, err
	}
	keep(c, c.sessions, id, *cloneSession(*s), gen)
	return s, nil
}

// GetClass returns a class.
func (c *Store) GetClass(ctx context.Context, id string) (*cohort.Class, error) {
	if cl, ok := lookup(c, c.classes, id); ok {
		return cloneClass(cl), nil
	}
	gen := c.generation()
	cl, err := c.Store.GetClass(ctx, id)
	if err != nil {
		return nil, err
	}
	keep(c, c.classes, id, *cloneClass(*cl), gen)
	return cl, nil
}

// MemberRole returns the email's role in the class, or "".
func (c *Store) MemberRole(ctx context.Context, classID, email string) (cohort.MemberRole, error) {
	k := [2]string{classID, email}
	if r, ok := lookup(c, c.roles, k); ok {
		return r, nil
	}
	gen := c.generation()
	r, err := c.Store.MemberRole(ctx, classID, email)
	if err != nil {
		return "", err
	}
	keep(c, c.roles, k, r, gen)
	return r, nil
}

// ListSessions returns the sessions a filter selects (an instructor's seat
// table asks every few seconds).
func (c *Store) ListSessions(ctx context.Context, f cohort.SessionFilter) ([]*cohort.Session, error) {
	k := fmt.Sprintf("%s|%s|%v", f.ClassID, f.UserID, f.States)
	if list, ok := lookup(c, c.lists, k); ok {
		out := make([]*cohort.Session, len(list))
		for i := range list {
			out[i] = cloneSession(list[i])
		}
		return out, nil
	}
	gen := c.generation()
	list, err := c.Store.ListSessions(ctx, f)
	if err != nil {
		return nil, err
	}
	kept := make([]cohort.Session, len(list))
	for i, s := range list {
		kept[i] = *cloneSession(*s)
	}
	keep(c, c.lists, k, kept, gen)
	return list, nil
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

func cloneSession(s cohort.Session) *cohort.Session {
	for _, p := range []**time.Time{&s.ReadyAt, &s.EndedAt, &s.LastActivityAt, &s.IdleDeadline, &s.HardDeadline, &s.CheckAt, &s.WarnedAt, &s.BudgetStopAt, &s.ClaimedAt} {
		*p = cloneTime(*p)
	}
	return &s
}

func cloneClass(cl cohort.Class) *cohort.Class {
	cl.Runtime.Zones = slices.Clone(cl.Runtime.Zones)
	cl.Policy.StartsAt, cl.Policy.EndsAt = cloneTime(cl.Policy.StartsAt), cloneTime(cl.Policy.EndsAt)
	if w := cl.Policy.Warm; w != nil {
		c := *w
		c.From, c.Until = cloneTime(w.From), cloneTime(w.Until)
		cl.Policy.Warm = &c
	}
	if m := cl.Materials; m != nil {
		c := *m
		cl.Materials = &c
	}
	return &cl
}

// Fresh is c for a reader that must see what other replicas wrote (the
// reconciler): its sessions and classes are read from the database, while
// its writes still go through c and so are seen by c's readers at once.
func (c *Store) Fresh() cohort.Store { return fresh{c} }

type fresh struct{ *Store }

func (f fresh) GetSession(ctx context.Context, id string) (*cohort.Session, error) {
	return f.Store.Store.GetSession(ctx, id)
}

func (f fresh) GetClass(ctx context.Context, id string) (*cohort.Class, error) {
	return f.Store.Store.GetClass(ctx, id)
}

func (f fresh) ListSessions(ctx context.Context, filter cohort.SessionFilter) ([]*cohort.Session, error) {
	return f.Store.Store.ListSessions(ctx, filter)
}
