package local

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/materials"
)

// A participant's work belongs to them and their class, not to one
// session: ROOT/work/CLASS/USER, reused by each of their sessions, is
// what their notebook shows as its folder (ROOT/ID/work). When isolated,
// the session's mount namespace binds it there, as a mount of its own
// (no hard link crosses it); otherwise ROOT/ID/work is a symlink to it.
//
//	ROOT/work/            root 0700
//	  CLASS/              root 0700
//	    USER/             the session's uid 0700 while a session runs,
//	                      root 0700 between sessions (secureHome)
//
// A warm seat has no participant: its folder is ROOT/ID/work itself
// until a claim puts the participant's there (Claimed).
const workDirName = "work"

var _ cohort.Claimer = (*Driver)(nil)

func (d *Driver) worksDir() string { return filepath.Join(d.root, workDirName) }

// workDir is a participant's work of a class, "" for a seat of nobody's.
func (d *Driver) workDir(classID, userID string) (string, error) {
	if classID == "" || userID == "" || userID == cohort.PoolUserID {
		return "", nil
	}
	if err := checkID(classID); err != nil {
		return "", err
	}
	if err := checkID(userID); err != nil {
		return "", err
	}
	return filepath.Join(d.worksDir(), classID, userID), nil
}

// makeWorkDir creates a participant's work directory if need be, and
// merges the class's materials into it. Call while no process of the
// participant's can write in it (between their sessions).
func (d *Driver) makeWorkDir(spec cohort.NotebookSpec) (string, error) {
	work, err := d.workDir(spec.ClassID, spec.UserID)
	if work == "" || err != nil {
		return "", err
	}
	// Root's alone: sessions reach their participant's work through the
	// bind of it (or, not isolated, as cohort's own user), never by this
	// path, so nobody learns who has work here.
	for _, dir := range []string{d.worksDir(), filepath.Dir(work)} {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("make the work directory: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return "", err
		}
	}
	if err := os.Mkdir(work, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("make the work directory: %w", err)
	}
	if spec.Materials == nil {
		return work, nil
	}
	r, err := os.OpenRoot(work)
	if err != nil {
		return "", err
	}
	defer r.Close()
	rep, err := materials.Merge(r, spec.Materials)
	if err != nil {
		return "", fmt.Errorf("deliver the class's materials: %w", err)
	}
	if s := rep.Summary(); s != "" {
		d.log.Info("materials merged", "session_id", spec.SessionID, "version", rep.Version, "summary", s)
		if spec.Progress != nil {
			spec.Progress(s)
		}
	}
	return work, nil
}

// workOf is the participant's work a session shows, if any.
func workOf(in *instance) string {
	if in == nil {
		return ""
	}
	return in.Work
}

// linkWork points a session's folder at a participant's work, when not
// isolated (see above).
func linkWork(folder, work string) error {
	if fi, err := os.Lstat(folder); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if target, _ := os.Readlink(folder); target == work {
			return nil
		}
	}
	if err := os.RemoveAll(folder); err != nil {
		return err
	}
	return os.Symlink(work, folder)
}

// Claimed gives a claimed warm seat its participant's work: their
// directory, with the class's materials merged in, becomes the running
// notebook's folder. A seat not started yet gets it when it starts (the
// store names its participant by then).
func (d *Driver) Claimed(ctx context.Context, spec cohort.NotebookSpec) error {
	id := spec.SessionID
	if err := checkID(id); err != nil {
		return err
	}
	defer d.lock(id)()
	in, err := d.readInstance(id)
	if err != nil || in == nil || in.PID == 0 || in.Work != "" || !d.serverAlive(id, in) {
		return err
	}
	work, err := d.makeWorkDir(spec)
	if work == "" || err != nil {
		return err
	}
	// Recorded before the work is given to the seat's uid: whatever fails
	// after, Stop finds it and makes it root's again, before the uid goes
	// to anyone else.
	in.Work = work
	if err := d.writeInstance(id, in); err != nil {
		return err
	}
	folder := d.WorkDir(id)
	if !d.isolated() {
		if err := linkWork(folder, work); err != nil {
			return fmt.Errorf("give the seat its participant's work: %w", err)
		}
	} else {
		if err := adoptTree(ctx, work, in.UID, d.uids); err != nil {
			return fmt.Errorf("give the seat its participant's work: %w", err)
		}
		// Into the running server's mount namespace: the seat was never
		// anyone's, so nothing of a participant's has touched its paths.
		cmd := exec.CommandContext(ctx, nsenter, "--target", strconv.Itoa(in.PID), "--mount", "--",
			mount, "-n", "--no-canonicalize", "--bind", work, folder)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("give the seat its participant's work: %w: %s", err, out)
		}
	}
	return nil
}

var _ cohort.Puller = (*Driver)(nil)

// PullMaterials merges the class's materials into a running session's
// work while the participant works in it: what arrives is theirs (the
// session's uid) as it is written. The merge goes through an os.Root of
// the folder and opens nothing of the participant's without O_NOFOLLOW
// and O_NONBLOCK; it writes nothing outside their folder.
func (d *Driver) PullMaterials(ctx context.Context, spec cohort.NotebookSpec) (string, error) {
	id := spec.SessionID
	if err := checkID(id); err != nil {
		return "", err
	}
	if spec.Materials == nil {
		return "", cohort.Invalid("materials", "the class has no materials")
	}
	defer d.lock(id)()
	in, err := d.readInstance(id)
	if err != nil {
		return "", err
	}
	if in == nil || in.Work == "" || !d.serverAlive(id, in) {
		return "", cohort.Errorf(cohort.ECONFLICT, "session %s has no running notebook with a participant's work", id)
	}
	r, err := os.OpenRoot(in.Work)
	if err != nil {
		return "", err
	}
	defer r.Close()
	owner := -1
	if d.isolated() {
		owner = int(in.UID)
	}
	rep, err := materials.MergeAs(r, spec.Materials, owner)
	if err != nil {
		return "", fmt.Errorf("deliver the class's materials: %w", err)
	}
	d.log.Info("materials pulled", "session_id", id, "version", rep.Version, "summary", rep.Summary())
	return rep.Summary(), nil
}

// ZipWork adds a participant's work of a class to zw
// (cohort.WorkReader).
func (d *Driver) ZipWork(ctx context.Context, zw *zip.Writer, classID, userID, prefix string, patterns []string) error {
	work, err := d.workDir(classID, userID)
	if err != nil {
		return err
	}
	if work == "" {
		return cohort.Errorf(cohort.ENOTFOUND, "no work for the warm seats' pool")
	}
	r, err := os.OpenRoot(work)
	if errors.Is(err, fs.ErrNotExist) {
		return cohort.Errorf(cohort.ENOTFOUND, "no work of %s in class %s yet", userID, classID)
	}
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = materials.Zip(ctx, zw, r, prefix, materials.Matching(patterns))
	return err
}

// WorkClasses lists the classes whose participants' work is kept here.
func (d *Driver) WorkClasses(context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.worksDir())
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && checkID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// DeleteWork removes the work of every participant of a class, and
// reports whether there was any. Call when none of its sessions runs.
func (d *Driver) DeleteWork(ctx context.Context, classID string) (bool, error) {
	if err := checkID(classID); err != nil {
		return false, err
	}
	dir := filepath.Join(d.worksDir(), classID)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err := removeTree(ctx, dir); err != nil {
		return false, fmt.Errorf("delete the work of class %s: %w", classID, err)
	}
	return true, nil
}
