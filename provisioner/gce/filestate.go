package gce

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// mendFileState undoes what a process killed while writing a stack's
// checkpoint leaves on the file:// backend, before the stack is opened.
//
// gocloud's fileblob writes an object to a temporary file it renames, and
// its attributes to a ".attrs" file beside it, which it truncates and
// then writes (gocloud.dev v0.46.1, blob/fileblob/attrs.go, setAttrs).
// Killed in between, the ".attrs" file is empty and every later read of
// the stack fails with "failed to load checkpoint: EOF": seen when a
// replica was killed mid-update (TestE2EGCEReplicasShareTheShards). A
// missing ".attrs" file reads as no attributes (getAttrs), so an empty or
// unreadable one is removed; the checkpoint beside it is whole (renamed
// into place, old or new), and repair makes it true. The temporary files
// of killed writes go too. Callers hold the shard's lease: nobody else
// writes the stack. gs:// writes an object and its metadata at once.
func (s *Stacks) mendFileState(stack string) error {
	dir, ok := strings.CutPrefix(s.opts.StateURL, "file://")
	if !ok {
		return nil
	}
	base := filepath.Join(dir, ".pulumi", "stacks", project, stack+".json")
	attrs, err := filepath.Glob(base + "*.attrs")
	if err != nil {
		return err
	}
	for _, path := range attrs {
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if json.Valid(b) {
			continue
		}
		s.opts.Logger.Warn("removed the torn attributes of a stack's checkpoint (a write was killed)", "stack", stack, "file", path)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	tmps, err := filepath.Glob(base + "*.tmp")
	if err != nil {
		return err
	}
	for _, path := range tmps {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
