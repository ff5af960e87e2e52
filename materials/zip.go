package materials

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// Zip writes the regular files of a work directory (open as root) into
// zw under prefix, and returns how many. Symlinks, pipes, devices and
// sockets are left out, as are cohort's .cohort and Jupyter's
// checkpoints. A file is opened without following a symlink and without
// blocking (a participant may swap a file for a pipe during the walk),
// and taken only if it is then a regular file. want, if set, chooses the
// files by name.
func Zip(zw *zip.Writer, root *os.Root, prefix string, want func(name string) bool) (int, error) {
	n := 0
	var walk func(dir string) error
	walk = func(dir string) error {
		d, err := root.Open(dir)
		if err != nil {
			return err
		}
		entries, err := d.ReadDir(-1)
		d.Close()
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := path.Join(dir, e.Name())
			switch {
			case name == ".cohort" || e.Name() == ".ipynb_checkpoints":
			case e.IsDir():
				if err := walk(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			case e.Type().IsRegular() && (want == nil || want(name)):
				ok, err := AddFile(zw, root, name, prefix+name)
				if err != nil {
					return err
				}
				if ok {
					n++
				}
			}
		}
		return nil
	}
	return n, walk(".")
}

// AddFile adds one file of the work directory as name as, if it is a
// regular file.
func AddFile(zw *zip.Writer, root *os.Root, name, as string) (bool, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|oNOFOLLOW|oNONBLOCK, 0)
	if err != nil {
		return false, nil // gone, or swapped for a symlink: not theirs to give
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	h := &zip.FileHeader{Name: strings.TrimPrefix(as, "./"), Method: zip.Deflate, Modified: fi.ModTime().UTC()}
	if h.Modified.IsZero() {
		h.Modified = time.Unix(0, 0)
	}
	h.SetMode(fi.Mode().Perm())
	w, err := zw.CreateHeader(h)
	if err != nil {
		return false, err
	}
	if _, err := io.Copy(w, f); err != nil {
		return false, fmt.Errorf("read %s: %w", name, err)
	}
	return true, nil
}
