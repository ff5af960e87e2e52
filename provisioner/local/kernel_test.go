package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cohortdev/cohort/jupyter"
)

// kernel is a Python kernel of a session's notebook, driven as a browser
// drives it: created through the REST API, fed code over its WebSocket.
type kernel struct {
	ID string
	ws *websocket.Conn
	n  int
}

// output is what a cell printed and the exception it raised, if any.
type output struct {
	stdout string
	ename  string
	evalue string
}

// startKernel creates a kernel in the notebook at address (as Inspect
// reports it) and connects to its channels.
func startKernel(t *testing.T, address, token string) *kernel {
	t.Helper()
	client := jupyter.NewClient(60 * time.Second)
	base, err := jupyter.BaseURL(address)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/kernels", strings.NewReader(`{"name": "python3"}`))
	req.Header.Set("Authorization", "token "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var k kernel
	if err := json.Unmarshal(body, &k); resp.StatusCode != http.StatusCreated || err != nil || k.ID == "" {
		t.Fatalf("create kernel: %s %s", resp.Status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(base, "http") + "/api/kernels/" + k.ID + "/channels"
	k.ws, _, err = websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: client,
		HTTPHeader: http.Header{"Authorization": {"token " + token}},
	})
	if err != nil {
		t.Fatalf("connect to kernel %s: %v", k.ID, err)
	}
	k.ws.SetReadLimit(1 << 22)
	t.Cleanup(func() { k.ws.CloseNow() })
	return &k
}

// run executes code and returns once the kernel is idle again. The
// notebook server nudges a kernel until its output channel is connected
// before it accepts the WebSocket, so no output is lost.
func (k *kernel) run(t *testing.T, code string) output {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	k.n++
	id := fmt.Sprintf("cell-%d", k.n)
	msg, _ := json.Marshal(map[string]any{
		"header":        map[string]any{"msg_id": id, "username": "test", "session": "test", "msg_type": "execute_request", "version": "5.3"},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": code, "silent": false, "store_history": false, "user_expressions": map[string]any{}, "allow_stdin": false},
	})
	if err := k.ws.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatalf("send code to kernel: %v", err)
	}
	var out output
	var stdout bytes.Buffer
	for {
		_, data, err := k.ws.Read(ctx)
		if err != nil {
			t.Fatalf("kernel output of %q: %v", code, err)
		}
		var m struct {
			Header struct {
				MsgType string `json:"msg_type"`
			} `json:"header"`
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content struct {
				Name           string `json:"name"`
				Text           string `json:"text"`
				Ename          string `json:"ename"`
				Evalue         string `json:"evalue"`
				ExecutionState string `json:"execution_state"`
			} `json:"content"`
		}
		if err := json.Unmarshal(data, &m); err != nil || m.ParentHeader.MsgID != id {
			continue
		}
		switch m.Header.MsgType {
		case "stream":
			if m.Content.Name == "stdout" {
				stdout.WriteString(m.Content.Text)
			}
		case "error":
			out.ename, out.evalue = m.Content.Ename, m.Content.Evalue
		case "status":
			if m.Content.ExecutionState == "idle" {
				out.stdout = stdout.String()
				return out
			}
		}
	}
}
