package gce_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
)

// BenchmarkClassStart brings a class's seats up at once through the
// driver (shards of 25, the real engine, the fake cloud with create
// latency L) and reports: the wall time as a multiple of L and what it
// adds to L; the start latency of one participant who clicks while the
// class is busy, as a multiple of L; the peak memory of the control plane
// (this process, which also serves the fake, plus the pulumi processes).
// Run it with -benchtime 1x: each op is a whole class.
func BenchmarkClassStart(b *testing.B) {
	for _, c := range []struct {
		seats   int
		latency time.Duration
	}{{1, 2 * time.Second}, {30, 2 * time.Second}, {100, 2 * time.Second}, {100, 30 * time.Second}} {
		seats, latency := c.seats, c.latency
		b.Run(fmt.Sprintf("seats=%d/L=%s", seats, latency), func(b *testing.B) {
			d, _, fake := newDriver(b)
			fake.Latency = latency
			for i := range b.N {
				var class []cohort.NotebookSpec
				for s := range seats {
					class = append(class, seat(fmt.Sprintf("ses_b%d_%d", i, s), "cls_bench"))
				}
				peak := make(chan int64)
				stop := sampleRSS(peak)
				late := make(chan time.Duration, 1)
				go func() {
					for fake.CreatesInFlight() == 0 {
						time.Sleep(10 * time.Millisecond)
					}
					t0 := time.Now()
					if err := d.Start(context.Background(), seat(fmt.Sprintf("ses_late%d", i), "cls_bench")); err != nil {
						b.Error(err)
					}
					late <- time.Since(t0)
				}()
				start := time.Now()
				for id, err := range startAll(d, class) {
					if err != nil {
						b.Fatalf("%s: %v", id, err)
					}
				}
				wall := time.Since(start)
				lateWall := <-late
				close(stop)
				b.ReportMetric(wall.Seconds()/latency.Seconds(), "xL")
				b.ReportMetric((wall - latency).Seconds(), "overhead-s")
				b.ReportMetric(lateWall.Seconds()/latency.Seconds(), "late-xL")
				b.ReportMetric(float64(<-peak)/(1<<20), "peak-MiB")
			}
		})
	}
}

// sampleRSS samples the resident memory of this process and its children
// every 100ms until stop is closed, then sends the peak in bytes.
func sampleRSS(peak chan<- int64) (stop chan struct{}) {
	stop = make(chan struct{})
	self := os.Getpid()
	go func() {
		var top int64
		for {
			select {
			case <-stop:
				peak <- top
				return
			case <-time.After(100 * time.Millisecond):
			}
			total := rss(self)
			stats, _ := filepath.Glob("/proc/[0-9]*/stat")
			for _, st := range stats {
				b, err := os.ReadFile(st)
				if err != nil {
					continue
				}
				// pid (comm) state ppid ...
				fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
				if len(fields) > 1 && fields[1] == strconv.Itoa(self) {
					pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
					total += rss(pid)
				}
			}
			top = max(top, total)
		}
	}()
	return stop
}

// rss reads a process's resident set in bytes.
func rss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
