package gce

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/materials"
)

// A work disk is readable only while a session's VM has it, so a session's
// stop first keeps a copy of its work (the agent's tar) in the Pulumi
// state's bucket, which every replica reaches: downloads and collections
// with no session running read that copy, the work as the participant
// left it. Retention deletes the copies with the disks.

// Bounds of a copy: a larger work is not copied (it stays on its disk,
// which the next session reads), and a stop does not wait longer.
const (
	MaxCopyBytes = 2 << 30
	copyTimeout  = 2 * time.Minute
)

func copyKey(classID, userID string) string { return "cohort-work/" + classID + "/" + userID + ".tar" }

func (d *Driver) bucket(ctx context.Context) (*blob.Bucket, error) {
	return blob.OpenBucket(ctx, d.opts.Stacks.opts.StateURL)
}

// keepCopy copies a running session's work into the bucket, replacing
// its last copy only once the new one is whole. A failure is logged: the
// work itself is safe on its disk.
func (d *Driver) keepCopy(ctx context.Context, m *cohort.ShardMember) {
	out, up := readVM(m)
	mb, err := readMember(m)
	if err != nil || !up || !out.Work || mb.UserID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), copyTimeout)
	defer cancel()
	if err := d.copyWork(ctx, m.ClassID, mb.UserID, out.InternalIP, mb.Spec.NotebookToken); err != nil {
		d.log.Warn("keep a copy of the work at the session's stop; its disk keeps it", "session_id", m.SessionID, "error", err)
		return
	}
	d.log.Info("kept a copy of the work", "session_id", m.SessionID)
}

func (d *Driver) copyWork(ctx context.Context, classID, userID, ip, token string) error {
	resp, err := d.agentCall(ctx, ip, token, http.MethodGet, "/cohort/work.tar", nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := d.bucket(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	wctx, abort := context.WithCancel(ctx)
	defer abort()
	w, err := b.NewWriter(wctx, copyKey(classID, userID), &blob.WriterOptions{ContentType: "application/x-tar"})
	if err != nil {
		return err
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, MaxCopyBytes+1))
	switch {
	case err == nil && n > MaxCopyBytes:
		err = fmt.Errorf("the work is larger than %d GiB", MaxCopyBytes>>30)
	case err == nil:
		return w.Close()
	}
	abort() // the writer discards what it has: the last copy stays
	w.Close()
	return err
}

// zipCopy adds the last copy of a participant's work to zw; ENOTFOUND if
// there is none.
func (d *Driver) zipCopy(ctx context.Context, zw *zip.Writer, classID, userID, prefix string, patterns []string) error {
	b, err := d.bucket(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	r, err := b.NewReader(ctx, copyKey(classID, userID), nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return cohort.Errorf(cohort.ENOTFOUND, "no session of %s in class %s runs, and none has ended with a copy of the work: it is on its disk, which a session's VM reads (start one to download it)", userID, classID)
	}
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = materials.ZipFromTar(ctx, zw, r, prefix, materials.Matching(patterns))
	return err
}

// deleteCopies deletes the copies of a class's work, and says how many
// there were.
func (d *Driver) deleteCopies(ctx context.Context, classID string) (int, error) {
	b, err := d.bucket(ctx)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	var errs []error
	n := 0
	it := b.List(&blob.ListOptions{Prefix: "cohort-work/" + classID + "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		n++
		if err := b.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// copyClasses lists the classes with copies of work.
func (d *Driver) copyClasses(ctx context.Context) ([]string, error) {
	b, err := d.bucket(ctx)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	var ids []string
	it := b.List(&blob.ListOptions{Prefix: "cohort-work/", Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
		if id := strings.TrimSuffix(strings.TrimPrefix(obj.Key, "cohort-work/"), "/"); obj.IsDir && classID.MatchString(id) {
			ids = append(ids, id)
		}
	}
}
