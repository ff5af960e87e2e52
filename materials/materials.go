// Package materials keeps the versions of classes' materials and merges
// them into participants' work.
//
// A version (a cohort.Snapshot) is a tar file that this package writes
// itself, from a git commit or an uploaded archive: regular files only,
// under clean relative names, within the limits below. Everything that
// reads a version (the merge, a VM's agent) can then trust its names.
//
// The merge follows nbgitpuller's rule: the participant's changes win. A
// file the participant has not changed since it was delivered is updated;
// one they changed is kept, and the new version is written beside it
// (train.ipynb stays, train.class-1a2b3c4.ipynb arrives). What was
// delivered is recorded in the work directory (.cohort/materials.json).
package materials

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/seal"
)

// Limits of one version of a class's materials: workshop notebooks and
// configuration, not datasets (those belong in a bucket or a download
// from the notebook).
//
// A version is read whole into memory while it is written (one at a time
// per server: Library.writing), and a merge holds one file at a time.
const (
	MaxFiles     = 10_000
	MaxBytes     = 256 << 20 // all files, uncompressed
	MaxFileBytes = 64 << 20
	// MaxUpload bounds an uploaded archive, compressed.
	MaxUpload = 256 << 20
)

// Library keeps versions of materials in a directory of the server:
//
//	DIR/versions/VERSION.tar   one version, written whole (a rename)
//	DIR/repos/HASH.git         a bare clone per repository, shallow
type Library struct {
	dir string
	// local admits file:// repositories and absolute paths.
	local bool
	// key seals private repositories' tokens (nil: none are taken).
	key    *seal.Key
	noKey  string // why tokens are refused, if not for want of a key
	caFile string
	log    *slog.Logger
	// Timeout bounds one git operation; 2 minutes if zero.
	Timeout time.Duration

	now func() time.Time

	mu    sync.Mutex
	repos map[string]*sync.Mutex // by clone: one fetch per repository at a time
	// writing lets one version be read and written at a time: each is
	// held in memory meanwhile (up to MaxBytes).
	writing sync.Mutex
	// using orders a version's use or arrival (read-locked) after
	// Prune's look at it and its removal (locked).
	using sync.RWMutex
}

// Options configure a Library.
type Options struct {
	Dir string
	// AllowLocal admits file:// repositories and absolute paths: a
	// single machine's server and tests. A shared server must not: any
	// instructor could read the server's own git repositories.
	AllowLocal bool
	// Key seals private repositories' tokens; without one, tokens are
	// refused (a server whose replicas share no key).
	Key *seal.Key
	// CAFile is a bundle of certificates git trusts instead of the
	// system's (a git server with a private CA); empty: the system's.
	CAFile string
	Logger *slog.Logger
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
}

// New returns a Library keeping its versions in opts.Dir.
func New(opts Options) (*Library, error) {
	for _, sub := range []string{"versions", "repos"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("materials: %w", err)
		}
	}
	l := &Library{dir: opts.Dir, local: opts.AllowLocal, key: opts.Key, caFile: opts.CAFile, log: opts.Logger, now: opts.Now, repos: map[string]*sync.Mutex{}}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	// What a server that died mid-write left: nothing else writes here.
	for _, pattern := range []string{filepath.Join(l.dir, ".upload-*"), filepath.Join(l.dir, "versions", ".new-*")} {
		left, _ := filepath.Glob(pattern)
		for _, f := range left {
			os.Remove(f)
		}
	}
	return l, nil
}

func (l *Library) path(version string) string {
	return filepath.Join(l.dir, "versions", version+".tar")
}

// Snapshot returns the version of m that a session starting now gets: a
// repository's ref is looked up anew (a branch may have moved), an
// archive is what was uploaded. When the repository cannot be reached,
// the version last fetched is returned with the error; nil when this
// server has no copy of it either.
func (l *Library) Snapshot(ctx context.Context, m *cohort.Materials) (*cohort.Snapshot, *cohort.Materials, error) {
	if m == nil {
		return nil, nil, nil
	}
	var fetchErr error
	if m.Repo != "" {
		// A start waits at most lookupTimeout for the repository: then it
		// takes the version it has.
		ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		now, err := l.Fetch(ctx, m.Repo, m.Ref, m.Credential)
		cancel()
		if err == nil {
			return l.stored(now.Version), now, nil
		}
		fetchErr = err
	}
	if _, err := os.Stat(l.path(m.Version)); err != nil {
		return nil, m, errors.Join(fetchErr, fmt.Errorf("materials version %s is not on this server", m.Version))
	}
	return l.stored(m.Version), m, fetchErr
}

// lookupTimeout bounds what a session's start waits for a class's
// repository (a fetch as the instructor sets it gets Timeout).
const lookupTimeout = 20 * time.Second

