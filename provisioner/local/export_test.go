package local

import (
	"os"
	"path/filepath"
	"strings"
)

// WithoutCgroups makes d end sessions by uid alone, as on a machine
// without cgroup v2, so that tests cover that path on machines with one.
func WithoutCgroups(d *Driver) { d.cgroups = cgroups{} }

// HasCgroups reports whether d puts sessions in cgroups of their own.
func HasCgroups(d *Driver) bool { return d.cgroups.available() }

// CgroupOf is where d puts session id's cgroup, "" without cgroups.
func CgroupOf(d *Driver, id string) string {
	if !d.cgroups.available() {
		return ""
	}
	return d.cgroups.path(id)
}

// LogPath is where the notebook server of session id writes.
func LogPath(d *Driver, id string) string { return d.logPath(id) }

// KnownSessions returns every session d has a record or a uid of, running
// or not: what a test's cleanup must stop.
func KnownSessions(d *Driver) []string {
	seen := map[string]bool{}
	records, _ := filepath.Glob(filepath.Join(d.stateDir(), "*.json"))
	for _, r := range records {
		seen[strings.TrimSuffix(filepath.Base(r), ".json")] = true
	}
	if d.isolated() {
		held, _ := d.claims.all()
		for _, id := range held {
			if !strings.HasPrefix(id, retiredPrefix) {
				seen[id] = true
			}
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	return sortedIDs(ids)
}

// Retired reports whether uid serves no session ever again.
func Retired(d *Driver, uid uint32) bool {
	id, _ := os.Readlink(d.claims.path(uid))
	return strings.HasPrefix(id, retiredPrefix)
}

// ForgetPID makes session id's record look as a start cut short between
// the launch and its record leaves it: no server recorded.
func ForgetPID(d *Driver, id string) error {
	in, err := d.readInstance(id)
	if err != nil || in == nil {
		return err
	}
	in.PID = 0
	return d.writeInstance(id, in)
}
