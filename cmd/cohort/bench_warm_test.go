package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
)

// BenchmarkClickToReady: participants arrive at a class's start and click
// Start; each one's click-to-ready time is from the click until their
// session is ready (the answer to Start, or the event that says so). With
// warm seats the class has one ready for each before the first click;
// without, each click makes a seat. GCE: 30 participants spread over 60 s,
// on the fake cloud with a create latency of L = 30 s and real notebooks
// booting through the session agent. Local: 10 participants at once, real
// notebooks. It reports p50 and p99 in seconds (with 30 or 10
// participants, p99 is the slowest); run it with -benchtime 1x (each op
// is a whole class).
func BenchmarkClickToReady(b *testing.B) {
	for _, c := range []struct {
		driver string
		n      int
		spread time.Duration
	}{{"gce", 30, 60 * time.Second}, {"local", 10, 0}} {
		for _, warm := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/participants=%d/warm=%t", c.driver, c.n, warm), func(b *testing.B) {
				for range b.N {
					times := clickToReady(b, c.driver, c.n, c.spread, warm)
					slices.Sort(times)
					b.ReportMetric(times[len(times)/2].Seconds(), "p50_s")
					b.ReportMetric(times[(len(times)*99+99)/100-1].Seconds(), "p99_s")
				}
			})
		}
	}
}

func clickToReady(b *testing.B, driver string, n int, spread time.Duration, warm bool) []time.Duration {
	ctx := context.Background()
	dataDir := b.TempDir()
	var env []string
	if driver == "gce" {
		fake := startFakeGCE(b)
		fake.Latency = 30 * time.Second
		env = gceEnv(b, fake)
	} else {
		cleanupNotebooks(b, dataDir)
	}
	srv := startServer(b, dataDir, env...)
	teacher := client.New(srv.url, token(b, dataDir, "teacher@example.com", cohort.RoleInstructor))
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "click to ready", "policy": map[string]any{"seats": n}})
	if err != nil {
		b.Fatal(err)
	}
	participants := make([]*client.Client, n)
	var roster []string
	for i := range participants {
		roster = append(roster, fmt.Sprintf("p%d@example.org", i))
		participants[i] = client.New(srv.url, token(b, dataDir, roster[i], cohort.RoleParticipant))
	}
	if _, err := teacher.AddMembers(ctx, class.ID, roster, cohort.MemberParticipant); err != nil {
		b.Fatal(err)
	}
	if warm {
		if _, err := teacher.WarmNow(ctx, class.ID, n, false, time.Time{}); err != nil {
			b.Fatal(err)
		}
		for {
			p, err := teacher.WarmPool(ctx, class.ID)
			if err != nil {
				b.Fatal(err)
			}
			if p.Ready == n {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	b.ResetTimer()
	times := make([]time.Duration, n)
	var wg sync.WaitGroup
	begin := time.Now()
	for i, p := range participants {
		at := begin.Add(spread * time.Duration(i) / time.Duration(n))
		wg.Go(func() {
			time.Sleep(time.Until(at))
			click := time.Now()
			s, _, err := p.StartSession(ctx, class.ID)
			if err != nil {
				b.Error(err)
				return
			}
			if s.State != cohort.StateReady {
				waitState(b, p, s.ID, cohort.StateReady)
			}
			times[i] = time.Since(click)
		})
	}
	wg.Wait()
	b.StopTimer()
	if _, err := teacher.StopAll(ctx, class.ID); err != nil {
		b.Fatal(err)
	}
	return times
}
