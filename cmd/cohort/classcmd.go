package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/cost"
)

func newClassCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "class", Short: "Create and inspect classes"}
	cf.register(cmd)
	cmd.AddCommand(newClassCreateCmd(&cf), newClassMembersCmd(&cf), newClassEnrollCmd(&cf), newClassInviteCmd(&cf), &cobra.Command{
		Use:   "list",
		Short: "List classes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			classes, err := c.ListClasses(cmd.Context())
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), classes)
			}
			var rows [][]any
			for _, cl := range classes {
				rows = append(rows, []any{cl.ID, cl.Name, gpuLabel(cl.Runtime), cl.Policy.Seats, cl.Policy.IdleTimeout, cl.Policy.MaxLifetime})
			}
			return table(cmd.OutOrStdout(), "ID\tNAME\tRUNTIME\tSEATS\tIDLE\tMAX", rows)
		},
	}, &cobra.Command{
		Use:   "start-all CLASS",
		Short: "Start a session for every participant who has none (say, before the class begins)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			r, err := c.StartAll(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "started %d, already running %d, without a seat %d\n", r.Started, r.Running, r.NoSeat)
			if r.OverBudget > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%d not started: the class's budget cannot cover them (cohort class cost %s)\n", r.OverBudget, args[0])
			}
			return nil
		},
	}, &cobra.Command{
		Use:   "stop-all CLASS",
		Short: "Stop every session of the class",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			n, err := c.StopAll(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), map[string]int{"stopped": n})
			}
			noun := "sessions"
			if n == 1 {
				noun = "session"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stopping %d %s\n", n, noun)
			return nil
		},
	}, &cobra.Command{
		Use:   "cost CLASS",
		Short: "Show what a class has cost, what its running seats cost, and the most it can cost",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			cl, err := c.GetClass(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			cc, err := c.ClassCost(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), cc)
			}
			w := cmd.OutOrStdout()
			printEstimate(w, cl, cc)
			money := func(v float64) string { return cost.Money(v, cc.Currency) }
			fmt.Fprintf(w, "Spent:         %s\nRunning now:   %d seats, %s an hour\n", money(cc.Spent), cc.RunningSeats, money(cc.RunningHour))
			var rows [][]any
			for _, p := range cc.Participants {
				rows = append(rows, []any{p.Email, p.Sessions, fmt.Sprintf("%.1f", p.Hours), money(p.Spent)})
			}
			if len(rows) == 0 {
				return nil
			}
			fmt.Fprintln(w)
			return table(w, "PARTICIPANT\tSESSIONS\tHOURS\tSPENT", rows)
		},
	}, &cobra.Command{
		Use:   "show CLASS",
		Short: "Show a class",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			cl, err := c.GetClass(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), cl)
			}
			printClass(cmd, cl)
			if cl.Policy.Warm == nil {
				return nil
			}
			p, err := c.WarmPool(cmd.Context(), cl.ID)
			if err != nil {
				return err
			}
			printPool(cmd.OutOrStdout(), p)
			return nil
		},
	}, newClassWarmCmd(&cf), newClassMaterialsCmd(&cf), newClassCollectCmd(&cf), &cobra.Command{
		Use:   "drain CLASS",
		Short: "Stop a class's unclaimed warm seats and its warm schedule",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			p, err := c.Drain(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), p)
			}
			printPool(cmd.OutOrStdout(), p)
			return nil
		},
	})
	return cmd
}

