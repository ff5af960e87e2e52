package materials

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/cohortdev/cohort"
)

// ManifestPath is where, in a work directory, a merge records what it
// delivered: cohort's, though in the participant's directory, so that it
// moves with their work (a GCE disk).
const ManifestPath = ".cohort/materials.json"

// manifest is what was delivered to a work directory: each file's
// SHA-256 as the class last gave it.
type manifest struct {
	Version string            `json:"version"`
	Files   map[string]string `json:"files"`
}

// Report says what a merge did, in names relative to the work directory.
type Report struct {
	Version string   `json:"version"`
	Added   []string `json:"added,omitempty"`
	Updated []string `json:"updated,omitempty"`
	// Kept maps a file the participant changed to where the class's new
	// version of it was written instead.
	Kept map[string]string `json:"kept,omitempty"`
	// Skipped lists files that could not be delivered, with why.
	Skipped []string `json:"skipped,omitempty"`
}

// Summary words the report for the participant, "" if nothing changed.
func (r *Report) Summary() string {
	var parts []string
	if n := len(r.Added); n > 0 {
		parts = append(parts, plural(n, "new file"))
	}
	if n := len(r.Updated); n > 0 {
		parts = append(parts, plural(n, "file")+" updated")
	}
	for mine, theirs := range r.Kept {
		parts = append(parts, fmt.Sprintf("your %s kept, the class's new version is %s", mine, theirs))
	}
	if n := len(r.Skipped); n > 0 {
		parts = append(parts, plural(n, "file")+" not delivered ("+strings.Join(r.Skipped, "; ")+")")
	}
	if len(parts) == 0 {
		return ""
	}
	return "class materials: " + strings.Join(parts, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Merge merges a version of materials into the work directory open as
// root. The participant's changes win: a file they changed since it was
// delivered (or made themselves under a name the materials now use) is
// kept, and the class's version is written beside it; a file they
// deleted stays deleted until the class changes it. Every file arrives
// whole (written aside, then renamed into place), and the record of
// what was delivered is written last: a merge cut short is finished by
// the next one. Every path goes through root, which no symlink in the
// directory can lead out of.
func Merge(root *os.Root, snap *cohort.Snapshot) (*Report, error) {
	return MergeAs(root, snap, -1)
}

// MergeAs merges as Merge does, into the folder of a running session
// whose files belong to uid: what it writes (files and the folders it
// makes) is given to uid as it arrives, so that the participant can
// change it. Give -1 to leave it to the caller.
func MergeAs(root *os.Root, snap *cohort.Snapshot, uid int) (*Report, error) {
	g := &merger{root: root, owner: uid}
	f, err := os.Open(snap.Path)
	if err != nil {
		return nil, fmt.Errorf("open materials %s: %w", snap.Version, err)
	}
	defer f.Close()
	if err := g.mkdirs(path.Dir(ManifestPath)); err != nil {
		return nil, fmt.Errorf("materials: %w", err)
	}
	m := readManifest(root)
	m.Version = snap.Version
	rep := &Report{Version: snap.Version}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read materials %s: %w", snap.Version, err)
		}
		data, err := read(tr, h.Name, h.Size)
		if err != nil {
			return nil, err
		}
		if err := g.mergeFile(m, rep, h.Name, fs.FileMode(h.Mode), data); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := g.writeFile(ManifestPath, b, 0o644); err != nil {
		return nil, fmt.Errorf("record the materials delivered: %w", err)
	}
	return rep, nil
}

// merger writes into a participant's folder, as owner if not -1.
type merger struct {
	root  *os.Root
	owner int
}

// mergeFile delivers one file of the materials.
func (g *merger) mergeFile(m *manifest, rep *Report, name string, mode fs.FileMode, data []byte) error {
	root := g.root
	sum := sha256.Sum256(data)
	now := hex.EncodeToString(sum[:])
	was, known := m.Files[name]
	cur, err := hashOf(root, name)
	switch {
	case errors.Is(err, fs.ErrNotExist) && known && was == now:
		return nil // deleted by the participant, unchanged by the class
	case errors.Is(err, fs.ErrNotExist):
		if err := g.deliver(name, data, mode); err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %v", name, err))
			return nil
		}
		rep.Added = append(rep.Added, name)
	case err == nil && cur == now:
	case err == nil && known && cur == was:
		if err := g.deliver(name, data, mode); err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %v", name, err))
			return nil
		}
		rep.Updated = append(rep.Updated, name)
	default: // changed by the participant, theirs, or not a file
		aside, err := beside(root, name, m.Version, now)
		if err == nil && aside != "" {
			err = g.deliver(aside, data, mode)
		}
		if err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %v", name, err))
			return nil
		}
		if aside != "" {
			if rep.Kept == nil {
				rep.Kept = map[string]string{}
			}
			rep.Kept[name] = aside
		}
	}
	if m.Files == nil {
		m.Files = map[string]string{}
	}
	m.Files[name] = now
	return nil
}

