package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
)

func newSpendCmd() *cobra.Command {
	var cf clientFlags
	var month string
	var budget float64
	cmd := &cobra.Command{
		Use:   "spend [--month 2026-12] [--set-budget AMOUNT]",
		Short: "Show what the installation spent in a month, by class, or set its monthly budget (admins)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("set-budget") {
				if _, err := c.SetSettings(cmd.Context(), cohort.Settings{MonthlyBudget: budget}); err != nil {
					return err
				}
			}
			m, err := c.MonthSpend(cmd.Context(), month)
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), m)
			}
			w := cmd.OutOrStdout()
			money := func(v float64) string { return cost.Money(v, m.Currency) }
			fmt.Fprintf(w, "Month:         %s (UTC)\nSpent:         %s\n", m.Month, money(m.Spent))
			if month == "" || m.Month == string(cost.MonthOf(time.Now())) {
				fmt.Fprintf(w, "Running now:   %d seats, %s an hour\nCommitted:     %s\n", m.RunningSeats, money(m.RunningHour), money(m.Committed))
				if m.Budget > 0 {
					fmt.Fprintf(w, "Budget:        %s a month, %s left\n", money(m.Budget), money(max(m.Budget-m.Committed, 0)))
				} else {
					fmt.Fprintln(w, "Budget:        none (set one with --set-budget)")
				}
			}
			if m.Warning != "" {
				fmt.Fprintf(w, "Warning:       %s\n", m.Warning)
			}
			var rows [][]any
			for _, cs := range m.Classes {
				name := cs.ClassName
				if name == "" {
					name = "(deleted)"
				}
				rows = append(rows, []any{cs.ClassID, name, cs.Sessions, cs.RunningSeats, money(cs.Spent)})
			}
			if len(rows) == 0 {
				return nil
			}
			fmt.Fprintln(w)
			return table(w, "CLASS\tNAME\tSESSIONS\tRUNNING\tSPENT", rows)
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&month, "month", "", "the month, as 2026-12 (UTC); this month if empty")
	cmd.Flags().Float64Var(&budget, "set-budget", 0, "set the installation's monthly budget first (0: none)")
	return cmd
}
