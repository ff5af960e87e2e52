package local

import (
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The notebook server's output goes to .cohort/ID.log, where cohort reads
// why a server exited. The participant writes to it too (a kernel's
// stdout is the server's), as much and whatever they like: cohort reads
// only its tail, shows no control character of it, and keeps it from
// growing without bound.
const (
	// logTail is how much of the log's end exitReason reads.
	logTail = 4 << 10
	// maxLog is the size past which the log is emptied, at a start and
	// when Inspect finds the server running.
	maxLog = 8 << 20
	// maxReason bounds the part of a line a reason shows, in runes.
	maxReason = 300
)

// exitReason is the last line the notebook server wrote, which usually
// says why it ended.
func (d *Driver) exitReason(id string) string {
	last := lastLine(d.logPath(id))
	if last == "" {
		return "the notebook server exited"
	}
	return "the notebook server exited: " + last
}

// lastLine returns the last non-empty line in the final logTail bytes of
// the file at path, with control characters and invalid UTF-8 removed,
// and at most maxReason runes of its end.
func lastLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	buf := make([]byte, min(fi.Size(), logTail))
	n, err := f.ReadAt(buf, fi.Size()-int64(len(buf)))
	if err != nil && err != io.EOF {
		return ""
	}
	text := strings.TrimRightFunc(string(buf[:n]), unicode.IsSpace)
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[i+1:]
	}
	return lastRunes(printable(text), maxReason)
}

// printable drops control characters (a terminal's escapes among them),
// format characters (bidirectional overrides, which reorder what a reader
// sees) and invalid UTF-8 from s, and trims it.
func printable(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s))
}

// lastRunes returns the last n runes of s.
func lastRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[len(r)-n:])
}

// capLog empties the log at path once it has passed maxLog. The server
// appends (O_APPEND), so its next write lands at the new end.
func capLog(path string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= maxLog {
		return nil
	}
	return os.Truncate(path, 0)
}
