package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
)

// kernelTable measures what a participant feels when running a cell: the
// round trip of execute_request("1+1") over the kernel WebSocket, to the
// first reply message and to the end of the reply (the kernel idle
// again), 200 in a row on each target, two rounds alternating; and how
// long 200 kernel WebSockets take to open at once.
func kernelTable(ctx context.Context, targets []target) error {
	kernels := map[string]string{}
	for _, t := range targets {
		id, err := newKernel(t)
		if err != nil {
			return err
		}
		kernels[t.name] = id
		defer deleteKernel(t, id)
	}
	first, full := map[string][]time.Duration{}, map[string][]time.Duration{}
	for range 2 {
		for _, t := range targets {
			f, r, err := roundTrips(ctx, t, kernels[t.name], 100)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			first[t.name], full[t.name] = append(first[t.name], f...), append(full[t.name], r...)
		}
	}
	fmt.Printf("\nKernel round trip, execute_request(\"1+1\"), 200 in a row:\n\n")
	fmt.Printf("| target | first message p50 | p99 | full reply p50 | p99 | full reply p50 vs direct |\n| --- | --- | --- | --- | --- | --- |\n")
	directFull := pct(full["direct"], 50)
	for _, t := range targets {
		fmt.Printf("| %s | %s | %s | %s | %s | %.2fx |\n", t.name, ms(pct(first[t.name], 50)), ms(pct(first[t.name], 99)),
			ms(pct(full[t.name], 50)), ms(pct(full[t.name], 99)), float64(pct(full[t.name], 50))/float64(directFull))
	}
	fmt.Printf("\nOpening 200 kernel WebSockets at once:\n\n| target | wall | open p50 | open p99 |\n| --- | --- | --- | --- |\n")
	for _, t := range targets {
		wall, opens, err := openMany(ctx, t, kernels[t.name], 200)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		fmt.Printf("| %s | %s | %s | %s |\n", t.name, ms(wall), ms(pct(opens, 50)), ms(pct(opens, 99)))
	}
	return nil
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func newKernel(t target) (string, error) {
	req := t.request("POST", "/api/kernels")
	req.Body = io.NopCloser(strings.NewReader(`{"name": "python3"}`))
	resp, err := client.HTTPClient().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var k struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&k); err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%s: create kernel = %s (%v)", t.name, resp.Status, err)
	}
	return k.ID, nil
}

func deleteKernel(t target, id string) {
	if resp, err := client.HTTPClient().Do(t.request("DELETE", "/api/kernels/"+id)); err == nil {
		resp.Body.Close()
	}
}

// dialKernel opens a kernel's channels WebSocket on a target.
func dialKernel(ctx context.Context, t target, kernel string) (*websocket.Conn, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: client.DialContext}}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(t.base, "http")+"/api/kernels/"+kernel+"/channels",
		&websocket.DialOptions{HTTPHeader: t.header.Clone(), HTTPClient: hc, Host: t.host})
	if err == nil {
		c.SetReadLimit(1 << 22)
	}
	return c, err
}

// roundTrips runs n executions one after the other and returns, for each,
// the time to its first reply message and to its end.
func roundTrips(ctx context.Context, t target, kernel string, n int) (first, full []time.Duration, err error) {
	c, err := dialKernel(ctx, t, kernel)
	if err != nil {
		return nil, nil, err
	}
	defer c.CloseNow()
	session := cohort.NewID("bench")
	for range n {
		id := cohort.NewID("msg")
		msg, _ := json.Marshal(map[string]any{
			"header":        map[string]any{"msg_id": id, "username": "bench", "session": session, "msg_type": "execute_request", "version": "5.3"},
			"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
			"content": map[string]any{"code": "1+1", "silent": false, "store_history": false, "user_expressions": map[string]any{},
				"allow_stdin": false, "stop_on_error": true},
		})
		start := time.Now()
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			return nil, nil, err
		}
		var gotFirst bool
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				return nil, nil, err
			}
			var m struct {
				Header struct {
					MsgType string `json:"msg_type"`
				} `json:"header"`
				ParentHeader struct {
					MsgID string `json:"msg_id"`
				} `json:"parent_header"`
				Content struct {
					ExecutionState string `json:"execution_state"`
				}
			}
			if json.Unmarshal(data, &m) != nil || m.ParentHeader.MsgID != id {
				continue
			}
			if !gotFirst {
				first, gotFirst = append(first, time.Since(start)), true
			}
			if m.Header.MsgType == "status" && m.Content.ExecutionState == "idle" {
				full = append(full, time.Since(start))
				break
			}
		}
	}
	return first, full, nil
}

// openMany opens n WebSockets to one kernel at once and returns the wall
// time and each open's time.
func openMany(ctx context.Context, t target, kernel string, n int) (time.Duration, []time.Duration, error) {
	opens := make([]time.Duration, n)
	conns := make([]*websocket.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			t0 := time.Now()
			conns[i], errs[i] = dialKernel(ctx, t, kernel)
			opens[i] = time.Since(t0)
		})
	}
	wg.Wait()
	wall := time.Since(start)
	for _, c := range conns {
		if c != nil {
			c.CloseNow()
		}
	}
	for _, err := range errs {
		if err != nil {
			return 0, nil, err
		}
	}
	return wall, opens, nil
}
