package cohort

import (
	"archive/zip"
	"context"
	"time"
)

// Driver runs notebooks for sessions: local processes, GCE VMs. All methods
// are idempotent and keyed by session, so a reconciler can call them again
// after a crash without knowing what it did before.
type Driver interface {
	// Name identifies the driver in sessions and logs ("local", "gce").
	Name() string
	// Start makes the session's notebook run, or does nothing if it does.
	Start(ctx context.Context, spec NotebookSpec) error
	// Inspect observes the session's notebook as it is now.
	Inspect(ctx context.Context, spec NotebookSpec) (Instance, error)
	// Stop ends the session's notebook and everything it started. It
	// returns when nothing of it runs any more.
	Stop(ctx context.Context, sessionID string) error
	// List returns the sessions for which the driver has something running,
	// so that orphans (nothing in the store wants them) can be stopped.
	List(ctx context.Context) ([]string, error)
	// FilesNote tells a participant, in a sentence, what happens to their
	// files when a session ends.
	FilesNote() string
}

// HardStopMargin is what a driver that stops a session by itself (GCE's
// maximum run duration) adds to the session's longest lifetime, so that
// it only acts when cohort could not.
const HardStopMargin = 30 * time.Minute

// GCEStartTimeout is how long a GCE session may take to become ready: a
// VM takes minutes to create and boot.
const GCEStartTimeout = 15 * time.Minute

// Rescheduler is a driver with a backstop of its own that must hear when
// a running session's hard deadline moves later (an extension), so that
// the backstop does not act before it.
type Rescheduler interface {
	Reschedule(ctx context.Context, sessionID string, deadline time.Time) error
}

// Claimer is a driver that must hear when a warm seat becomes a
// participant's: spec names its new owner and notebook token, and the
// latest its hard deadline can now be (GCE: the VM's labels and metadata,
// and the backstop's time). The notebook itself already has the token.
type Claimer interface {
	Claimed(ctx context.Context, spec NotebookSpec) error
}

// SeatFilter is a Claimer that keeps a participant off some warm seats
// (GCE: seats outside the zone of their work disk, which attaches to VMs
// of its own zone only). fits says whether they may claim a seat.
type SeatFilter interface {
	ClaimFilter(ctx context.Context, classID, userID string) (fits func(seatID string) bool, err error)
}

// WorkKeeper is a driver that keeps each participant's work of a class
// between their sessions.
type WorkKeeper interface {
	// DeleteWork removes the work of every participant of a class, and
	// reports whether there was any; call it when none of the class's
	// sessions runs.
	DeleteWork(ctx context.Context, classID string) (bool, error)
	// WorkClasses lists the classes it keeps work of.
	WorkClasses(ctx context.Context) ([]string, error)
}

// WorkReader is a WorkKeeper that can give out the work it keeps, for
// downloads and collection.
type WorkReader interface {
	// ZipWork adds to zw the files of a participant's work of a class
	// that match one of patterns (path.Match; every file if none), each
	// named prefix + its path. It returns ENOTFOUND, having written
	// nothing, if they have no work.
	ZipWork(ctx context.Context, zw *zip.Writer, classID, userID, prefix string, patterns []string) error
}

// Puller is a driver that can bring a class's materials (spec.Materials)
// into a running session's work, for a participant who wants an update
// without a restart. It returns what changed, in words.
type Puller interface {
	PullMaterials(ctx context.Context, spec NotebookSpec) (string, error)
}

// RuntimeChecker is a driver that can say, before any session starts,
// that a class's runtime cannot run (an image family that does not exist,
// a disk smaller than the image): a cohort.Invalid error naming the field.
type RuntimeChecker interface {
	CheckRuntime(ctx context.Context, r Runtime) error
}

// NotebookSpec is what a driver needs to run one session's notebook.
type NotebookSpec struct {
	SessionID string
	ClassID   string
	// UserID is the seat's participant (PoolUserID for a warm seat):
	// with ClassID, it names the work the session shows.
	UserID    string
	UserEmail string
	// Token is the Jupyter token; BasePath the URL prefix of the proxy.
	Token    string
	BasePath string
	Runtime  Runtime
	// MaxLifetime is the longest the session may run (the class's maximum
	// lifetime plus its extensions): drivers that can enforce it without
	// cohort (GCE's max run duration) do.
	MaxLifetime time.Duration
	// Deadline is the latest the session may run until, as far as known
	// at the start: a session becomes ready within the start timeout and
	// may then run its class's maximum lifetime and the extensions it was
	// given. Drivers with a backstop of their own (a Cloud Scheduler job)
	// set it from this and hear of later deadlines through Rescheduler.
	Deadline time.Time
	// Materials, if set, is the version of the class's materials to merge
	// into the participant's work as the session starts.
	Materials *Snapshot
	// Progress, if set, receives steps of a long start for the participant
	// ("creating the VM in us-central1-b"). Drivers call it from Start.
	Progress func(message string)
}

// InstanceState is what a driver observes of a notebook.
type InstanceState string

// The observed states of a notebook.
const (
	// InstanceAbsent: nothing runs and nothing is left over.
	InstanceAbsent InstanceState = "absent"
	// InstanceStarting: it runs but does not answer yet.
	InstanceStarting InstanceState = "starting"
	// InstanceReady: the notebook answers /api/status.
	InstanceReady InstanceState = "ready"
	// InstanceExited: it ran and ended on its own; Reason says why.
	InstanceExited InstanceState = "exited"
	// InstanceInterrupted: a start was cut short (cohort died between
	// launching the notebook and recording it): what it launched may run,
	// but nothing serves the session. A Start ends it and starts anew.
	InstanceInterrupted InstanceState = "interrupted"
)

// Instance is a driver's observation of a session's notebook.
type Instance struct {
	State InstanceState
	// Address is the notebook's scheme://host:port, once known.
	Address string
	// Reason explains an exit, in words for the participant.
	Reason string
	// Progress is the latest step of a start, e.g. "booting".
	Progress string
	// KernelActivityKnown says whether the notebook's kernels could be
	// asked (when ready); LastKernelActivity and KernelBusy are their answer.
	KernelActivityKnown bool
	LastKernelActivity  time.Time
	KernelBusy          bool
}

// WorkStorage is a WorkKeeper whose kept work bills while it exists (GCE's
// work disks): a class's spend counts it.
type WorkStorage interface {
	KeptWork(ctx context.Context, classID string) ([]KeptWork, error)
}

// KeptWork is one participant's kept work of a class: its size, and since
// when it bills.
type KeptWork struct {
	GB      int
	Created time.Time
}
