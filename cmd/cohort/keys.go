//go:build linux && !client

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/seal"
)

// checkSecretKey makes every server of an installation seal tokens with
// one key. The first records its key's ID; a server with another key
// refuses to start (a replica given another file would seal what the
// others cannot open) unless told the recorded key is lost (forget:
// tokens sealed with it are removed, and their instructors set them
// again). A single server (shared false) whose key changed with no
// token sealed by the old one just records the new key: its key file
// was deleted.
func checkSecretKey(ctx context.Context, store cohort.Store, id, path string, shared, forget bool, log *slog.Logger) error {
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
	if (len(held) > 0 || shared) && !forget {
		sealed := ""
		if len(held) > 0 {
			sealed = fmt.Sprintf(", which %d classes' repository tokens are sealed with", len(held))
		}
		return fmt.Errorf("the secret key in %s (key %s) is not the installation's (key %s%s): give every server the same --secret-key-file. "+
			"If key %s is lost or replaced on purpose, start once with --forget-tokens (the tokens sealed with it are removed; their instructors set them again)",
			path, id, recorded, sealed, recorded)
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

// pulumiSecretsStore is what checkPulumiSecrets reads and writes.
type pulumiSecretsStore interface {
	RecordKey(ctx context.Context, name, id string, replace bool) (string, error)
	ListShards(ctx context.Context) ([]*cohort.Shard, error)
}

// checkPulumiSecrets makes every server of an installation encrypt its
// stacks' secrets alike: a replica given another passphrase (or secrets
// provider) than the one the stacks were made with could update none of
// them. The first server records an ID of what encrypts them (a hash,
// never the passphrase); another refuses to start, unless it is a single
// server (shared false) and no shard stack exists yet.
func checkPulumiSecrets(ctx context.Context, store pulumiSecretsStore, provider, passphrase, file string, shared bool, log *slog.Logger) error {
	what := provider
	if provider == "passphrase" {
		what += "\x00" + passphrase
	}
	sum := sha256.Sum256([]byte("cohort pulumi secrets id\x00" + what))
	id := hex.EncodeToString(sum[:4])
	recorded, err := store.RecordKey(ctx, "pulumi-secrets", id, false)
	if err != nil || recorded == id {
		return err
	}
	shards, err := store.ListShards(ctx)
	if err != nil {
		return err
	}
	if len(shards) > 0 || shared {
		where := "--pulumi-secrets-provider " + provider
		if provider == "passphrase" {
			where = "the passphrase in " + file
		}
		return fmt.Errorf("%s (id %s) is not what the installation's other servers recorded and its %d shard stacks are encrypted with (id %s): "+
			"give every server the same --pulumi-passphrase-file, or the same --pulumi-secrets-provider (docs/operations.md)", where, id, len(shards), recorded)
	}
	if _, err := store.RecordKey(ctx, "pulumi-secrets", id, true); err != nil {
		return err
	}
	log.Info("the Pulumi secrets provider changed, with no stack made by the old one", "was", recorded, "now", id)
	return nil
}
