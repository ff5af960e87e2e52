//go:build linux && !client

package main

import (
	"cmp"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortdev/cohort"
)

func newTokenCreateCmd() *cobra.Command {
	var dataDir, database, email, role, name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Mint an API token directly in the server's store (run on the server machine)",
		Long: "Creates the user if needed, gives them the role, and prints a new API token once.\n" +
			"Only its hash is stored: keep the printed token, it cannot be shown again.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := cohort.Role(role)
			if !r.Valid() {
				return cohort.Invalid("role", "--role must be admin, instructor or participant, not %q", role)
			}
			ctx := cmd.Context()
			db, err := openDatabase(ctx, cmp.Or(database, os.Getenv("COHORT_DATABASE")), dataDir)
			if err != nil {
				return err
			}
			defer db.Close()
			store := db.store
			u, err := store.EnsureUser(ctx, email, r)
			if err != nil {
				return err
			}
			if u.Role != r {
				if err := store.SetUserRole(ctx, u.ID, r); err != nil {
					return err
				}
				err = store.AppendAudit(ctx, &cohort.AuditEvent{Time: time.Now().UTC(), Action: cohort.AuditRoleChanged,
					Subject: u.Email, Detail: string(u.Role) + " -> " + string(r) + " (cohort token create on the server machine)"})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s was %s, is now %s\n", u.Email, u.Role, r)
			}
			secret := cohort.NewSecret(cohort.TokenPrefix)
			if err := store.CreateToken(ctx, &cohort.Token{ID: cohort.NewID("tok"), UserID: u.ID, Name: name}, cohort.HashSecret(secret)); err != nil {
				return err
			}
			err = store.AppendAudit(ctx, &cohort.AuditEvent{Time: time.Now().UTC(), ActorID: u.ID, ActorEmail: u.Email,
				Action: cohort.AuditTokenCreated, Subject: u.Email, Detail: name + " (cohort token create on the server machine)"})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), secret)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&dataDir, "data-dir", envOr("COHORT_DATA_DIR", defaultDataDir()), "the server's data directory (env COHORT_DATA_DIR)")
	f.StringVar(&database, "database", "", "the server's postgres:// URL, if it has one (env COHORT_DATABASE, best)")
	f.StringVar(&email, "email", "", "the user's email (required)")
	f.StringVar(&role, "role", "participant", "admin, instructor or participant")
	f.StringVar(&name, "name", "cli", "a name to recognise the token by")
	create.MarkFlagRequired("email")
	return create
}
