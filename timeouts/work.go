package timeouts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cohortdev/cohort"
)

// workEvery is how often a sweep also looks for classes whose kept work
// has expired: days matter there, not seconds.
const workEvery = 10 * time.Minute

// expireWork deletes the work of every class whose retention has passed
// (Policy.WorkExpires) and none of whose sessions is active, and of
// classes that no longer exist, if the
// driver keeps work and the last look is workEvery ago. It reports the
// classes whose work it deleted.
func (s *Sweeper) expireWork(ctx context.Context, now time.Time) ([]string, error) {
	keeper, ok := s.driver.(cohort.WorkKeeper)
	if !ok || !s.due(&s.workAt, workEvery, now) {
		return nil, nil
	}
	classes, err := s.store.ListClasses(ctx)
	if err != nil {
		return nil, fmt.Errorf("list classes: %w", err)
	}
	var deleted []string
	var errs []error
	// Work of a class that is gone (its deletion could not delete it).
	kept, err := keeper.WorkClasses(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list the classes with work: %w", err))
	}
	exists := map[string]bool{}
	for _, c := range classes {
		exists[c.ID] = true
	}
	for _, id := range kept {
		if exists[id] {
			continue
		}
		if removed, err := keeper.DeleteWork(ctx, id); err != nil {
			errs = append(errs, err)
		} else if removed {
			s.log.Info("participants' work deleted: its class is gone", "class_id", id)
			deleted = append(deleted, id)
		}
	}
	for _, c := range classes {
		at, ok := c.Policy.WorkExpires()
		if !ok || now.Before(at) {
			continue
		}
		active, err := s.store.ListSessions(ctx, cohort.SessionFilter{ClassID: c.ID, States: cohort.ActiveStates})
		if err != nil || len(active) > 0 {
			errs = append(errs, err)
			continue
		}
		removed, err := keeper.DeleteWork(ctx, c.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if removed {
			s.log.Info("participants' work deleted: the class's retention has passed", "class_id", c.ID, "expired", at)
			deleted = append(deleted, c.ID)
		}
	}
	return deleted, errors.Join(errs...)
}

// Pruner deletes the versions of materials no class needs
// (materials.Library).
type Pruner interface {
	Prune(ctx context.Context, classes []*cohort.Class, before time.Time) (versions, clones int, err error)
}

// pruneEvery is how often a sweep also prunes materials; a version no
// class has is kept materialsUnused after a session was last given it
// (one given an older version may still be delivering it).
const (
	pruneEvery      = time.Hour
	materialsUnused = 7 * 24 * time.Hour
)

// pruneMaterials deletes the materials versions and clones that no class
// needs and nothing used for materialsUnused, if the last prune is
// pruneEvery ago, and says how many versions it deleted. Each server
// keeps its own (the sweep runs on one). A prune that fails is logged,
// not the sweep's failure: the next prune, pruneEvery later, tries again.
func (s *Sweeper) pruneMaterials(ctx context.Context, now time.Time) int {
	if s.materials == nil || !s.due(&s.prunedAt, pruneEvery, now) {
		return 0
	}
	classes, err := s.store.ListClasses(ctx)
	if err != nil {
		s.log.Warn("prune materials: list classes", "error", err)
		return 0
	}
	versions, clones, err := s.materials.Prune(ctx, classes, now.Add(-materialsUnused))
	if err != nil {
		s.log.Warn("prune materials", "error", err)
	}
	if versions+clones > 0 {
		s.log.Info("materials pruned: no class needs them", "versions", versions, "clones", clones)
	}
	return versions
}
