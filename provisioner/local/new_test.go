package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort/provisioner/local"
	"github.com/cohortdev/cohort/provisioner/local/localtest"
)

// TestNewRefusesUnsafeIsolation: New says why session uids cannot work
// rather than starting notebooks that would fail or share.
func TestNewRefusesUnsafeIsolation(t *testing.T) {
	t.Parallel()
	t.Run("not root", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("runs as root; the refusal for other users is checked when the tests run as one")
		}
		_, err := local.New(local.Options{Root: t.TempDir(), UIDs: local.DefaultUIDs()})
		if err == nil || !strings.Contains(err.Error(), "root") {
			t.Fatalf("New with UIDs as uid %d = %v", os.Geteuid(), err)
		}
	})
	t.Run("accounts in the range", func(t *testing.T) {
		localtest.UIDs(t, 1) // skips unless root
		_, err := local.New(local.Options{Root: localtest.Root(t), UIDs: local.UIDRange{First: 65534, Last: 65534}})
		if err == nil || !strings.Contains(err.Error(), "/etc/passwd: nobody (65534)") {
			t.Fatalf("New with nobody's uid in the range = %v", err)
		}
	})
	t.Run("root out of reach", func(t *testing.T) {
		uids := localtest.UIDs(t, 1)
		private := filepath.Join(localtest.Root(t), "private")
		if err := os.Mkdir(private, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := local.New(local.Options{Root: filepath.Join(private, "sessions"), UIDs: uids})
		if err == nil || !strings.Contains(err.Error(), private+" is not traversable") {
			t.Fatalf("New under a 0700 directory = %v", err)
		}
	})
	t.Run("server in /tmp", func(t *testing.T) {
		uids := localtest.UIDs(t, 1)
		bin, err := os.CreateTemp("/tmp", "cohort-test-server-")
		if err != nil {
			t.Fatal(err)
		}
		bin.Close()
		t.Cleanup(func() { os.Remove(bin.Name()) })
		_, err = local.New(local.Options{Root: localtest.Root(t), UIDs: uids, Bin: bin.Name()})
		if err == nil || !strings.Contains(err.Error(), "each session gets an empty copy of") {
			t.Fatalf("New with the notebook server in /tmp = %v", err)
		}
	})
	t.Run("range", func(t *testing.T) {
		for _, s := range []string{"0-10", "10-5", "65530-65540", "1-4294967295", "2000000000", "a-b"} {
			if r, err := local.ParseUIDRange(s); err == nil {
				t.Errorf("ParseUIDRange(%q) = %v, want an error", s, r)
			}
		}
		if r, err := local.ParseUIDRange(local.DefaultUIDs().String()); err != nil || r != local.DefaultUIDs() || r.Len() != 1000 {
			t.Errorf("the default range does not read back: %v %v", r, err)
		}
	})
}

// TestStopKillsTheCgroup: where cgroup v2 can be had, a session's
// processes are all in its cgroup, and Stop leaves neither them nor it.
func TestStopKillsTheCgroup(t *testing.T) {
	t.Parallel()
	opts := local.Options{UIDs: localtest.UIDs(t, 2), Root: localtest.Root(t)}
	opts.Bin = filepath.Join(localtest.Root(t), "forking-notebook")
	if err := os.WriteFile(opts.Bin, []byte("#!/bin/sh\nsetsid -f sleep 600\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, opts)
	if !local.HasCgroups(d) {
		t.Skip("no cgroup v2 with cgroup.kill on this machine: sessions are ended by uid alone")
	}
	ctx := context.Background()
	if err := d.Start(ctx, spec("ses_cg")); err != nil {
		t.Fatal(err)
	}
	uid := ownerOf(t, filepath.Dir(d.WorkDir("ses_cg")))
	var procs []string
	for deadline := time.Now().Add(30 * time.Second); len(procs) < 2; procs = procsOfUID(t, uid) {
		if time.Now().After(deadline) {
			t.Fatalf("the session runs %v, want its two sleeps", procs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cgroups := map[string]bool{}
	for _, p := range procs {
		pid, _, _ := strings.Cut(p, " ")
		b, _ := os.ReadFile("/proc/" + pid + "/cgroup")
		for line := range strings.SplitSeq(string(b), "\n") {
			if path, ok := strings.CutPrefix(line, "0::"); ok {
				cgroups[path] = true
			}
		}
	}
	if len(cgroups) != 1 {
		t.Fatalf("the session's processes are in cgroups %v, want one", cgroups)
	}
	if err := d.Stop(ctx, "ses_cg"); err != nil {
		t.Fatal(err)
	}
	if left := procsOfUID(t, uid); len(left) > 0 {
		t.Fatalf("processes left: %v", left)
	}
	for path := range cgroups {
		for _, mount := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
			if _, err := os.Stat(filepath.Join(mount, path, "cgroup.procs")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cgroup %s is left after the stop (%v)", path, err)
			}
		}
	}
}
