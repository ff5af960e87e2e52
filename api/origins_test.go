package api

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

func TestNotebookDomainIsNotTheApps(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		app, domain string
		ok          bool
	}{
		{"http://127.0.0.1:8080", "localhost:8080", true},
		{"https://cohort.example.org", "cohort-notebooks.example", true},
		{"https://cohort.example.org", "nb.example.org", true}, // one site, allowed with a warning
		{"http://localhost:8080", "localhost:8080", false},     // the app is the notebook domain
		{"https://cohort.example.org", "example.org", false},   // the app is under it
		{"https://cohort.example.org", "cohort.example.org", false},
		{"https://cohort.example.org", "10.0.0.1", false},
		{"https://cohort.example.org", "*.nb.example.org", false},
		{"https://cohort.example.org", "", false},
		// Plain http only on this machine: elsewhere cookies could not
		// carry the __Host- prefix.
		{"http://cohort.example.org", "cohort-notebooks.example", false},
		{"http://10.0.0.5:8080", "nb.lab.example", false},
		{"http://[::1]:8080", "localhost:8080", true},
	} {
		_, err := newOrigins(tt.app, tt.domain)
		if (err == nil) != tt.ok {
			t.Errorf("app %s, notebooks at %q: %v, want ok %v", tt.app, tt.domain, err, tt.ok)
		}
	}
	o, _ := newOrigins("https://cohort.example.org", "nb.example.org")
	if !o.sharesSite("https://cohort.example.org") {
		t.Error("cohort.example.org and nb.example.org are one site")
	}
}

func TestSessionOrigins(t *testing.T) {
	t.Parallel()
	o, err := newOrigins("http://127.0.0.1:8080", "localhost:8080")
	if err != nil {
		t.Fatal(err)
	}
	if got := o.origin("ses_abc234"); got != "http://ses-abc234.localhost:8080" {
		t.Fatalf("origin = %s", got)
	}
	for host, want := range map[string]string{
		"ses-abc234.localhost:8080":      "ses_abc234",
		"SES-ABC234.LOCALHOST:8080":      "ses_abc234",
		"ses-abc234.localhost":           "", // another port: another origin
		"ses-abc234.localhost:9090":      "",
		"x.ses-abc234.localhost:8080":    "",
		"ses-abc-234.localhost:8080":     "",
		"cls-abc234.localhost:8080":      "",
		"ses_abc234.localhost:8080":      "",
		"localhost:8080":                 "",
		"127.0.0.1:8080":                 "",
		"ses-abc234.localhost:8080.evil": "",
	} {
		got, ok := o.session(host)
		if got != want || ok != (want != "") {
			t.Errorf("session(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
}

// TestSlowBodiesAreCut: a client that trickles its body does not hold a
// handler past the bound; one that sends in time is served.
func TestSlowBodiesAreCut(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(guardBody(200*time.Millisecond, 500*time.Millisecond))
	r.POST("/", func(c *gin.Context) {
		buf := make([]byte, 1)
		n := 0
		for {
			k, err := c.Request.Body.Read(buf)
			n += k
			if err != nil {
				if strings.Contains(err.Error(), "timeout") {
					c.String(http.StatusRequestTimeout, "cut after %d bytes", n)
					return
				}
				c.String(http.StatusOK, "read %d bytes", n)
				return
			}
		}
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	send := func(gap time.Duration, n int) string {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"))
		for range n {
			time.Sleep(gap)
			if _, err := conn.Write([]byte("x")); err != nil {
				break
			}
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return line
	}
	if got := send(time.Millisecond, 10); !strings.Contains(got, "200") {
		t.Errorf("a prompt body: %q", got)
	}
	if got := send(400*time.Millisecond, 3); !strings.Contains(got, "408") {
		t.Errorf("a body that stalls: %q, want it cut", got)
	}
	if got := send(100*time.Millisecond, 10); !strings.Contains(got, "408") {
		t.Errorf("a body that trickles past the total: %q, want it cut", got)
	}
}

// TestLimiterStaysBounded: made-up keys cannot grow the limiter without
// bound, nor make each event a scan of all keys.
func TestLimiterStaysBounded(t *testing.T) {
	t.Parallel()
	l := newLimiter(1, time.Minute)
	now := time.Now()
	for i := range maxKeys {
		l.allow(strconv.Itoa(i), now)
	}
	if l.allow("one more", now) {
		t.Fatal("a new key past maxKeys was allowed")
	}
	if !l.allow("one more", now.Add(time.Minute)) || len(l.windows) > pruneAbove {
		t.Fatalf("after a window, old keys are still held (%d)", len(l.windows))
	}
	if l.allow("one more", now.Add(time.Minute)) {
		t.Fatal("a second event in the window was allowed")
	}
}
