package infra

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"

	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/compute"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// A participant's work of a class lives on a persistent disk of its own
// (docs/materials.md): created with their first session, in its VM's
// zone, and kept when the session ends; each later session attaches it.
// The boot disk stays disposable.
//
// The disk is the one resource cohort keeps outside every stack: a
// session's shard declares it only to create it (RetainOnDelete, so that
// the session's end drops it from the state and leaves it in the
// project), and attaches it with an AttachedDisk of its own, deleted
// with the VM. Retention deletes it through the Compute Engine API.

// WorkDevice is the device name of the work disk: the VM sees it as
// /dev/disk/by-id/google-cohort-work.
const WorkDevice = "cohort-work"

// MetaWorkDevice, in a VM's metadata, tells the agent to wait for the
// work disk before it starts Jupyter; MetaWorkNew says the session made
// the disk, which the image's mount service may then format (and no
// other: a disk it cannot read is never wiped).
const (
	MetaWorkDevice = "cohort-work-device"
	MetaWorkNew    = "cohort-work-new"
)

// WorkLabel marks a work disk; the cohort-class label names its class.
const WorkLabel = "cohort-work"

// Resource name suffixes of a session's work disk and its attachment;
// its VM resource is named the session ID.
const (
	WorkSuffix   = "-work"
	AttachSuffix = "-work-attach"
)

// WorkDisk is the work disk a session attaches.
type WorkDisk struct {
	// Name is WorkDiskName(class, user).
	Name string
	// New says the disk does not exist yet: the session creates it, of
	// SizeGB, in its VM's zone. Otherwise it exists in the session's zone.
	New    bool
	SizeGB int
}

// WorkDiskName names a participant's work disk of a class: the same for
// each of their sessions, and nobody else's.
func WorkDiskName(classID, userID string) string {
	sum := sha256.Sum256([]byte(classID + "\x00" + userID))
	return "cohort-work-" + hex.EncodeToString(sum[:10])
}

// WorkDiskType is the work disk's type: pd-balanced attaches to every
// machine family cohort offers (N1, G2, A2).
const WorkDiskType = "pd-balanced"

// MinWorkGB and MaxWorkGB bound a work disk's size: pd-balanced's
// smallest, and a sane largest for one participant's files.
const MinWorkGB, MaxWorkGB = 10, 1000

func (w *WorkDisk) check() error {
	switch {
	case w == nil:
		return nil
	case !gceName.MatchString(w.Name):
		return fmt.Errorf("session spec: work disk name %q is not a GCE name", w.Name)
	case w.New && (w.SizeGB < MinWorkGB || w.SizeGB > MaxWorkGB):
		return fmt.Errorf("session spec: work disk size %d GB is outside %d-%d GB", w.SizeGB, MinWorkGB, MaxWorkGB)
	}
	return nil
}

// workDisk declares a session's work disk (if new) and its attachment
// to the session's VM.
func workDisk(ctx *pulumi.Context, s SessionSpec, vm *compute.Instance) error {
	w := s.Work
	if w == nil {
		return nil
	}
	source := pulumi.String(fmt.Sprintf("projects/%s/zones/%s/disks/%s", s.Project, s.Zone, w.Name)).ToStringOutput()
	if w.New {
		// After the VM: a zone out of GPUs fails the VM, and the next
		// zone tried gets the disk.
		disk, err := compute.NewDisk(ctx, s.SessionID+WorkSuffix, &compute.DiskArgs{
			Project:     pulumi.String(s.Project),
			Zone:        pulumi.String(s.Zone),
			Name:        pulumi.String(w.Name),
			Size:        pulumi.Int(w.SizeGB),
			Type:        pulumi.String(WorkDiskType),
			Description: pulumi.String("cohort: the work of " + s.Owner + " in class " + s.ClassID),
			Labels: pulumi.StringMap{
				"cohort-class": pulumi.String(labelValue(s.ClassID)),
				"cohort-owner": pulumi.String(labelValue(s.Owner)),
				WorkLabel:      pulumi.String("true"),
			},
		}, pulumi.RetainOnDelete(true), pulumi.DependsOn([]pulumi.Resource{vm}))
		if err != nil {
			return err
		}
		source = disk.SelfLink
	}
	// Deleted with the VM: a delete of its own would detach the disk from
	// the running VM while it is mounted and written to; the VM's delete
	// shuts the guest down first (unmounting it), and a disk not marked
	// autoDelete outlives it.
	_, err := compute.NewAttachedDisk(ctx, s.SessionID+AttachSuffix, &compute.AttachedDiskArgs{
		Project:    pulumi.String(s.Project),
		Zone:       pulumi.String(s.Zone),
		Instance:   vm.SelfLink,
		Disk:       source,
		DeviceName: pulumi.String(WorkDevice),
		Mode:       pulumi.String("READ_WRITE"),
	}, pulumi.DeletedWith(vm))
	return err
}

// gceName is GCE's rule for resource names (RFC 1035).
var gceName = regexp.MustCompile(`^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$`)
