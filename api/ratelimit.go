package api

import (
	"sync"
	"time"
)

// limiter allows each key (a client address, a device code) at most max
// events per window. It is soft state: a restart forgets it, which only
// gives a client one fresh window. It holds at most maxKeys keys: past
// that, new keys are refused until old windows end, so that a flood of
// keys costs memory and time in bounds.
type limiter struct {
	max    int
	window time.Duration

	mu        sync.Mutex
	windows   map[string]*window
	lastPrune time.Time
}

const (
	pruneAbove = 10_000
	maxKeys    = 100_000
)

type window struct {
	start time.Time
	n     int
}

func newLimiter(max int, per time.Duration) *limiter {
	return &limiter{max: max, window: per, windows: map[string]*window{}}
}

// allow counts one event for key and reports whether it is within the limit.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.windows[key]
	if !ok || now.Sub(w.start) >= l.window {
		if len(l.windows) > pruneAbove && now.Sub(l.lastPrune) >= l.window {
			l.prune(now) // at most once a window: a flood of keys must not make every event a full scan
			l.lastPrune = now
		}
		if !ok && len(l.windows) >= maxKeys {
			return false
		}
		w = &window{start: now}
		l.windows[key] = w
	}
	w.n++
	return w.n <= l.max
}

// prune forgets windows that ended, so the map stays as small as the
// number of recent clients.
func (l *limiter) prune(now time.Time) {
	for k, w := range l.windows {
		if now.Sub(w.start) >= l.window {
			delete(l.windows, k)
		}
	}
}

// gauge counts things open at once per key (event streams per user).
type gauge struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

// acquire takes one for key and returns its release, or false when key
// already holds max.
func (g *gauge) acquire(key string) (func(), bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open == nil {
		g.open = map[string]int{}
	}
	if g.open[key] >= g.max {
		return nil, false
	}
	g.open[key]++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.open[key]--; g.open[key] <= 0 {
			delete(g.open, key)
		}
	}, true
}
