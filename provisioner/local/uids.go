package local

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cohortdev/cohort"
)

// UIDRange is a range of user ids, First to Last inclusive, that the local
// driver gives to sessions, one uid each, so that participants are
// strangers to each other and to cohort. The zero value means no
// isolation: every notebook runs as cohort's own user.
type UIDRange struct {
	First, Last uint32
}

// DefaultUIDs is the range we recommend: 1000 sessions at once, inside
// the block systemd leaves unused (1879048192-2147352575, see systemd's
// UIDS-GIDS.md), so it meets no regular user (1000-60000), no systemd
// dynamic user (61184-65519), no nspawn container range (524288 and up to
// 1879048191) and no subordinate ids of useradd (100000-600100000); and
// below 2^31, which some tools still treat as signed.
func DefaultUIDs() UIDRange { return UIDRange{First: 2_000_000_000, Last: 2_000_000_999} }

// IsZero reports whether r is the zero range (no isolation).
func (r UIDRange) IsZero() bool { return r == UIDRange{} }

// Len is the number of uids in r.
func (r UIDRange) Len() int {
	if r.IsZero() || r.Last < r.First {
		return 0
	}
	return int(r.Last-r.First) + 1
}

// Contains reports whether uid is in r.
func (r UIDRange) Contains(uid uint32) bool { return !r.IsZero() && uid >= r.First && uid <= r.Last }

// String formats r as ParseUIDRange reads it: "FIRST-LAST".
func (r UIDRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// ParseUIDRange reads "FIRST-LAST" (e.g. "2000000000-2000000999"); the
// empty string is the zero range.
func ParseUIDRange(s string) (UIDRange, error) {
	if s == "" {
		return UIDRange{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.ParseUint(a, 10, 32)
	last, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return UIDRange{}, fmt.Errorf("uid range %q is not FIRST-LAST", s)
	}
	r := UIDRange{First: uint32(first), Last: uint32(last)}
	return r, r.validate()
}

func (r UIDRange) validate() error {
	switch {
	case r.First == 0:
		return fmt.Errorf("uid range %s includes root", r)
	case r.Last < r.First:
		return fmt.Errorf("uid range %s is empty", r)
	case r.Last == math.MaxUint32 || r.Contains(math.MaxUint16):
		// (uid_t)-1 and its 16-bit form mean "no change" to setresuid
		// and to old interfaces: neither can be a session's identity.
		return fmt.Errorf("uid range %s includes %d or %d, which stand for \"no uid\"", r, uint32(math.MaxUint16), uint32(math.MaxUint32))
	}
	return nil
}

// claims records which session holds which uid: one symlink per uid,
// named after the uid, pointing at the session ID. Creating a symlink is
// atomic and fails if one exists, so two Starts (even of two drivers over
// the same root) never take the same uid, and a restarted cohort reads
// every session's uid back from the directory.
type claims struct{ dir string }

// claim takes uid for id; false if another session holds it.
func (c claims) claim(uid uint32, id string) (bool, error) {
	err := os.Symlink(id, c.path(uid))
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim uid %d: %w", uid, err)
	}
	return true, nil
}

func (c claims) path(uid uint32) string {
	return filepath.Join(c.dir, strconv.FormatUint(uint64(uid), 10))
}

// all returns every claim: session ID by uid.
func (c claims) all() (map[uint32]string, error) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("read uid claims: %w", err)
	}
	out := make(map[uint32]string, len(entries))
	for _, e := range entries {
		uid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		id, err := os.Readlink(filepath.Join(c.dir, e.Name()))
		if err != nil {
			continue // released meanwhile
		}
		out[uint32(uid)] = id
	}
	return out, nil
}

// of returns the uid that id holds. It reads every claim, which is cheap
// next to starting Jupyter; the instance record, read first, has the uid
// of every session but one whose start crashed before recording it.
func (c claims) of(id string) (uint32, bool, error) {
	all, err := c.all()
	if err != nil {
		return 0, false, err
	}
	for uid, holder := range all {
		if holder == id {
			return uid, true, nil
		}
	}
	return 0, false, nil
}

// holder returns the session that holds uid, or "".
func (c claims) holder(uid uint32) string {
	id, _ := os.Readlink(c.path(uid))
	return id
}

// release gives uid back, if id holds it.
func (c claims) release(uid uint32, id string) error {
	if c.holder(uid) != id {
		return nil
	}
	if err := os.Remove(c.path(uid)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("release uid %d: %w", uid, err)
	}
	return nil
}

// retiredPrefix marks a uid that serves no session ever again: a claim
// that points at no session ID (checkID refuses the leading "-"), so that
// allocate never takes it and no Stop releases it.
const retiredPrefix = "-retired-"

// retire keeps uid from id for good, when what the session left under it
// cannot be cleared (see clearKeyrings). The range loses one uid; an
// administrator may remove the claim once the machine has rebooted.
func (c claims) retire(uid uint32, id string) error {
	if c.holder(uid) != id {
		return nil
	}
	tmp := c.path(uid) + ".retire"
	os.Remove(tmp)
	if err := os.Symlink(retiredPrefix+id, tmp); err != nil {
		return fmt.Errorf("retire uid %d: %w", uid, err)
	}
	// A rename replaces the claim at once: never a moment without one.
	if err := os.Rename(tmp, c.path(uid)); err != nil {
		return fmt.Errorf("retire uid %d: %w", uid, err)
	}
	return nil
}

// allocate claims a uid of r for id: one no session holds and no process
// runs under. A process of an unclaimed uid is someone else's (another
// cohort given an overlapping range, say): a participant given that uid
// could reach it, and Stop would kill it. The search starts at a random
// uid so that a freed uid is not handed out again at once when others
// are free.
func (c claims) allocate(r UIDRange, id string, busy map[uint32][]int) (uint32, error) {
	n := r.Len()
	start := rand.IntN(n)
	for i := range n {
		uid := r.First + uint32((start+i)%n)
		if len(busy[uid]) > 0 {
			continue
		}
		ok, err := c.claim(uid, id)
		if err != nil {
			return 0, err
		}
		if ok {
			return uid, nil
		}
	}
	return 0, cohort.Errorf(cohort.EUNAVAILABLE, "this server runs as many notebooks as it can (%d); try again when one has ended", n)
}
