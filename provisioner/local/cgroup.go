package local

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// cgroups puts each isolated session in a cgroup v2 of its own, next to
// cohort's, when this machine lets cohort make one. The session's first
// process is created inside it (clone3 with CLONE_INTO_CGROUP), nothing
// of the session can leave it (moving a process needs write access to
// the target's cgroup.procs, which is root's), and cgroup.kill ends all
// of it at once. Stop also kills by uid, which is enough on its own: the
// cgroup is a second net, not the only one. Under systemd, cohort's unit
// should have Delegate=yes so that systemd leaves these cgroups alone.
type cgroups struct {
	// parent is where session cgroups are made; "" when unavailable.
	parent string
	// prefix names this driver's cgroups: one per root, so that two
	// drivers never share one.
	prefix string
}

// findCgroups looks for a cgroup v2 hierarchy where cohort can make
// cgroups with cgroup.kill (Linux 5.14), and says why not if it cannot.
func findCgroups(root string) (cgroups, error) {
	mount, err := cgroup2Mount()
	if err != nil {
		return cgroups{}, err
	}
	self, err := ownCgroup()
	if err != nil {
		return cgroups{}, err
	}
	sum := sha256.Sum256([]byte(root))
	c := cgroups{parent: filepath.Join(mount, self), prefix: "cohort-" + hex.EncodeToString(sum[:4]) + "-"}
	probe := c.path("probe")
	if err := os.Mkdir(probe, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return cgroups{}, fmt.Errorf("make a cgroup in %s: %w", c.parent, err)
	}
	defer os.Remove(probe)
	if _, err := os.Stat(filepath.Join(probe, "cgroup.kill")); err != nil {
		return cgroups{}, fmt.Errorf("cgroups of %s have no cgroup.kill (Linux before 5.14)", c.parent)
	}
	return c, nil
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted:
// /sys/fs/cgroup on a unified system, /sys/fs/cgroup/unified on a hybrid
// one.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4], nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted")
}

// ownCgroup returns cohort's own cgroup v2 path ("0::/path").
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			return path, nil
		}
	}
	return "", errors.New("cohort is in no cgroup v2")
}

func (c cgroups) available() bool { return c.parent != "" }

func (c cgroups) path(sessionID string) string {
	return filepath.Join(c.parent, c.prefix+sessionID)
}

// makeCgroup creates the cgroup at dir and opens it for CLONE_INTO_CGROUP.
func makeCgroup(dir string) (*os.File, error) {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("make cgroup: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open cgroup: %w", err)
	}
	return f, nil
}

// killCgroup ends every process in the cgroup at dir.
func killCgroup(dir string) error {
	err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// cgroupPopulated reports whether a process is in the cgroup at dir (or
// below it); false when dir is "" or has gone.
func cgroupPopulated(dir string) bool {
	if dir == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "populated "); ok {
			return v != "0"
		}
	}
	return false
}

// removeCgroup removes the cgroup at dir once its processes are gone; the
// kernel refuses (EBUSY) while one is still exiting.
func removeCgroup(dir string) error {
	err := os.Remove(dir)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("cgroup %s still has processes or child cgroups", dir)
	}
	return fmt.Errorf("remove cgroup: %w", err)
}