// Stored returns the version of m this server has, without asking the
// repository: for a warm seat's claim, which a participant waits for
// under the class's lock (sessions keep the class's version current).
func (l *Library) Stored(m *cohort.Materials) (*cohort.Snapshot, error) {
	if m == nil {
		return nil, nil
	}
	if _, err := os.Stat(l.path(m.Version)); err != nil {
		return nil, fmt.Errorf("materials version %s is not on this server", m.Version)
	}
	return l.stored(m.Version), nil
}

// stored is a version handed to a session, which marks it used (Prune).
func (l *Library) stored(version string) *cohort.Snapshot {
	l.touch(l.path(version))
	return &cohort.Snapshot{Version: version, Path: l.path(version)}
}

// Open opens a stored version for reading.
func (l *Library) Open(version string) (*os.File, error) {
	if strings.ContainsAny(version, "/\\") || version == "" {
		return nil, cohort.Errorf(cohort.ENOTFOUND, "no materials version %q", version)
	}
	f, err := os.Open(l.path(version))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cohort.Errorf(cohort.ENOTFOUND, "no materials version %q on this server", version)
	}
	return f, err
}

// entry is a file of a version being written.
type entry struct {
	name string
	mode int64 // 0o755 or 0o644
	data []byte
}

// counter enforces the limits while a version is read from its source.
type counter struct {
	files int
	bytes int64
}

func (c *counter) add(name string, size int64) error {
	c.files++ // directories too: an archive of nothing but headers is work
	c.bytes += size
	switch {
	case c.files > MaxFiles:
		return cohort.Invalid("materials", "the materials hold more than %d files and folders", MaxFiles)
	case size > MaxFileBytes:
		return cohort.Invalid("materials", "%s is larger than %d MiB", name, MaxFileBytes>>20)
	case c.bytes > MaxBytes:
		return cohort.Invalid("materials", "the materials are larger than %d MiB uncompressed", MaxBytes>>20)
	}
	return nil
}

// write stores a version made of files, named after prefix and the
// SHA-256 of its content unless version is given, and returns its
// description. The tar is written to a temporary file and renamed into
// place: a version is whole or absent.
func (l *Library) write(version string, files []entry) (*cohort.Materials, error) {
	tmp, err := os.CreateTemp(filepath.Join(l.dir, "versions"), ".new-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	var total int64
	for _, e := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: e.mode, Size: int64(len(e.data)), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			tmp.Close()
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			tmp.Close()
			return nil, err
		}
		total += int64(len(e.data))
	}
	if err := tw.Close(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	l.using.RLock()
	err = os.Rename(tmp.Name(), l.path(version))
	l.using.RUnlock()
	if err != nil {
		return nil, err
	}
	l.touch(l.path(version)) // made now, by the library's clock

	return &cohort.Materials{Version: version, Files: len(files), Bytes: total}, nil
}

// contentVersion names a version by the SHA-256 of its files.
func contentVersion(prefix string, files []entry) string {
	h := sha256.New()
	for _, e := range files {
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", e.name, e.mode, len(e.data))
		h.Write(e.data)
	}
	return prefix + hex.EncodeToString(h.Sum(nil))[:32]
}

// cleanName checks a name inside the materials and returns it clean: no
// absolute path, no "..", nothing in .git or cohort's own .cohort.
func cleanName(name string) (string, error) {
	n := strings.TrimPrefix(strings.ReplaceAll(name, "\\", "/"), "./")
	if n == "" || strings.HasPrefix(n, "/") || strings.Contains(n, "\x00") || len(n) > 1000 {
		return "", fmt.Errorf("%q is not a relative file name", name)
	}
	clean := filepath.ToSlash(filepath.Clean(n))
	if clean == ".." || strings.HasPrefix(clean, "../") || !fs.ValidPath(clean) {
		return "", fmt.Errorf("%q points outside the materials", name)
	}
	first, _, _ := strings.Cut(clean, "/")
	if first == ".cohort" {
		return "", fmt.Errorf("%q is in .cohort, which cohort keeps for itself", name)
	}
	// A .git folder delivered into a participant's folder would configure
	// the git they run there (core.fsmonitor runs a program).
	if slices.Contains(strings.Split(clean, "/"), ".git") {
		return "", fmt.Errorf("%q is in a .git folder, which materials may not hold", name)
	}
	return clean, nil
}

// read reads up to limit bytes of r, failing beyond it.
func read(r io.Reader, name string, size int64) ([]byte, error) {
	if size > MaxFileBytes {
		return nil, cohort.Invalid("materials", "%s is larger than %d MiB", name, MaxFileBytes>>20)
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > MaxFileBytes {
		return nil, cohort.Invalid("materials", "%s is larger than %d MiB", name, MaxFileBytes>>20)
	}
	return b, nil
}
