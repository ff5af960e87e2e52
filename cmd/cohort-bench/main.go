// Command cohort-bench measures the local path end to end and prints a
// table: how long a session takes from start to ready, alone and with a
// whole class starting at once, and how much memory the server and the
// notebooks use. It runs bin/cohort (make build) as a separate process on
// a temporary data directory and cleans up after itself.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
	"github.com/cohortdev/cohort/provisioner/local"
)

func main() {
	bin := flag.String("bin", "bin/cohort", "the cohort binary")
	seats := flag.Int("sessions", 20, "sessions to start at once")
	expiring := flag.Int("expiring", 10, "sessions whose idle deadline passes at once (0: skip)")
	every := flag.Duration("sweep-interval", 5*time.Second, "the deadline sweep's interval (cohort's default)")
	starts := flag.Bool("starts", true, "measure start to ready and memory")
	proxy := flag.Bool("proxy", true, "measure the notebook proxy and the API against Jupyter and configurable-http-proxy")
	flag.Parse()
	if *starts {
		if err := run(*bin, *seats); err != nil {
			fmt.Fprintln(os.Stderr, "cohort-bench:", err)
			os.Exit(1)
		}
	}
	if *proxy {
		if err := proxyBench(*bin); err != nil {
			fmt.Fprintln(os.Stderr, "cohort-bench:", err)
			os.Exit(1)
		}
	}
	if *expiring == 0 {
		return
	}
	dir, err := os.MkdirTemp("", "cohort-bench-expiry")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cohort-bench:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	gone, err := expiry(context.Background(), dir, *expiring, *every)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cohort-bench:", err)
		os.Exit(1)
	}
	n := len(gone)
	fmt.Printf("\nIdle deadline to notebook gone: %d local sessions, sweep every %s (leader's periodic job)\n\n", n, *every)
	fmt.Printf("| measure | value |\n| --- | --- |\n")
	fmt.Printf("| fastest | %s |\n| median | %s |\n| slowest | %s |\n", gone[0].Round(time.Millisecond), gone[n/2].Round(time.Millisecond), gone[n-1].Round(time.Millisecond))
	fmt.Printf("| slowest / sweep interval | %.2fx |\n", float64(gone[n-1])/float64(*every))
}

func run(bin string, n int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cohort-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, url, err := serve(bin, dir)
	if err != nil {
		return err
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
		stopNotebooks(filepath.Join(dir, "sessions"))
	}()
	time.Sleep(500 * time.Millisecond) // let the server settle before reading its memory
	idleRSS := rssKB(srv.Process.Pid)

	teacherTok, err := mint(bin, dir, "teacher@bench.example", cohort.RoleInstructor)
	if err != nil {
		return err
	}
	teacher := client.New(url, teacherTok)
	class, err := teacher.CreateClass(ctx, map[string]any{"name": "bench", "policy": map[string]any{"seats": n + 1}})
	if err != nil {
		return err
	}

	// One participant alone.
	alone, err := startAndWait(ctx, teacher, class.ID)
	if err != nil {
		return err
	}

	// A whole class at 9:00.
	clients := make([]*client.Client, n)
	emails := make([]string, n)
	for i := range clients {
		emails[i] = fmt.Sprintf("p%d@bench.example", i)
		tok, err := mint(bin, dir, emails[i], cohort.RoleParticipant)
		if err != nil {
			return err
		}
		clients[i] = client.New(url, tok)
	}
	if _, err := teacher.AddMembers(ctx, class.ID, emails, cohort.MemberParticipant); err != nil {
		return err
	}
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, c := range clients {
		wg.Go(func() { lat[i], errs[i] = startAndWait(ctx, c, class.ID) })
	}
	wg.Wait()
	wall := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	busyRSS := rssKB(srv.Process.Pid)
	nbRSS := notebookRSSKB(dir)
	slices.Sort(lat)
	srv.Process.Kill()
	srv.Wait()
	stopNotebooks(filepath.Join(dir, "sessions"))

	// The same starts without cohort: the driver alone, so that the ratio
	// shows cohort's own cost on top of Jupyter's start-up.
	raw, err := driverOnly(ctx, filepath.Join(dir, "raw"), n)
	if err != nil {
		return err
	}

	fmt.Printf("cohort-bench: local driver, %d sessions at once, %s\n\n", n, time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("| measure | value |\n| --- | --- |\n")
	fmt.Printf("| start to ready, one session alone | %s |\n", alone.Round(time.Millisecond))
	fmt.Printf("| start to ready, %d at once: median | %s |\n", n, lat[n/2].Round(time.Millisecond))
	fmt.Printf("| start to ready, %d at once: slowest | %s |\n", n, lat[n-1].Round(time.Millisecond))
	fmt.Printf("| wall time for all %d | %s |\n", n, wall.Round(time.Millisecond))
	fmt.Printf("| slowest of %d / one alone | %.1fx |\n", n, float64(lat[n-1])/float64(alone))
	fmt.Printf("| wall time for %d notebook servers without cohort (driver alone) | %s |\n", n, raw.Round(time.Millisecond))
	fmt.Printf("| cohort / driver alone, %d at once | %.2fx |\n", n, float64(wall)/float64(raw))
	fmt.Printf("| server RSS, idle | %d MiB |\n", idleRSS/1024)
	fmt.Printf("| server RSS, %d sessions ready | %d MiB |\n", n+1, busyRSS/1024)
	fmt.Printf("| notebook servers RSS, total (%d) | %d MiB |\n", n+1, nbRSS/1024)
	return nil
}

func serve(bin, dir string) (*exec.Cmd, string, error) {
	// Notebooks as this user, under dir: the bench counts and stops them by
	// their environment markers (a uid per session, as root, is the same
	// Jupyter under another uid).
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir,
		"--sessions-dir", filepath.Join(dir, "sessions"), "--session-uids", "off")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s (run make build first): %w", bin, err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, "url=http://"); i >= 0 {
				found <- strings.Fields(line[i+4:])[0]
			}
		}
	}()
	select {
	case url := <-found:
		return cmd, url, nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return nil, "", errors.New("server did not start within 30s")
	}
}

