package postgres

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cohortdev/cohort"
)

// cacheChannel is the Postgres channel on which replicas' caches tell each
// other what they forgot.
const cacheChannel = "cohort_cache"

// Notifier carries cache invalidations between replicas through Postgres's
// LISTEN/NOTIFY: Publish sends this replica's, Run hands the others' to
// the cache.
type Notifier struct {
	url  string
	db   *sql.DB
	self string // marks this replica's own notifications
	out  chan string
	log  *slog.Logger
	// listening is closed once the first LISTEN took: from then on, no
	// other replica's invalidation is missed.
	listening chan struct{}
	once      sync.Once
}

// NewNotifier sends through db and listens on a connection of its own to
// url.
func NewNotifier(url string, db *sql.DB, log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{url: url, db: db, self: cohort.NewID("rep"), out: make(chan string, 1024), log: log,
		listening: make(chan struct{})}
}

// Listening is closed once the notifier hears the other replicas.
func (n *Notifier) Listening() <-chan struct{} { return n.listening }

// Publish queues what this replica forgot for the others. It never waits:
// with the queue full, the others see the write within their cache's TTL.
func (n *Notifier) Publish(what string) {
	select {
	case n.out <- what:
	default:
	}
}

// Run sends what Publish queued and passes to apply what other replicas
// forgot, until ctx ends. A lost connection is made again; whatever was
// said meanwhile is unknown, so apply is told "all".
func (n *Notifier) Run(ctx context.Context, apply func(what string)) {
	go n.send(ctx)
	for ctx.Err() == nil {
		err := n.listen(ctx, apply)
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("cache notifications: connection lost; listening again", "error", err)
		apply("all")
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (n *Notifier) send(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case what := <-n.out:
			if _, err := n.db.ExecContext(ctx, "SELECT pg_notify($1, $2)", cacheChannel, n.self+" "+what); err != nil && ctx.Err() == nil {
				n.log.Warn("cache notifications: send", "error", err)
			}
		}
	}
}

func (n *Notifier) listen(ctx context.Context, apply func(string)) error {
	conn, err := pgx.Connect(ctx, n.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+cacheChannel); err != nil {
		return err
	}
	n.once.Do(func() { close(n.listening) })
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		origin, what, _ := strings.Cut(note.Payload, " ")
		if origin != n.self {
			apply(what)
		}
	}
}
