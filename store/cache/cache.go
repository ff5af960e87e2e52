// Package cache answers, from memory, the questions every request asks the
// store: who holds this API token or cookie, what is this session, this
// class, this person's role in it. The notebook proxy asks them on every
// request, and SQLite answering each took a third of the proxy's time.
//
// An answer is forgotten as soon as a write through this store could
// change it (a revoke, a role, a roster, a session's state), so that a
// revoked token or a stopped session is refused on the very next request.
// Every part of cohort in one process writes through the same Store.
// Replicas tell each other what they forgot (Options.Publish, Apply; on
// Postgres through its notifications), so a revoke through one is refused
// by the others too at once. Writes that do not go through a cache (the
// `cohort token` command on the server machine) are seen within TTL.
package cache

import (
	"strings"
	"sync"
	"time"

	"github.com/cohortdev/cohort"
)

var _ cohort.Store = (*Store)(nil)

// Options configure a Store.
type Options struct {
	// TTL is the longest an answer is kept; 5s if zero.
	TTL time.Duration
	// MaxEntries bounds each kind of answer kept; 100,000 if zero.
	MaxEntries int
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// Publish, if set, tells the caches of other replicas what this one
	// forgot after a write ("credentials", "session ID", "class ID",
	// "all"); they pass it to Apply. Without it they see the write
	// within TTL.
	Publish func(what string)
}

// Store is a cohort.Store that keeps the answers to its hot questions.
type Store struct {
	cohort.Store // everything else passes through

	ttl     time.Duration
	max     int
	now     func() time.Time
	publish func(string)

	mu sync.Mutex
	// gen counts invalidations: an answer read while one happened is not
	// kept, for it may predate the write that caused it.
	gen      uint64
	tokens   map[string]entry[cohort.User]
	cookies  map[string]entry[cohort.BrowserSession]
	sessions map[string]entry[cohort.Session]
	classes  map[string]entry[cohort.Class]
	roles    map[[2]string]entry[cohort.MemberRole]
	lists    map[string]entry[[]cohort.Session] // by filter
}

type entry[T any] struct {
	v    T
	till time.Time
}

// New returns a Store in front of s.
func New(s cohort.Store, opts Options) *Store {
	if opts.TTL == 0 {
		opts.TTL = 5 * time.Second
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Publish == nil {
		opts.Publish = func(string) {}
	}
	c := &Store{Store: s, ttl: opts.TTL, max: opts.MaxEntries, now: opts.Now, publish: opts.Publish}
	c.reset()
	return c
}

func (c *Store) reset() {
	c.tokens = map[string]entry[cohort.User]{}
	c.cookies = map[string]entry[cohort.BrowserSession]{}
	c.sessions = map[string]entry[cohort.Session]{}
	c.classes = map[string]entry[cohort.Class]{}
	c.roles = map[[2]string]entry[cohort.MemberRole]{}
	c.lists = map[string]entry[[]cohort.Session]{}
}

// lookup returns a kept answer that is still fresh.
func lookup[K comparable, T any](c *Store, m map[K]entry[T], k K) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := m[k]
	if !ok || !c.now().Before(e.till) {
		var zero T
		return zero, false
	}
	return e.v, true
}

// generation returns the invalidation count before a read of the store.
func (c *Store) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// keep stores an answer read at generation gen, unless something was
// invalidated since.
func keep[K comparable, T any](c *Store, m map[K]entry[T], k K, v T, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(m) >= c.max {
		clear(m) // crude, and rare: the hot set refills at once
	}
	m[k] = entry[T]{v: v, till: c.now().Add(c.ttl)}
}

// forget drops answers; drop runs under the lock.
func (c *Store) forget(drop func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	drop()
}

// credentials forgets every answer about who holds a token or cookie,
// here and in the other replicas.
func (c *Store) credentials() {
	c.forgetCredentials()
	c.publish("credentials")
}

// session forgets a session, and every list (it may be in any).
func (c *Store) session(id string) {
	c.forgetSession(id)
	c.publish("session " + id)
}

func (c *Store) class(id string) {
	c.forgetClass(id)
	c.publish("class " + id)
}

// all forgets everything.
func (c *Store) all() {
	c.forget(c.reset)
	c.publish("all")
}

// Apply forgets what another replica's cache forgot (Options.Publish);
// anything it does not know forgets everything.
func (c *Store) Apply(what string) {
	kind, id, _ := strings.Cut(what, " ")
	switch kind {
	case "credentials":
		c.forgetCredentials()
	case "session":
		c.forgetSession(id)
	case "class":
		c.forgetClass(id)
	default:
		c.forget(c.reset)
	}
}

func (c *Store) forgetCredentials() {
	c.forget(func() { clear(c.tokens); clear(c.cookies) })
}

func (c *Store) forgetSession(id string) {
	c.forget(func() { delete(c.sessions, id); clear(c.lists) })
}

func (c *Store) forgetClass(id string) {
	c.forget(func() {
		delete(c.classes, id)
		for k := range c.roles {
			if k[0] == id {
				delete(c.roles, k)
			}
		}
	})
}
