package local

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestExitReasonReadsTheTail: the reason Inspect gives for an exited
// server comes from the end of its log alone, whatever the log's size
// (the participant writes to it), and shows no control or format
// character of it. Not parallel: it measures what it allocates.
func TestExitReasonReadsTheTail(t *testing.T) {
	d := &Driver{root: t.TempDir()}
	if err := os.Mkdir(d.stateDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(d.logPath("ses_big"))
	if err != nil {
		t.Fatal(err)
	}
	// 256 MiB of zeros (a hole: no disk), then the last line, dressed in
	// a terminal's escapes and a right-to-left override.
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	last := "\n\x1b[31mERROR\x00: \u202eboom\x1b[0m\r\n\n"
	if _, err := f.WriteAt([]byte(last), 256<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	reason := d.exitReason("ses_big")
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("exitReason allocated %d bytes for a log of 256 MiB", got)
	}
	if want := "the notebook server exited: [31mERROR: boom[0m"; reason != want {
		t.Errorf("reason %q, want %q", reason, want)
	}
	long := strings.Repeat("é", 2*maxReason) + "\n"
	if err := os.WriteFile(d.logPath("ses_long"), []byte(long), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimPrefix(d.exitReason("ses_long"), "the notebook server exited: "); got != strings.Repeat("é", maxReason) {
		t.Errorf("a long line gives %q", got)
	}
	if got := d.exitReason("ses_none"); got != "the notebook server exited" {
		t.Errorf("no log: %q", got)
	}
	if _, err := os.Stat(filepath.Join(d.stateDir(), "ses_none.log")); err == nil {
		t.Error("exitReason made a log")
	}
}
