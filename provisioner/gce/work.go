package gce

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/iterator"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/infra"
)

// A participant's work of a class is a persistent disk (infra/work.go):
// created by their first session in its VM's zone, attached to each later
// one, which is therefore placed in the disk's zone. The disks are found
// and deleted through the Compute Engine API: they outlive every stack.

var _ cohort.WorkKeeper = (*Driver)(nil)

// Disk is a work disk as the Compute Engine API describes it.
type Disk struct {
	Name, Zone string
	SizeGB     int
	Created    time.Time
	// Class is its cohort-class label, Work whether it is a work disk;
	// Users the instances it is attached to.
	Class string
	Work  bool
	Users []string
}

// workDisks is the filter of every work disk, or of a class's.
func workDisks(classID string) string {
	if classID == "" {
		return `labels.` + infra.WorkLabel + ` = "true"`
	}
	return `labels.cohort-class = "` + classID + `"`
}

// Disks lists the project's disks that match a filter (an AIP-160
// expression, e.g. `name = "N"`), in every zone.
func (g *Compute) Disks(ctx context.Context, project, filter string) ([]Disk, error) {
	it := g.disks.AggregatedList(ctx, &computepb.AggregatedListDisksRequest{Project: project, Filter: &filter})
	var out []Disk
	for {
		pair, err := it.Next()
		if err == iterator.Done {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		for _, d := range pair.Value.GetDisks() {
			if d.GetStatus() == "DELETING" {
				continue
			}
			created, _ := time.Parse(time.RFC3339, d.GetCreationTimestamp())
			out = append(out, Disk{Name: d.GetName(), Zone: path.Base(d.GetZone()), SizeGB: int(d.GetSizeGb()), Created: created,
				Class: d.GetLabels()["cohort-class"], Work: d.GetLabels()[infra.WorkLabel] == "true", Users: d.GetUsers()})
		}
	}
}

// DeleteDisk deletes a disk and waits until it is gone. GCE refuses one
// an instance uses (resourceInUseByAnotherResource).
func (g *Compute) DeleteDisk(ctx context.Context, project, zone, name string) error {
	if _, err := g.disks.Delete(ctx, &computepb.DeleteDiskRequest{Project: project, Zone: zone, Disk: name}); err != nil && !notFound(err) {
		return err
	}
	for {
		_, err := g.disks.Get(ctx, &computepb.GetDiskRequest{Project: project, Zone: zone, Disk: name})
		if notFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// keepsWork says whether sessions get work disks: the driver needs the
// Compute Engine API to find them.
func (d *Driver) keepsWork() bool { return d.opts.Compute != nil && d.opts.WorkGB > 0 }

// findWork returns a participant's work disk of a class; nil if they
// have none yet.
func (d *Driver) findWork(ctx context.Context, classID, userID string) (*Disk, error) {
	name := infra.WorkDiskName(classID, userID)
	disks, err := d.opts.Compute.Disks(ctx, d.opts.Project, `name = "`+name+`"`)
	if err != nil {
		return nil, cohort.Errorf(cohort.EUNAVAILABLE, "cohort could not look for the participant's work disk %s in project %s: %v", name, d.opts.Project, err)
	}
	switch len(disks) {
	case 0:
		return nil, nil
	case 1:
		return &disks[0], nil
	}
	return nil, cohort.Errorf(cohort.ECONFLICT, "the participant has %d work disks named %s (in %s and %s): delete the one that is not theirs in the Google Cloud console", len(disks), name, disks[0].Zone, disks[1].Zone)
}

// work decides a session's work disk and the zones it may run in: a
// participant's existing disk pins the session to the disk's zone; a
// participant without one gets a new disk wherever the VM comes up. Warm
// seats, which nobody owns yet, get theirs when claimed.
func (d *Driver) work(ctx context.Context, spec cohort.NotebookSpec, zones []string) (*infra.WorkDisk, []string, error) {
	if !d.keepsWork() || spec.UserID == "" || spec.UserID == cohort.PoolUserID {
		return nil, zones, nil
	}
	disk, err := d.findWork(ctx, spec.ClassID, spec.UserID)
	if err != nil || disk == nil {
		return &infra.WorkDisk{Name: infra.WorkDiskName(spec.ClassID, spec.UserID), New: true, SizeGB: d.opts.WorkGB}, zones, err
	}
	return &infra.WorkDisk{Name: disk.Name}, []string{disk.Zone}, nil
}

// ClaimFilter says which of a class's warm seats a participant may
// claim: with a work disk, only one in the disk's zone (a disk attaches
// to VMs of its zone only); without one, any.
func (d *Driver) ClaimFilter(ctx context.Context, classID, userID string) (func(seatID string) bool, error) {
	if !d.keepsWork() {
		return func(string) bool { return true }, nil
	}
	disk, err := d.findWork(ctx, classID, userID)
	if err != nil || disk == nil {
		return func(string) bool { return true }, err
	}
	return func(seatID string) bool {
		m, err := d.opts.Shards.ShardMember(ctx, seatID)
		if err != nil {
			return false
		}
		mb, err := readMember(m)
		return err == nil && mb.Spec.Zone == disk.Zone
	}, nil
}

// DeleteWork deletes the work disks of a class: call it when none of its
// sessions runs. A disk still attached (a VM being deleted) fails it; the
// next sweep tries again.
func (d *Driver) DeleteWork(ctx context.Context, classID string) (bool, error) {
	if !d.keepsWork() {
		return false, nil
	}
	disks, err := d.opts.Compute.Disks(ctx, d.opts.Project, workDisks(classID))
	if err != nil {
		return false, fmt.Errorf("list the work disks of class %s: %w", classID, err)
	}
	var errs []error
	copies, err := d.deleteCopies(ctx, classID)
	if err != nil {
		errs = append(errs, fmt.Errorf("delete the copies of the work of class %s: %w", classID, err))
	}
	for _, disk := range disks {
		if disk.Class != classID || !disk.Work { // the filter is the API's; the rule is ours
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, deleteTimeout)
		err := d.opts.Compute.DeleteDisk(dctx, d.opts.Project, disk.Zone, disk.Name)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("delete the work disk %s (%s) of class %s: %w", disk.Name, disk.Zone, classID, err))
			continue
		}
		d.log.Info("work disk deleted", "class_id", classID, "disk", disk.Name, "zone", disk.Zone)
	}
	return len(disks)+copies > 0, errors.Join(errs...)
}

// deleteTimeout bounds the wait for one disk's deletion; the next sweep
// finds a disk that outlasted it.
const deleteTimeout = 2 * time.Minute

// WorkClasses lists the classes that have work disks, or copies of work.
func (d *Driver) WorkClasses(ctx context.Context) ([]string, error) {
	if !d.keepsWork() {
		return nil, nil
	}
	disks, err := d.opts.Compute.Disks(ctx, d.opts.Project, workDisks(""))
	if err != nil {
		return nil, fmt.Errorf("list the work disks: %w", err)
	}
	classes, err := d.copyClasses(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the copies of work: %w", err)
	}
	for _, disk := range disks {
		// A class ID (cohort.NewID) is its own label value; a label that
		// is not one is never taken for a class that is gone.
		if classID.MatchString(disk.Class) && !slices.Contains(classes, disk.Class) {
			classes = append(classes, disk.Class)
		}
	}
	slices.Sort(classes)
	return classes, nil
}

var classID = regexp.MustCompile(`^cls_[a-z0-9]+$`)

var _ cohort.WorkStorage = (*Driver)(nil)

// KeptWork lists a class's work disks, for its spend: their size and
// since when they bill. A class's page asks at every look: the answer is
// kept for a minute, which the disks' cost does not notice.
func (d *Driver) KeptWork(ctx context.Context, classID string) ([]cohort.KeptWork, error) {
	if !d.keepsWork() {
		return nil, nil
	}
	if v, ok := d.kept.Load(classID); ok && d.now().Sub(v.(keptAt).at) < time.Minute {
		return v.(keptAt).work, nil
	}
	disks, err := d.opts.Compute.Disks(ctx, d.opts.Project, workDisks(classID))
	if err != nil {
		return nil, err
	}
	var out []cohort.KeptWork
	for _, disk := range disks {
		if disk.Class == classID && disk.Work {
			out = append(out, cohort.KeptWork{GB: disk.SizeGB, Created: disk.Created})
		}
	}
	d.kept.Store(classID, keptAt{out, d.now()})
	return out, nil
}

type keptAt struct {
	work []cohort.KeptWork
	at   time.Time
}

// version is the version of a class's materials a session gets: none
// without a work disk to merge them into, or with no library.
func (d *Driver) version(snap *cohort.Snapshot, work *infra.WorkDisk) string {
	if snap == nil || work == nil || d.opts.Materials == nil {
		return ""
	}
	return snap.Version
}