func newClassWarmCmd(cf *clientFlags) *cobra.Command {
	var (
		seats  int
		roster bool
		until  string
	)
	cmd := &cobra.Command{
		Use:   "warm CLASS (--seats N | --roster) [--until TIME]",
		Short: "Keep seats of a class started from now, so that participants' Start is ready at once",
		Long: `Keep seats of a class started from now, owned by nobody: a participant's Start
takes one that is ready, with a notebook nobody else ever opened. The pool
keeps its size as seats are taken, shrinks to the participants left to
arrive once the class has opened, and stops at --until (default: the class's
end, or an hour after it opens). Warm seats bill like any seat and count
against the class's budget. To warm ahead of the class instead, set
policy.warm when creating or changing the class (docs/warm-seats.md).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var end time.Time
			if until != "" {
				if end, err = time.Parse(time.RFC3339, until); err != nil {
					return cohort.Invalid("until", "--until %q is not a time such as 2026-12-03T12:00:00Z", until)
				}
			}
			p, err := c.WarmNow(cmd.Context(), args[0], seats, roster, end)
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), p)
			}
			printPool(cmd.OutOrStdout(), p)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&seats, "seats", 0, "how many seats to keep warm (with --roster: at most)")
	f.BoolVar(&roster, "roster", false, "one warm seat for each participant on the roster yet to start")
	f.StringVar(&until, "until", "", "when unclaimed seats stop (RFC 3339)")
	return cmd
}

// printPool shows a class's warm seats.
func printPool(w io.Writer, p *cohort.WarmPool) {
	if p.From == nil {
		fmt.Fprintf(w, "Warm seats:    none kept; %d claimed, %d cold starts\n", p.Claimed, p.ColdStarts)
		return
	}
	fmt.Fprintf(w, "Warm seats:    from %s until %s; %d wanted now, %d ready, %d starting\n",
		p.From.Format(time.RFC3339), p.Until.Format(time.RFC3339), p.Target, p.Ready, p.Starting)
	fmt.Fprintf(w, "               %d claimed by participants, %d cold starts; %s spent on unclaimed time\n",
		p.Claimed, p.ColdStarts, cost.Money(p.Cost, p.Currency))
}

func gpuLabel(r cohort.Runtime) string {
	if r.GPUType == "" {
		return r.MachineType
	}
	return fmt.Sprintf("%s + %dx %s", r.MachineType, r.GPUCount, r.GPUType)
}

func printClass(cmd *cobra.Command, cl *cohort.Class) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "ID:            %s\nName:          %s\n", cl.ID, cl.Name)
	fmt.Fprintf(w, "Runtime:       %s, image %s, %d GB disk", gpuLabel(cl.Runtime), cl.Runtime.Image, cl.Runtime.DiskGB)
	if cl.Runtime.Spot {
		fmt.Fprint(w, ", spot")
	}
	if cl.Runtime.NoEgress {
		fmt.Fprint(w, ", no internet")
	}
	fmt.Fprintf(w, "\nZones:         %s\n", strings.Join(cl.Runtime.Zones, ", "))
	fmt.Fprintf(w, "Seats:         %d\nIdle timeout:  %s (warned %s before)\nMax lifetime:  %s (+ up to %s by instructors)\n",
		cl.Policy.Seats, cl.Policy.IdleTimeout, cohort.Duration(cl.Policy.Warn()), cl.Policy.MaxLifetime, cl.Policy.MaxExtension)
	if cl.Policy.IgnoreBusyKernels {
		fmt.Fprintln(w, "Busy kernels:  do not count as use")
	}
	if cl.Policy.StartsAt != nil {
		fmt.Fprintf(w, "Starts:        %s\n", cl.Policy.StartsAt.Format(time.RFC3339))
	}
	if cl.Policy.EndsAt != nil {
		fmt.Fprintf(w, "Ends:          %s\n", cl.Policy.EndsAt.Format(time.RFC3339))
	}
	if m := cl.Materials; m != nil {
		what := "archive " + m.Archive
		if m.Repo != "" {
			what = m.Repo + " " + cmp.Or(m.Ref, "(default branch)")
		}
		fmt.Fprintf(w, "Materials:     %s, %s, %d files\n", what, m.Short(), m.Files)
	}
}

// printEstimate says what one seat costs an hour and the most the class
// can cost, in list prices.
func printEstimate(w io.Writer, cl *cohort.Class, cc *cohort.ClassCost) {
	if cc.Unpriced != "" {
		fmt.Fprintf(w, "Cost:          unknown: %s\n", cc.Unpriced)
		return
	}
	money := func(v float64) string { return cost.Money(v, cc.Currency) }
	fmt.Fprintf(w, "Cost:          %s per seat-hour, %s an hour for all %d seats (list prices of %s)\n",
		money(cc.SeatHour), money(cc.AllSeatsHour), cl.Policy.Seats, cc.PricesChecked)
	fmt.Fprintf(w, "Estimate:      typically %s; at most %s, every seat running to its hard stop\n", money(cc.Typical), money(cc.Max))
	if cc.KeptWork > 0 {
		fmt.Fprintf(w, "Kept work:     %d disks, %d GB, %s a month until the class's work is deleted\n", cc.KeptWork, cc.KeptWorkGB, money(cc.KeptWorkMonth))
	}
	if cc.Budget > 0 {
		fmt.Fprintf(w, "Budget:        %s; committed %s (spent, and what running seats can still cost), %s left\n",
			money(cc.Budget), money(cc.Committed), money(max(cc.Budget-cc.Committed, 0)))
	}
	if cc.Warning != "" {
		fmt.Fprintf(w, "Warning:       %s\n", cc.Warning)
	}
}

func newClassCreateCmd(cf *clientFlags) *cobra.Command {
	var (
		name, image, machine, gpu, zones, idle, maxLife, maxExt, warn, starts, ends string
		warmFrom, warmUntil, materialsRepo, materialsRef, keepWork                  string
		gpuCount, seats, disk, warmSeats                                            int
		budget                                                                      float64
		spot, noEgress, ignoreBusy, warmRoster                                      bool
		token                                                                       tokenFlags
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME [flags]",
		Short: "Create a class; unset flags take the server's defaults (1x T4 on n1-standard-4, idle 90m, max 12h, 30 seats)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			// Send only what was set, so the server's defaults apply.
			set := cmd.Flags().Changed
			runtime, policy := map[string]any{}, map[string]any{}
			for flag, v := range map[string]any{"image": image, "machine-type": machine, "gpu-type": gpu, "gpu-count": gpuCount, "spot": spot, "no-egress": noEgress, "disk-gb": disk} {
				if set(flag) {
					runtime[strings.ReplaceAll(flag, "-", "_")] = v
				}
			}
			if set("zones") {
				runtime["zones"] = strings.Split(zones, ",")
			}
			for flag, v := range map[string]any{"idle-timeout": idle, "max-lifetime": maxLife, "max-extension": maxExt, "warn-before": warn,
				"ignore-busy-kernels": ignoreBusy, "seats": seats, "starts-at": starts, "ends-at": ends, "budget": budget, "keep-work": keepWork} {
				if set(flag) {
					policy[strings.ReplaceAll(flag, "-", "_")] = v
				}
			}
			warm := map[string]any{}
			for flag, v := range map[string]any{"warm-seats": warmSeats, "warm-roster": warmRoster, "warm-from": warmFrom, "warm-until": warmUntil} {
				if set(flag) {
					warm[strings.TrimPrefix(flag, "warm-")] = v
				}
			}
			if len(warm) > 0 {
				policy["warm"] = warm
			}
			in := map[string]any{"name": name, "runtime": runtime, "policy": policy}
			switch {
			case materialsRepo != "":
				repo, err := token.input(cmd.InOrStdin(), materialsRepo, materialsRef)
				if err != nil {
					return err
				}
				in["materials"] = repo
			case token.set():
				return cohort.Invalid("token", "--materials-token-file and --materials-token-user go with --materials-repo")
			}
			cl, err := c.CreateClass(cmd.Context(), in)
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), cl)
			}
			printClass(cmd, cl)
			if est, err := c.ClassCost(cmd.Context(), cl.ID); err == nil {
				printEstimate(cmd.OutOrStdout(), cl, est)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the class's name (required)")
	f.StringVar(&image, "image", "", "GCE image family of the runtime")
	f.StringVar(&machine, "machine-type", "", "GCE machine type, e.g. n1-standard-4 or g2-standard-4")
	f.StringVar(&gpu, "gpu-type", "", "GPU, e.g. nvidia-tesla-t4 or nvidia-l4; empty for none")
	f.IntVar(&gpuCount, "gpu-count", 0, "GPUs per participant")
	f.StringVar(&zones, "zones", "", "zones to try in order, comma-separated")
	f.BoolVar(&spot, "spot", false, "use spot VMs (cheaper, may be preempted)")
	f.BoolVar(&noEgress, "no-egress", false, "keep GCE sessions off the internet (no pip install, no downloads)")
	f.IntVar(&disk, "disk-gb", 0, "boot disk size in GB")
	f.StringVar(&idle, "idle-timeout", "", "stop a session idle this long, e.g. 90m")
	f.StringVar(&maxLife, "max-lifetime", "", "stop a session this old, e.g. 12h")
	f.StringVar(&maxExt, "max-extension", "", "how much instructors may extend a session beyond max-lifetime, e.g. 4h")
	f.StringVar(&warn, "warn-before", "", "warn participants this long before a stop, e.g. 10m")
	f.BoolVar(&ignoreBusy, "ignore-busy-kernels", false, "a running cell does not count as use")
	f.IntVar(&seats, "seats", 0, "how many sessions may run at once")
	f.Float64Var(&budget, "budget", 0, "the most the class may commit, in the price table's currency; no seat starts beyond it (docs/cost.md)")
	f.StringVar(&starts, "starts-at", "", "when participants may start (RFC 3339)")
	f.StringVar(&ends, "ends-at", "", "when the class ends (RFC 3339)")
	f.IntVar(&warmSeats, "warm-seats", 0, "seats to keep started ahead for participants to take (docs/warm-seats.md)")
	f.BoolVar(&warmRoster, "warm-roster", false, "keep a warm seat for each participant on the roster yet to start")
	f.StringVar(&warmFrom, "warm-from", "", "when warming begins (RFC 3339; default 15 minutes before --starts-at)")
	f.StringVar(&warmUntil, "warm-until", "", "when unclaimed warm seats stop (RFC 3339; default the class's end)")
	f.StringVar(&materialsRepo, "materials-repo", "", "a git repository (https://) whose files every participant starts from (docs/materials.md)")
	f.StringVar(&materialsRef, "materials-ref", "", "with --materials-repo: a branch, tag or commit (default: the default branch)")
	token.add(f, "materials-")
	f.StringVar(&keepWork, "keep-work", "", "how long participants' work is kept after --ends-at, e.g. 720h (the default, 30 days)")
	cmd.MarkFlagRequired("name")
	return cmd
}
