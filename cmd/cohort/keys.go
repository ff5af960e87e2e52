//go:build linux && !client

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/seal"
)

// checkSecretKey makes every server of an installation seal tokens with
// one key. A server refuses to start while classes hold tokens sealed
// with another key than its own, before it records anything (so a
// replica given the wrong file, even first after an upgrade, records
// nothing); the first server records its key's ID, and a replica
// (shared) with another refuses to start. forget says the other key is
// lost: the tokens sealed with it are removed (their instructors set
// them again) and this server's key recorded. A single server whose key
// file was deleted, with no token sealed, just records its new key.
func checkSecretKey(ctx context.Context, store cohort.Store, id, path string, shared, forget bool, log *slog.Logger) error {
	if id == "" {
		return nil
	}
	classes, err := store.ListClasses(ctx)
	if err != nil {
		return err
	}
	var other []*cohort.Class // tokens sealed with another key
	keys := map[string]bool{}
	for _, c := range classes {
		if k := seal.KeyOf(credentialOf(c)); k != "" && k != id {
			other = append(other, c)
			keys[k] = true
		}
	}
	refuse := func(recorded string) error {
		return fmt.Errorf("the secret key in %s (key %s) is not the installation's (%s): give every server the same --secret-key-file. "+
			"If that key is lost or replaced on purpose, start once with --forget-tokens (the tokens sealed with it are removed; their instructors set them again)",
			path, id, recorded)
	}
	if len(other) > 0 && !forget {
		return refuse(fmt.Sprintf("%d classes' repository tokens are sealed with key %s", len(other), strings.Join(slices.Sorted(maps.Keys(keys)), ", ")))
	}
	recorded, err := store.RecordKey(ctx, "secret-key", id, false)
	if err != nil {
		return err
	}
	if recorded != id && shared && !forget {
		return refuse("key " + recorded + ", which its other servers recorded")
	}
	for _, c := range other {
		m := *c.Materials
		m.Private, m.Credential = false, ""
		if err := store.SetMaterials(ctx, c.ID, &m); err != nil {
			return err
		}
		log.Warn("a class's repository token is removed: the key that sealed it is lost", "class_id", c.ID)
	}
	if recorded != id {
		if _, err := store.RecordKey(ctx, "secret-key", id, true); err != nil {
			return err
		}
		log.Info("the secret key changed", "was", recorded, "now", id, "tokens_removed", len(other))
	}
	return nil
}

func credentialOf(c *cohort.Class) string {
	if c.Materials == nil {
		return ""
	}
	return c.Materials.Credential
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

// passphraseMissing refuses to make a new Pulumi passphrase for an
// installation whose stacks were made with one: its file was not found
// (a path mistyped, a volume not mounted), and a new one would be
// recorded as the installation's.
func passphraseMissing(ctx context.Context, store pulumiSecretsStore, provider, file string) error {
	if provider != "passphrase" {
		return nil
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	shards, err := store.ListShards(ctx)
	if err != nil || len(shards) == 0 {
		return err
	}
	return fmt.Errorf("the Pulumi passphrase file %s does not exist, and the installation's %d shard stacks are encrypted with a passphrase: "+
		"give the file they were made with (--pulumi-passphrase-file; see docs/operations.md)", file, len(shards))
}
