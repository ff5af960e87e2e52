package materials

import (
	"archive/tar"
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Tar writes the files of a work directory into tw as Zip would into a
// zip: a stream, for a session VM's agent to send its work through
// (ZipFromTar makes the zip on cohort's side).
func Tar(ctx context.Context, tw *tar.Writer, root *os.Root, want func(name string) bool) (int, error) {
	z := &zipper{ctx: ctx, root: root, want: want, put: func(name string, fi fs.FileInfo, r io.Reader) error {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: fi.Size(), Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, r); err != nil {
			return err
		}
		return tw.Flush() // a file that shrank meanwhile fails here
	}}
	err := z.walk(".", 0)
	return z.files, err
}

// ZipFromTar adds the files of a tar stream (Tar's, from a session VM the
// participant controls) that want accepts (all if nil) to zw under
// prefix. The stream is untrusted: only
// regular files with clean relative names are taken, within Zip's
// limits; anything else ends it with an error naming it.
func ZipFromTar(ctx context.Context, zw *zip.Writer, r io.Reader, prefix string, want func(name string) bool) (int, error) {
	tr := tar.NewReader(r)
	var files, names int
	var bytes int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return files, fmt.Errorf("read the work's tar: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return files, err
		}
		name := h.Name
		switch {
		case h.Typeflag != tar.TypeReg:
			return files, fmt.Errorf("the work's tar holds %q, which is not a regular file", name)
		case !insideName(name):
			return files, fmt.Errorf("the work's tar holds the name %q, outside the work folder", name)
		case len(prefix)+len(name) > MaxZipName:
			return files, fmt.Errorf("the work's tar holds a name of %d bytes: %w", len(name), ErrZipLimit)
		case files >= MaxZipEntries:
			return files, fmt.Errorf("more than %d files: %w", MaxZipEntries, ErrZipLimit)
		}
		if want != nil && !want(name) {
			continue
		}
		if names += len(prefix) + len(name); names > MaxZipNames {
			return files, fmt.Errorf("more than %d MiB of names: %w", MaxZipNames>>20, ErrZipLimit)
		}
		if bytes += h.Size; h.Size < 0 || bytes > MaxZipBytes {
			return files, fmt.Errorf("more than %d GiB: %w", MaxZipBytes>>30, ErrZipLimit)
		}
		if err := zipFile(zw, prefix+name, fs.FileMode(h.Mode).Perm(), h.ModTime, &ctxReader{ctx, tr}); err != nil {
			return files, fmt.Errorf("read %s from the work's tar: %w", name, err)
		}
		files++
	}
}

// insideName is a relative path that stays inside its folder, as Zip
// writes them: no "..", no ".cohort", no backslash.
func insideName(name string) bool {
	if name == "" || path.Clean(name) != name || path.IsAbs(name) || strings.Contains(name, "\\") {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." || part == "." || part == ".cohort" {
			return false
		}
	}
	return true
}
