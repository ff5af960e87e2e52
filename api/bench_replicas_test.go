package api_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/api"
	"github.com/cohortdev/cohort/store/cache"
	"github.com/cohortdev/cohort/store/postgres"
	"github.com/cohortdev/cohort/store/postgres/pgtest"
)

// BenchmarkAPIReplicas: GET a session and list a class of 100 from 50
// clients at once on Postgres, through one API replica and through two
// (requests alternate), each replica with its own pool and cache, as
// `cohort serve` runs them. BenchmarkAPIGetSession and
// BenchmarkAPIListClass are the same on SQLite.
func BenchmarkAPIReplicas(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("postgres/replicas=%d", n), func(b *testing.B) {
			ctx := context.Background()
			url := pgtest.URL(b)
			var urls []string
			var db cohort.Store
			for range n {
				s, err := postgres.Open(ctx, url)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				c := cache.New(s, cache.Options{})
				db = c
				srv, _ := serve(b, func(string) api.Options { return api.Options{Store: c, Enqueuer: &recorder{}, Driver: "local"} })
				urls = append(urls, srv.URL)
			}
			teacher, token := benchUser(b, db, "teacher@example.org", cohort.RoleInstructor)
			class := cohort.DefaultClass()
			class.Name, class.OwnerID, class.Policy.Seats = "Big", teacher.ID, 100
			if err := db.CreateClass(ctx, &class); err != nil {
				b.Fatal(err)
			}
			var first string
			for i := range 100 {
				u, _ := benchUser(b, db, fmt.Sprintf("p%d@example.org", i), cohort.RoleParticipant)
				s, _, err := db.StartSession(ctx, &cohort.Session{ID: cohort.NewID("ses"), ClassID: class.ID, UserID: u.ID,
					State: cohort.StateRequested, Driver: "local", NotebookToken: "t"}, 100)
				if err != nil {
					b.Fatal(err)
				}
				ready := time.Now()
				s.State, s.Address, s.ReadyAt = cohort.StateReady, "http://127.0.0.1:9", &ready
				if err := db.UpdateSession(ctx, s, nil); err != nil {
					b.Fatal(err)
				}
				if i == 0 {
					first = s.ID
				}
			}
			for _, bench := range []struct{ name, path string }{{"get-session", "/v1/sessions/" + first}, {"list-class", "/v1/sessions?class_id=" + class.ID}} {
				path := bench.path
				b.Run(bench.name, func(b *testing.B) {
					var next atomic.Int64
					load(b, func() *http.Request {
						req, _ := http.NewRequest("GET", urls[next.Add(1)%int64(n)]+path, nil)
						req.Header.Set("Authorization", "Bearer "+token)
						return req
					})
				})
			}
		})
	}
}

// benchUser makes a user with an API token.
func benchUser(b *testing.B, db cohort.Store, email string, role cohort.Role) (*cohort.User, string) {
	b.Helper()
	u, err := db.EnsureUser(context.Background(), email, role)
	if err != nil {
		b.Fatal(err)
	}
	secret := cohort.NewSecret(cohort.TokenPrefix)
	if err := db.CreateToken(context.Background(), &cohort.Token{ID: cohort.NewID("tok"), UserID: u.ID, Name: "bench"}, cohort.HashSecret(secret)); err != nil {
		b.Fatal(err)
	}
	return u, secret
}
