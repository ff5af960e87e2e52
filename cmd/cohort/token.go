package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/store/sqlite"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	var dataDir, email, role, name string
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
			store, err := sqlite.Open(ctx, filepath.Join(dataDir, "cohort.db"))
			if err != nil {
				return err
			}
			defer store.Close()
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
	f.StringVar(&email, "email", "", "the user's email (required)")
	f.StringVar(&role, "role", "participant", "admin, instructor or participant")
	f.StringVar(&name, "name", "cli", "a name to recognise the token by")
	create.MarkFlagRequired("email")
	cmd.AddCommand(create, newTokenListCmd(), newTokenRevokeCmd())
	return cmd
}

func newTokenListCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your API tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			tokens, err := c.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), tokens)
			}
			var rows [][]any
			for _, t := range tokens {
				state := "live"
				if t.RevokedAt != nil {
					state = "revoked " + t.RevokedAt.Local().Format("2006-01-02 15:04")
				}
				rows = append(rows, []any{t.ID, t.Name, t.CreatedAt.Local().Format("2006-01-02 15:04"), state})
			}
			return table(cmd.OutOrStdout(), "ID\tNAME\tCREATED\tSTATE", rows)
		},
	}
	cf.register(cmd)
	return cmd
}

func newTokenRevokeCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "revoke TOKEN_ID",
		Short: "Revoke an API token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}
