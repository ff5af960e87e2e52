package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	cmd.AddCommand(newTokenListCmd(), newTokenRevokeCmd(), newTokenCreateCmd())
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
