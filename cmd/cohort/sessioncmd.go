package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/client"
)

func newSessionCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "session", Short: "Start, follow and stop notebook sessions"}
	cf.register(cmd)
	cmd.AddCommand(newSessionStartCmd(&cf), newSessionDownloadCmd(&cf), newSessionPullCmd(&cf), &cobra.Command{
		Use:   "list",
		Short: "List your sessions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			list, err := c.ListSessions(cmd.Context(), "")
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), list)
			}
			var rows [][]any
			for _, s := range list {
				rows = append(rows, []any{s.ID, s.ClassID, s.State, s.CreatedAt.Local().Format("2006-01-02 15:04"), stopsIn(&s), s.Reason})
			}
			return table(cmd.OutOrStdout(), "ID\tCLASS\tSTATE\tCREATED\tSTOPS\tREASON", rows)
		},
	}, &cobra.Command{
		Use:   "stop SESSION",
		Short: "Stop a session (its files stay on the server)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			s, err := c.StopSession(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "session %s is %s\n", s.ID, s.State)
			return nil
		},
	}, newKeepAliveCmd(&cf), newExtendCmd(&cf), &cobra.Command{
		Use:   "open SESSION",
		Short: "Print a one-time link that opens the notebook in a browser",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			link, err := c.OpenSession(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), link)
			return nil
		},
	})
	return cmd
}

func newSessionStartCmd(cf *clientFlags) *cobra.Command {
	var classID string
	var wait bool
	cmd := &cobra.Command{
		Use:   "start --class CLASS [--wait]",
		Short: "Start your session in a class, or reconnect to the one you have",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, created, err := c.StartSession(ctx, classID)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !cf.json {
				verb := "reconnected to"
				if created {
					verb = "started"
				}
				fmt.Fprintf(out, "%s session %s (%s)\n", verb, s.ID, s.State)
			}
			if wait {
				if s, err = waitReady(cmd, c, s); err != nil {
					return err
				}
			}
			if cf.json {
				return printJSON(out, s)
			}
			if s.State == cohort.StateReady {
				link, err := c.OpenSession(ctx, s.ID)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "notebook ready; open it in your browser (link works once, for 2 minutes):\n%s\n", link)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&classID, "class", "", "the class (required)")
	cmd.Flags().BoolVar(&wait, "wait", false, "show progress until the notebook is ready")
	cmd.MarkFlagRequired("class")
	return cmd
}

// waitReady prints the session's progress until it is ready or has ended.
func waitReady(cmd *cobra.Command, c *client.Client, s *client.Session) (*client.Session, error) {
	ctx := cmd.Context()
	progress := cmd.ErrOrStderr()
	if s.State != cohort.StateReady {
		err := c.FollowEvents(ctx, s.ID, 0, func(e cohort.Event) bool {
			fmt.Fprintf(progress, "%s  %-12s  %s\n", e.Time.Local().Format(time.TimeOnly), e.State, e.Message)
			return e.State != cohort.StateReady
		})
		if err != nil {
			return nil, err
		}
	}
	s, err := c.GetSession(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	if s.State != cohort.StateReady {
		return s, errors.New("session " + s.ID + " is " + string(s.State) + ": " + s.Reason)
	}
	return s, nil
}

// stopsIn says when a running session stops, and flags a warning.
func stopsIn(s *client.Session) string {
	if s.StopsAt == nil {
		return "-"
	}
	left := time.Until(*s.StopsAt).Round(time.Minute)
	text := fmt.Sprintf("in %s (%s)", left, s.StopCause)
	if s.Warning != "" {
		text = "SOON: " + text
	}
	return text
}

func newKeepAliveCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "keepalive SESSION",
		Short: "Keep an idle session from stopping (counts as use now)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			s, err := c.KeepAlive(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "session %s kept alive; it stops %s\n", s.ID, stopsIn(s))
			return nil
		},
	}
}

func newExtendCmd(cf *clientFlags) *cobra.Command {
	var by time.Duration
	cmd := &cobra.Command{
		Use:   "extend SESSION --by DURATION",
		Short: "Give a session more time than the class's maximum lifetime (instructors)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			s, err := c.Extend(cmd.Context(), args[0], by)
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "session %s extended; at the latest it stops at %s\n", s.ID, s.HardDeadline.Local().Format(time.Kitchen))
			return nil
		},
	}
	cmd.Flags().DurationVar(&by, "by", time.Hour, "how much more time")
	return cmd
}
