package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The work disk (infra/work.go): a persistent disk of the participant's
// own, attached to the session's VM as /dev/disk/by-id/google-cohort-work
// at its start, or when a warm seat is claimed. MountWork, run as root
// (cohort-work.service), formats it if it is blank and mounts it where
// Jupyter serves the participant's files; the agent, run as the
// participant, waits for it when the metadata says a disk comes.

// Defaults of the image's layout.
const (
	DefaultWorkDevice = "/dev/disk/by-id/google-cohort-work"
	// DefaultWorkDir is where Jupyter serves the participant's files: its
	// parent is root's, so the participant cannot swap the folder for a
	// link to where root would then mount the disk.
	DefaultWorkDir   = "/var/lib/cohort/work"
	DefaultWorkReady = "/run/cohort/work-ready"
)

// MountOptions configure MountWork.
type MountOptions struct {
	// Device is the work disk's device link; Dir where it is mounted;
	// Ready the file written once it is (on a tmpfs: gone at a reboot).
	Device, Dir, Ready string
	// UID and GID own the disk's top folder: the participant's.
	UID, GID int
	// New says whether the disk is one its session made (the metadata's
	// infra.MetaWorkNew): only such a disk is formatted when it holds no
	// file system. Nil: never.
	New func(context.Context) bool
	// Poll is how often the device is looked for; 1s if zero.
	Poll   time.Duration
	Logger *slog.Logger
}

// MountWork waits for the work disk, formats it (ext4) if it holds no
// file system, mounts it on Dir and writes Ready; it unmounts it when ctx
// ends (the VM shuts down). A disk with a file system other than ext4 is
// never formatted: that is an error.
func MountWork(ctx context.Context, o MountOptions) error {
	if o.Poll == 0 {
		o.Poll = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	for {
		if _, err := os.Stat(o.Device); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil // no disk came: a VM without work
		case <-time.After(o.Poll):
		}
	}
	if err := mountWork(ctx, o); err != nil {
		return err
	}
	o.Logger.Info("work disk mounted", "device", o.Device, "dir", o.Dir)
	<-ctx.Done()
	// Jupyter has stopped (cohort-agent.service is ordered after this).
	if out, err := exec.Command("umount", o.Dir).CombinedOutput(); err != nil {
		return fmt.Errorf("unmount the work disk: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func mountWork(ctx context.Context, o MountOptions) error {
	dev, err := filepath.EvalSymlinks(o.Device)
	if err != nil {
		return err
	}
	mounted, err := mountedAt(o.Dir)
	if err != nil || mounted {
		return err // an agent restarted: the disk is there
	}
	fs, err := fsType(ctx, dev)
	switch {
	case err != nil:
		return err
	case fs == "" && (o.New == nil || !o.New(ctx)):
		// Not a disk its session made: something went wrong with it (a
		// damaged superblock?), and formatting would wipe the work.
		return fmt.Errorf("the work disk %s holds no file system cohort can read, and it is not new: it is left as it is", o.Device)
	case fs == "":
		// Google's advice for a new persistent disk
		// (cloud.google.com/compute/docs/disks/format-mount-disk-linux).
		if err := run(ctx, "mkfs.ext4", "-q", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0,discard", "-L", "cohort-work", dev); err != nil {
			return fmt.Errorf("format the work disk: %w", err)
		}
	case fs != "ext4":
		return fmt.Errorf("the work disk %s holds a %s file system, not cohort's ext4: it is left as it is", o.Device, fs)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	// nosuid, nodev: the participant's files give nobody root.
	if err := run(ctx, "mount", "-t", "ext4", "-o", "defaults,discard,nosuid,nodev", dev, o.Dir); err != nil {
		return fmt.Errorf("mount the work disk: %w", err)
	}
	if err := os.Chown(o.Dir, o.UID, o.GID); err != nil {
		return err
	}
	if err := os.Chmod(o.Dir, 0o755); err != nil {
		return err
	}
	if lost := filepath.Join(o.Dir, "lost+found"); exists(lost) {
		// Root's, 0700: an empty folder the participant cannot open.
		os.Remove(lost)
	}
	if err := os.MkdirAll(filepath.Dir(o.Ready), 0o755); err != nil {
		return err
	}
	return os.WriteFile(o.Ready, []byte(o.Dir+"\n"), 0o644)
}

// fsType is the file system blkid finds on a device; "" if none.
func fsType(ctx context.Context, dev string) (string, error) {
	out, err := exec.CommandContext(ctx, "blkid", "-p", "-o", "value", "-s", "TYPE", dev).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		return "", nil // blkid(8): nothing was found
	}
	if err != nil {
		return "", fmt.Errorf("read the work disk's file system: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// mountedAt says whether something is mounted on dir.
func mountedAt(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// mountinfo(5): the fifth field is the mount point.
		if fields := strings.Fields(s.Text()); len(fields) > 4 && fields[4] == dir {
			return true, nil
		}
	}
	return false, s.Err()
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// waitForWork waits for MountWork's Ready file, up to limit.
func waitForWork(ctx context.Context, ready string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !exists(ready) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the work disk was not ready within %s (%s never appeared)", limit, ready)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
