package materials

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// Limits of one walk of a participant's folder for a zip: its shape is
// theirs to choose, the server's time and memory are not.
const (
	MaxZipDepth   = 64
	MaxZipEntries = 200_000
	MaxZipBytes   = 32 << 30
	// A zip writer keeps every name until it closes: names are bounded
	// one by one and together.
	MaxZipName  = 1024
	MaxZipNames = 32 << 20
)

// ErrZipLimit is a folder past the limits of a zip.
var ErrZipLimit = errors.New("past the limits of a zip")

// Zip writes the regular files of a work directory (open as root) into
// zw under prefix, and returns how many. Symlinks, pipes, devices and
// sockets are left out, as are cohort's .cohort, Jupyter's checkpoints,
// and names with a backslash (a path on Windows). Every file and folder
// is opened without following a symlink and without blocking (a
// participant may swap one for a pipe during the walk), and taken only
// if it is then what the walk saw. A folder deeper, larger or heavier
// than the limits ends the walk with ErrZipLimit; so does ctx. want, if
// set, chooses the files by name.
func Zip(ctx context.Context, zw *zip.Writer, root *os.Root, prefix string, want func(name string) bool) (int, error) {
	z := &zipper{ctx: ctx, root: root, want: want, put: func(name string, fi fs.FileInfo, r io.Reader) error {
		return zipFile(zw, prefix+name, fi.Mode().Perm(), fi.ModTime(), r)
	}}
	err := z.walk(".", 0)
	return z.files, err
}

// zipFile adds one file to a zip.
func zipFile(zw *zip.Writer, name string, perm fs.FileMode, modified time.Time, r io.Reader) error {
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: modified.UTC()}
	if h.Modified.IsZero() {
		h.Modified = time.Unix(0, 0)
	}
	h.SetMode(perm)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	return err
}

// zipper walks a work directory for Zip and Tar; put takes each file.
type zipper struct {
	ctx  context.Context
	root *os.Root
	want func(string) bool
	put  func(name string, fi fs.FileInfo, r io.Reader) error

	files, seen int
	bytes       int64
	names       int
}

func (z *zipper) walk(dir string, depth int) error {
	if depth > MaxZipDepth {
		return fmt.Errorf("%s is more than %d folders deep: %w", dir, MaxZipDepth, ErrZipLimit)
	}
	d, err := z.root.OpenFile(dir, os.O_RDONLY|oDIRECTORY|oNOFOLLOW|oNONBLOCK, 0)
	if err != nil {
		if dir == "." {
			return err
		}
		return nil // gone, or swapped for something else: nothing to give
	}
	defer d.Close()
	for {
		entries, err := d.ReadDir(1000)
		for _, e := range entries {
			if err := z.entry(dir, e, depth); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (z *zipper) entry(dir string, e fs.DirEntry, depth int) error {
	if z.seen++; z.seen > MaxZipEntries {
		return fmt.Errorf("more than %d entries: %w", MaxZipEntries, ErrZipLimit)
	}
	if err := z.ctx.Err(); err != nil {
		return err
	}
	name := path.Join(dir, e.Name())
	switch {
	case name == ".cohort" || e.Name() == ".ipynb_checkpoints" || strings.Contains(e.Name(), "\\"):
	case e.IsDir():
		return z.walk(name, depth+1)
	case len(name) > MaxZipName: // left out, as a name Windows cannot hold
	case e.Type().IsRegular() && (z.want == nil || z.want(name)):
		if z.names += len(name); z.names > MaxZipNames {
			return fmt.Errorf("more than %d MiB of names: %w", MaxZipNames>>20, ErrZipLimit)
		}
		return z.add(name)
	}
	return nil
}

// add adds one file, if it is a regular file when opened.
func (z *zipper) add(name string) error {
	f, err := openRegular(z.root, name)
	if err != nil {
		return nil // gone, or swapped: not theirs to give
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	if z.bytes += fi.Size(); z.bytes > MaxZipBytes {
		return fmt.Errorf("more than %d GiB: %w", MaxZipBytes>>30, ErrZipLimit)
	}
	// At most the size seen (a file that grows meanwhile is cut there),
	// and no further once the request is gone.
	if err := z.put(name, fi, &ctxReader{z.ctx, io.LimitReader(f, fi.Size())}); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	z.files++
	return nil
}

// ctxReader stops reading when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Matching accepts the names that match one of patterns (path.Match);
// every name if there are none.
func Matching(patterns []string) func(name string) bool {
	if len(patterns) == 0 {
		return nil
	}
	return func(name string) bool {
		return slices.ContainsFunc(patterns, func(p string) bool { ok, _ := path.Match(p, name); return ok })
	}
}
