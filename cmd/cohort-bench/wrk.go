package main

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what a wrk run reports.
type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
}

// runWrk loads url for d with 2 threads and 50 connections, as the team's
// earlier measurements did, and reads wrk's summary.
func runWrk(url string, d time.Duration, extra ...string) (wrkResult, error) {
	args := append([]string{"-t2", "-c50", "-d" + d.String(), "--latency"}, extra...)
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %v\n%s", url, err, out)
	}
	var r wrkResult
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "50%":
			r.p50 = wrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			r.p99 = wrkDuration(f[1])
		case len(f) >= 4 && f[0] == "Non-2xx":
			return r, fmt.Errorf("wrk %s: %s", url, line)
		}
	}
	if r.rps == 0 {
		return r, fmt.Errorf("wrk %s printed no rate:\n%s", url, out)
	}
	return r, nil
}

// wrkDuration reads wrk's "1.23ms", "456.78us", "1.02s".
func wrkDuration(s string) time.Duration {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return time.Duration(f * float64(u.unit))
		}
	}
	return 0
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// httpTable measures a static asset and /api/status on every target, two
// rounds, alternating, and prints req/s, p50, p99 and the ratio to direct.
func httpTable(targets []target) error {
	fmt.Printf("\nHTTP, wrk 2 threads, 50 connections, 8 s each:\n\n")
	fmt.Printf("| path | round | target | req/s | p50 | p99 | req/s vs direct |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, path := range []string{"/static/base/images/logo.png", "/api/status"} {
		for round := 1; round <= 2; round++ {
			var direct float64
			for _, t := range targets {
				r, err := runWrk(t.base+path, 8*time.Second, t.wrkArgs()...)
				if err != nil {
					return err
				}
				if t.name == "direct" {
					direct = r.rps
				}
				fmt.Printf("| %s | %d | %s | %.0f | %s | %s | %.2fx |\n", path, round, t.name, r.rps, ms(r.p50), ms(r.p99), r.rps/direct)
			}
		}
	}
	return nil
}

// freePort returns a loopback port nobody listens on now.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
