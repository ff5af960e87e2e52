package agent_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cohortdev/cohort/agent"
)

// loopDisk is a blank disk image on a loop device, as a new persistent
// disk is: root and a loop device are needed.
func loopDisk(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a disk needs root")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device here: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// mounted reads the file system type mounted on dir; "" if none.
func mounted(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 8 && f[4] == dir {
			for i, x := range f {
				if x == "-" && i+1 < len(f) {
					return f[i+1]
				}
			}
		}
	}
	return ""
}

type mountRun struct {
	cancel context.CancelFunc
	done   chan error
}

func startMount(o agent.MountOptions) *mountRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &mountRun{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- agent.MountWork(ctx, o) }()
	return r
}

// wait waits for MountWork to end on its own.
func (r *mountRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("MountWork did not end")
		return nil
	}
}

func (r *mountRun) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// TestMountWork: the work disk attached after boot is formatted once,
// mounted for the participant, unmounted at shutdown, and mounted again
// with their files by the next session's VM; a disk holding another
// file system is never formatted.
func TestMountWork(t *testing.T) {
	dev := loopDisk(t)
	dir := t.TempDir()
	o := agent.MountOptions{Device: filepath.Join(dir, "by-id", "google-cohort-work"), Dir: filepath.Join(dir, "work"),
		Ready: filepath.Join(dir, "run", "work-ready"), UID: 4242, GID: 4243, Poll: 50 * time.Millisecond}
	t.Cleanup(func() { exec.Command("umount", "-l", o.Dir).Run() })
	os.MkdirAll(filepath.Dir(o.Device), 0o755)
	if err := os.Symlink(dev, o.Device); err != nil {
		t.Fatal(err)
	}
	// A blank disk its session did not make (a damaged one?) is never
	// formatted.
	if err := startMount(o).wait(t); err == nil || !strings.Contains(err.Error(), "not new: it is left as it is") {
		t.Fatalf("a blank disk not made new = %v", err)
	}
	os.Remove(o.Device)
	o.New = func(context.Context) bool { return true }

	run := startMount(o)
	time.Sleep(300 * time.Millisecond) // the disk is attached after the VM
	if _, err := os.Stat(o.Ready); err == nil {
		t.Fatal("ready before the disk came")
	}
	if err := os.Symlink(dev, o.Device); err != nil {
		t.Fatal(err)
	}
	waitFile(t, o.Ready)
	if fs := mounted(t, o.Dir); fs != "ext4" {
		t.Fatalf("mounted on the work folder: %q, want ext4", fs)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(o.Dir, &st); err != nil || st.Uid != 4242 || st.Gid != 4243 {
		t.Fatalf("the work folder is %d:%d (%v), want the participant's", st.Uid, st.Gid, err)
	}
	if entries, _ := os.ReadDir(o.Dir); len(entries) != 0 {
		t.Errorf("a new disk shows %v", entries)
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "train.ipynb"), []byte("ada's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	if fs := mounted(t, o.Dir); fs != "" {
		t.Fatalf("still mounted after shutdown: %s", fs)
	}

	// The next session's VM: the same disk, not formatted again.
	os.Remove(o.Ready)
	run = startMount(o)
	waitFile(t, o.Ready)
	if b, err := os.ReadFile(filepath.Join(o.Dir, "train.ipynb")); err != nil || string(b) != "ada's" {
		t.Fatalf("the next session reads %q, %v", b, err)
	}
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}

	// Not cohort's disk: left alone.
	if out, err := exec.Command("mkswap", dev).CombinedOutput(); err != nil {
		t.Skipf("mkswap: %v: %s", err, out)
	}
	os.Remove(o.Ready)
	run = startMount(o)
	if err := run.wait(t); err == nil || !strings.Contains(err.Error(), "holds a swap file system") {
		t.Fatalf("a swap disk = %v", err)
	}
	if fs := mounted(t, o.Dir); fs != "" {
		t.Fatalf("a swap disk was mounted: %s", fs)
	}
	run.cancel()
}

// TestMountWorkWithoutADisk: a VM that gets no work disk (a warm seat
// nobody claimed) shuts down without one.
func TestMountWorkWithoutADisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	run := startMount(agent.MountOptions{Device: filepath.Join(dir, "none"), Dir: filepath.Join(dir, "work"), Ready: filepath.Join(dir, "ready"), Poll: 10 * time.Millisecond})
	time.Sleep(100 * time.Millisecond)
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		t.Fatal("ready with no disk")
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
