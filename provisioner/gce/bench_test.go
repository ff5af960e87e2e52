package gce_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkClassStart brings `seats` sessions up at once, one stack per
// session, with the fake's create latency L, and reports the wall time as a
// multiple of L and the engine's overhead per session. Run it with
// -benchtime 1x: each op is a whole class.
func BenchmarkClassStart(b *testing.B) {
	const latency = 2 * time.Second
	for _, seats := range []int{1, 10, 30} {
		b.Run(fmt.Sprintf("seats=%d", seats), func(b *testing.B) {
			stacks, fake := newStacks(b)
			fake.Latency = latency
			ctx := context.Background()
			for i := range b.N {
				start := time.Now()
				var wg sync.WaitGroup
				errs := make(chan error, seats)
				for s := range seats {
					wg.Go(func() {
						_, _, err := stacks.Provision(ctx, spec(fmt.Sprintf("ses_b%d_%d", i, s)), []string{"us-central1-a"}, nil)
						errs <- err
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				wall := time.Since(start)
				b.ReportMetric(wall.Seconds()/latency.Seconds(), "xL")
				b.ReportMetric((wall - latency).Seconds(), "overhead-s")
			}
		})
	}
}
