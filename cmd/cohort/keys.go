//go:build linux && !client

package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/seal"
)

// checkSecretKey makes every server of an installation seal tokens with
// one key. The first records its key's ID; a server with another key
// refuses to start while classes hold tokens sealed with the recorded
// one (a replica given another file would seal what the others cannot
// open), unless told the recorded key is lost (forget: those tokens are
// removed, and their instructors set them again). With no such token,
// the new key is simply recorded (a key file deleted on one machine).
func checkSecretKey(ctx context.Context, store cohort.Store, id, path string, forget bool, log *slog.Logger) error {
	if id == "" {
		return nil
	}
	recorded, err := store.RecordKey(ctx, "secret-key", id, false)
	if err != nil || recorded == id {
		return err
	}
	classes, err := store.ListClasses(ctx)
	if err != nil {
		return err
	}
	var held []*cohort.Class
	for _, c := range classes {
		if c.Materials != nil && seal.KeyOf(c.Materials.Credential) == recorded {
			held = append(held, c)
		}
	}
	if len(held) > 0 && !forget {
		return fmt.Errorf("the secret key in %s (key %s) is not the installation's: %d classes' repository tokens are sealed with key %s, "+
			"which its other servers use; give every server the same --secret-key-file. If key %s is lost, so are those tokens: "+
			"start once with --forget-tokens to remove them (their instructors set them again)", path, id, len(held), recorded, recorded)
	}
	for _, c := range held {
		m := *c.Materials
		m.Private, m.Credential = false, ""
		if err := store.SetMaterials(ctx, c.ID, &m); err != nil {
			return err
		}
		log.Warn("a class's repository token is removed: the key that sealed it is lost", "class_id", c.ID, "key", recorded)
	}
	if _, err := store.RecordKey(ctx, "secret-key", id, true); err != nil {
		return err
	}
	log.Info("the secret key changed", "was", recorded, "now", id, "tokens_removed", len(held))
	return nil
}
