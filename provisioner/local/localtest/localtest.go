// Package localtest gives tests what the local driver's isolated sessions
// need: a sessions root that session uids can reach, and a range of uids
// of their own.
package localtest

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cohortdev/cohort/provisioner/local"
)

// Root returns a fresh sessions root, removed at cleanup. It is made
// rather than taken from t.TempDir(), whose directories are 0700: a
// session's uid could not pass through them to its own directory. As root
// it is made in /run, not in os.TempDir(): an isolated session gets an
// empty /tmp of its own, where it would not find the programs tests put
// beside its directory.
func Root(t testing.TB) string {
	t.Helper()
	base := os.TempDir()
	if os.Geteuid() == 0 {
		base = "/run"
	}
	dir, err := os.MkdirTemp(base, "cohort-sessions-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove sessions root: %v", err)
		}
	})
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return dir
}

// UIDs returns n session uids for a test's driver, or skips the test when
// it cannot have them: a uid per session needs root (CI runs as root).
// The range is drawn at random from a block below local.DefaultUIDs, so
// that tests running at once, in other test binaries too, do not share
// uids, and never meet a cohort that runs on this machine.
func UIDs(t testing.TB, n int) local.UIDRange {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("isolated sessions need root (a uid per session): run the tests as root, as CI does")
	}
	const first, size = 1_900_000_000, 90_000_000
	base := uint32(first + rand.IntN(size/n)*n)
	return local.UIDRange{First: base, Last: base + uint32(n) - 1}
}
