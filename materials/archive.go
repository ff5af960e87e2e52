package materials

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/cohortdev/cohort"
)

// AddArchive stores an uploaded archive (zip, tar or tar.gz) as a version
// of materials and returns its description. Everything in it must be a
// regular file or a directory under a relative name inside it: a
// symlink, a hard link, a device or a name reaching outside (zip-slip) is
// refused, naming the entry, and nothing is stored. A single top
// directory holding everything (as in GitHub's downloads) is taken off;
// macOS's __MACOSX and .DS_Store are left out.
func (l *Library) AddArchive(name string, r io.Reader) (*cohort.Materials, error) {
	tmp, err := os.CreateTemp(l.dir, ".upload-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(r, MaxUpload+1))
	if err != nil {
		return nil, fmt.Errorf("receive the archive: %w", err)
	}
	if n > MaxUpload {
		return nil, cohort.Invalid("archive", "the archive is larger than %d MiB", MaxUpload>>20)
	}
	l.writing.Lock()
	defer l.writing.Unlock()
	files, err := readArchive(tmp, n)
	if err != nil {
		return nil, err
	}
	m, err := l.write(contentVersion("archive-", files), files)
	if err != nil {
		return nil, err
	}
	m.Archive = path.Base(strings.ReplaceAll(name, "\\", "/"))
	return m, nil
}

// readArchive reads the files of an archive, by its first bytes.
func readArchive(f *os.File, size int64) ([]entry, error) {
	head := make([]byte, 512)
	k, _ := f.ReadAt(head, 0)
	head = head[:k]
	var files []entry
	var err error
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		files, err = readZip(f, size)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		var gz *gzip.Reader
		if gz, err = gzip.NewReader(bufio.NewReader(io.NewSectionReader(f, 0, size))); err == nil {
			files, err = readTar(gz)
		}
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		files, err = readTar(io.NewSectionReader(f, 0, size))
	default:
		return nil, cohort.Invalid("archive", "the file is not a zip, tar or tar.gz archive")
	}
	if err != nil {
		if cohort.ErrorCode(err) == cohort.EINVALID {
			return nil, err
		}
		return nil, cohort.Invalid("archive", "the archive cannot be read: %v", err)
	}
	return tidy(files)
}

func readZip(f *os.File, size int64) ([]entry, error) {
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return nil, err
	}
	if len(zr.File) > MaxFiles {
		return nil, cohort.Invalid("archive", "the archive holds more than %d entries", MaxFiles)
	}
	var files []entry
	var c counter
	for _, zf := range zr.File {
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			if err := checkDir(zf.Name); err != nil {
				return nil, err
			}
			if err := c.add(zf.Name, 0); err != nil {
				return nil, err
			}
			continue
		case !mode.IsRegular():
			return nil, cohort.Invalid("archive", "%s is a %s, not a file: archives may hold only files and directories", zf.Name, kind(mode.String()))
		}
		name, err := cleanName(zf.Name)
		if err != nil {
			return nil, refused(err)
		}
		if err := c.add(name, int64(zf.UncompressedSize64)); err != nil {
			return nil, err
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, err
		}
		data, err := read(rc, name, int64(zf.UncompressedSize64))
		rc.Close()
		if err != nil {
			return nil, err
		}
		files = append(files, entry{name: name, mode: fileMode(mode&0o111 != 0), data: data})
	}
	return files, nil
}

func readTar(r io.Reader) ([]entry, error) {
	tr := tar.NewReader(r)
	var files []entry
	var c counter
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := checkDir(h.Name); err != nil {
				return nil, err
			}
			if err := c.add(h.Name, 0); err != nil {
				return nil, err
			}
			continue
		case tar.TypeReg, tar.TypeRegA:
		case tar.TypeSymlink:
			return nil, cohort.Invalid("archive", "%s is a symlink (to %s): archives may hold only files and directories", h.Name, h.Linkname)
		case tar.TypeLink:
			return nil, cohort.Invalid("archive", "%s is a hard link (to %s): archives may hold only files and directories", h.Name, h.Linkname)
		default:
			return nil, cohort.Invalid("archive", "%s is a special file (tar type %q): archives may hold only files and directories", h.Name, h.Typeflag)
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return nil, refused(err)
		}
		if err := c.add(name, h.Size); err != nil {
			return nil, err
		}
		data, err := read(tr, name, h.Size)
		if err != nil {
			return nil, err
		}
		files = append(files, entry{name: name, mode: fileMode(h.Mode&0o111 != 0), data: data})
	}
}

// checkDir checks a directory's name: inside the archive, or its top
// ("./", as `tar -C DIR .` writes it).
func checkDir(name string) error {
	if n := strings.TrimRight(name, "/"); n == "." || n == "" {
		return nil
	}
	if _, err := cleanName(name); err != nil {
		return refused(err)
	}
	return nil
}

func refused(err error) error {
	return cohort.Invalid("archive", "the archive's entry %v", err)
}

// kind words a fs.FileMode's type letter.
func kind(mode string) string {
	switch mode[0] {
	case 'L':
		return "symlink"
	case 'D':
		return "device"
	case 'p':
		return "named pipe"
	case 'S':
		return "socket"
	}
	return "special file"
}

func fileMode(exec bool) int64 {
	if exec {
		return 0o755
	}
	return 0o644
}

// tidy leaves out macOS's litter, takes off a single top directory that
// holds everything, sorts the files, and refuses a name given twice or
// both a file and a directory.
func tidy(files []entry) ([]entry, error) {
	files = slices.DeleteFunc(files, func(e entry) bool {
		return strings.HasPrefix(e.name, "__MACOSX/") || path.Base(e.name) == ".DS_Store"
	})
	if top, _, ok := strings.Cut(firstName(files), "/"); ok {
		all := true
		for _, e := range files {
			all = all && strings.HasPrefix(e.name, top+"/")
		}
		for i := range files {
			if all {
				files[i].name = strings.TrimPrefix(files[i].name, top+"/")
			}
		}
	}
	if len(files) == 0 {
		return nil, cohort.Invalid("archive", "the archive holds no files")
	}
	slices.SortFunc(files, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	seen := map[string]bool{}
	for _, e := range files {
		if seen[e.name] {
			return nil, cohort.Invalid("archive", "%s appears twice in the archive", e.name)
		}
		seen[e.name] = true
	}
	for _, e := range files {
		// Again, without the top directory: it may have hidden a name.
		if _, err := cleanName(e.name); err != nil {
			return nil, refused(err)
		}
		for d := path.Dir(e.name); d != "."; d = path.Dir(d) {
			if seen[d] {
				return nil, cohort.Invalid("archive", "%s is both a file and a directory in the archive", d)
			}
		}
	}
	return files, nil
}

func firstName(files []entry) string {
	if len(files) == 0 {
		return ""
	}
	return files[0].name
}
