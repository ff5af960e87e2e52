package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortdev/cohort"
)

// Roster, invite and audit commands; they hang under `class` and the root.

func newClassMembersCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "members CLASS",
		Short: "Show a class's roster",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			members, err := c.ListMembers(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), members)
			}
			var rows [][]any
			for _, m := range members {
				rows = append(rows, []any{m.Email, m.Role, m.AddedBy, m.AddedAt.Local().Format("2006-01-02 15:04")})
			}
			return table(cmd.OutOrStdout(), "EMAIL\tROLE\tADDED BY\tADDED", rows)
		},
	}
}

func newClassEnrollCmd(cf *clientFlags) *cobra.Command {
	var emails []string
	var csvFile string
	var instructor bool
	cmd := &cobra.Command{
		Use:   "enroll CLASS (--email E ... | --csv FILE)",
		Short: "Put people on a class's roster (--instructor for co-instructors)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(emails) == 0) == (csvFile == "") {
				return errors.New("give either --email (repeatable) or --csv FILE")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			var added int
			if csvFile != "" {
				f, err := os.Open(csvFile)
				if err != nil {
					return err
				}
				defer f.Close()
				added, err = c.AddMembersCSV(cmd.Context(), args[0], f)
				if err != nil {
					return err
				}
			} else {
				role := cohort.MemberParticipant
				if instructor {
					role = cohort.MemberInstructor
				}
				if added, err = c.AddMembers(cmd.Context(), args[0], emails, role); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d added to the roster\n", added)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&emails, "email", nil, "an email to enroll (repeat for more)")
	cmd.Flags().StringVar(&csvFile, "csv", "", "a CSV file with an email column")
	cmd.Flags().BoolVar(&instructor, "instructor", false, "enroll as co-instructors")
	return cmd
}

func newClassInviteCmd(cf *clientFlags) *cobra.Command {
	var expires time.Duration
	var domain string
	cmd := &cobra.Command{
		Use:   "invite CLASS",
		Short: "Make an invite link for a class (the link is shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			inv, err := c.CreateInvite(cmd.Context(), args[0], expires, domain)
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), inv)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\nexpires %s\n", inv.URL, inv.Invite.ExpiresAt.Local().Format(time.RFC1123))
			return nil
		},
	}
	cmd.Flags().DurationVar(&expires, "expires", 7*24*time.Hour, "how long the link works")
	cmd.Flags().StringVar(&domain, "domain", "", "admit only accounts of this Google Workspace domain")
	return cmd
}

func newJoinCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "join CODE",
		Short: "Join a class with the code of an invite link",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			class, err := c.Join(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "joined %s (%s)\n", class.Name, class.ID)
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

func newAuditCmd() *cobra.Command {
	var cf clientFlags
	var classID string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit [--class CLASS]",
		Short: "Show the audit log (admins), or a class's (its instructors)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			events, err := c.ListAudit(cmd.Context(), classID, limit)
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), events)
			}
			var rows [][]any
			for _, e := range events {
				rows = append(rows, []any{e.Time.Local().Format("2006-01-02 15:04:05"), e.ActorEmail, e.Action, e.Subject, e.Detail})
			}
			return table(cmd.OutOrStdout(), "TIME\tWHO\tACTION\tSUBJECT\tDETAIL", rows)
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&classID, "class", "", "the class (instructors); all events if empty (admins)")
	cmd.Flags().IntVar(&limit, "limit", 50, "how many events")
	return cmd
}