func mint(bin, dir, email string, role cohort.Role) (string, error) {
	out, err := exec.Command(bin, "token", "create", "--data-dir", dir, "--email", email, "--role", string(role)).Output()
	if err != nil {
		return "", fmt.Errorf("token create: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func startAndWait(ctx context.Context, c *client.Client, classID string) (time.Duration, error) {
	t0 := time.Now()
	s, _, err := c.StartSession(ctx, classID)
	if err != nil {
		return 0, err
	}
	err = c.FollowEvents(ctx, s.ID, 0, func(e cohort.Event) bool { return e.State != cohort.StateReady })
	if err != nil {
		return 0, err
	}
	got, err := c.GetSession(ctx, s.ID)
	if err != nil {
		return 0, err
	}
	if got.State != cohort.StateReady {
		return 0, fmt.Errorf("session %s is %s: %s", s.ID, got.State, got.Reason)
	}
	return time.Since(t0), nil
}

// driverOnly starts n notebooks with the local driver directly and waits
// until all answer.
func driverOnly(ctx context.Context, root string, n int) (time.Duration, error) {
	d, err := local.New(local.Options{Root: root})
	if err != nil {
		return 0, err
	}
	defer stopNotebooks(root)
	specs := make([]cohort.NotebookSpec, n)
	t0 := time.Now()
	for i := range specs {
		id := fmt.Sprintf("raw%d", i)
		specs[i] = cohort.NotebookSpec{SessionID: id, Token: cohort.NewSecret(""), BasePath: "/"}
		if err := d.Start(ctx, specs[i]); err != nil {
			return 0, err
		}
	}
	for _, sp := range specs {
		for {
			in, err := d.Inspect(ctx, sp)
			if err != nil {
				return 0, err
			}
			if in.State == cohort.InstanceReady {
				break
			}
			if in.State == cohort.InstanceExited {
				return 0, errors.New(in.Reason)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return time.Since(t0), nil
}

func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// notebookRSSKB adds up the memory of every process of the run's sessions.
func notebookRSSKB(dir string) int {
	root := filepath.Join(dir, "sessions")
	total := 0
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range pids {
		env, err := os.ReadFile(filepath.Join(p, "environ"))
		if err != nil || !strings.Contains(string(env), "COHORT_LOCAL_ROOT="+root+"\x00") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(p))
		total += rssKB(pid)
	}
	return total
}

// stopNotebooks ends every notebook of the local driver rooted at root.
func stopNotebooks(root string) {
	d, err := local.New(local.Options{Root: root})
	if err != nil {
		return
	}
	ids, _ := d.List(context.Background())
	for _, id := range ids {
		d.Stop(context.Background(), id)
	}
}