// beside returns the name for the class's version of a file the
// participant changed, "" if it is there already: train.ipynb becomes
// train.class-1a2b3c4.ipynb, then train.class-1a2b3c4-2.ipynb if that
// name is taken by something else.
func beside(root *os.Root, name, version, sum string) (string, error) {
	_, short, _ := strings.Cut(version, "-")
	short = short[:min(7, len(short))]
	dir, base := path.Split(name)
	ext := path.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	if stem == "" {
		stem, ext = base, ""
	}
	for i := 1; i <= 100; i++ {
		suffix := ""
		if i > 1 {
			suffix = fmt.Sprintf("-%d", i)
		}
		aside := dir + stem + ".class-" + short + suffix + ext
		cur, err := hashOf(root, aside)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return aside, nil
		case err == nil && cur == sum:
			return "", nil
		}
	}
	return "", fmt.Errorf("no free name beside it")
}

// hashOf returns the SHA-256 of a regular file, fs.ErrNotExist if
// nothing has that name, or an error if it is not a regular file.
func hashOf(root *os.Root, name string) (string, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscallENOTDIR) {
			return "", fs.ErrNotExist
		}
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a file", name)
	}
	f, err := openRegular(root, name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, MaxFileBytes+1)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openRegular opens a file of a participant's folder for reading, only
// if it is a regular file: without following a symlink, and without
// blocking on a pipe (a participant may put one where a file was, to
// hang whatever opens it as root).
func openRegular(root *os.Root, name string) (*os.File, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|oNOFOLLOW|oNONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a file", name)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// deliver writes a file whole: aside first, then renamed into place.
func (g *merger) deliver(name string, data []byte, mode fs.FileMode) error {
	if dir := path.Dir(name); dir != "." {
		if err := g.mkdirs(dir); err != nil {
			return fmt.Errorf("make its directory: %w", unwrapPath(err))
		}
	}
	return g.writeFile(name, data, mode&0o755|0o644)
}

// mkdirs makes a folder and its parents, and gives those that are root's
// to the owner. A participant who swaps one for a symlink meanwhile gets
// the symlink (Lchown), inside their own folder.
func (g *merger) mkdirs(dir string) error {
	if err := g.root.MkdirAll(dir, 0o755); err != nil || g.owner < 0 {
		return err
	}
	for d := dir; d != "."; d = path.Dir(d) {
		fi, err := g.root.Lstat(d)
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == 0 && fi.IsDir() {
			if err := g.root.Lchown(d, g.owner, g.owner); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *merger) writeFile(name string, data []byte, mode fs.FileMode) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(ManifestPath), ".new-"+hex.EncodeToString(rnd[:]))
	f, err := g.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNOFOLLOW, mode)
	if err != nil {
		return unwrapPath(err)
	}
	if g.owner >= 0 {
		err = f.Chown(g.owner, g.owner)
	}
	if err == nil {
		_, err = io.Copy(f, bytes.NewReader(data))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = g.root.Rename(tmp, name)
	}
	if err != nil {
		g.root.Remove(tmp)
		return unwrapPath(err)
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

func readManifest(root *os.Root) *manifest {
	m := &manifest{}
	f, err := openRegular(root, ManifestPath)
	if err != nil {
		return m
	}
	defer f.Close()
	// The participant may have written anything there: at worst, their
	// own files are taken for changed (kept) or unchanged (updated).
	if json.NewDecoder(io.LimitReader(f, 16<<20)).Decode(m) != nil {
		return &manifest{}
	}
	return m
}

// Delivered is the version of a class's materials last merged into a
// work directory; "" if none was.
func Delivered(root *os.Root) string { return readManifest(root).Version }
