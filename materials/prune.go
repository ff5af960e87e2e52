package materials

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cohortdev/cohort"
)

// Versions and clones pile up: each commit a branch moves to and each
// archive uploaded is a version (up to MaxBytes), and each repository a
// class ever named has a clone. Prune deletes what no class needs: a
// version that is no class's and that no session was given since
// before (a session given an older one may still be delivering it), and
// the clone of a repository no class names that was not fetched into
// since before.

// Prune deletes the versions and clones that none of classes needs and
// that were last used before before, and says how many of each it
// deleted. Each server prunes its own folder.
func (l *Library) Prune(ctx context.Context, classes []*cohort.Class, before time.Time) (versions, clones int, err error) {
	keep, repos := map[string]bool{}, map[string]bool{}
	for _, c := range classes {
		if m := c.Materials; m != nil {
			keep[m.Version+".tar"] = true
			if m.Repo != "" {
				repos[filepath.Base(l.clone(m.Repo))] = true
			}
		}
	}
	var errs []error
	entries, err := os.ReadDir(filepath.Join(l.dir, "versions"))
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		if keep[e.Name()] || !strings.HasSuffix(e.Name(), ".tar") {
			continue
		}
		removed, err := l.removeVersion(filepath.Join(l.dir, "versions", e.Name()), before)
		if err != nil {
			errs = append(errs, err)
		}
		if removed {
			versions++
		}
	}
	entries, err = os.ReadDir(filepath.Join(l.dir, "repos"))
	if err != nil {
		return versions, 0, errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		bare := filepath.Join(l.dir, "repos", e.Name())
		if repos[e.Name()] || !usedBefore(bare, before) {
			continue
		}
		if err := l.removeClone(bare, before); err != nil {
			errs = append(errs, err)
			continue
		}
		clones++
	}
	return versions, clones, errors.Join(errs...)
}

// removeVersion deletes a version unless it was used since before: its
// use (touch) and its writing (a rename into place) wait for the look
// and the removal, and a use after them finds it gone.
func (l *Library) removeVersion(path string, before time.Time) (bool, error) {
	l.using.Lock()
	defer l.using.Unlock()
	if !usedBefore(path, before) {
		return false, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// removeClone deletes a repository's clone unless a fetch used it
// meanwhile: it waits for the repository's fetch, and looks again.
func (l *Library) removeClone(bare string, before time.Time) error {
	defer l.lockClone(bare)()
	if !usedBefore(bare, before) {
		return nil
	}
	return os.RemoveAll(bare)
}

// usedBefore says whether path (a version, or a clone) was last used
// before t: its modification time, which touch moves at each use.
func usedBefore(path string, t time.Time) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.ModTime().Before(t)
}

// touch records that path is used now, for Prune.
func (l *Library) touch(path string) {
	l.using.RLock()
	defer l.using.RUnlock()
	now := l.now()
	if err := os.Chtimes(path, now, now); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.log.Warn("materials: record a use", "path", path, "error", err)
	}
}
