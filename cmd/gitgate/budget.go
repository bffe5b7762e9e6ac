package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/gitgate/gitgate/backends/budget"
	"github.com/gitgate/gitgate/configs"
	"github.com/spf13/cobra"
)

// budgetReport is what `gitgate budget --json` prints.
type budgetReport struct {
	Month    budget.Month    `json:"month"`
	ResetsAt time.Time       `json:"resets_at"`
	Action   string          `json:"action"`
	Store    string          `json:"store"`
	Scopes   []budget.Status `json:"scopes"`
}

func newBudgetCmd(o *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "budget",
		Short: "Month-to-date sandbox spend against the budgets, with the forecast",
		Long: `budget reads the month's sandbox spend (UTC calendar month) from the
budget's store (budget.store: Redis, PostgreSQL or the state directory's file,
the one the gateways and the service charge) and shows, for the overall budget
(_total) and each project: what was spent, the limit, the share used, the
spend projected to the month's end (linear on the month so far, once
budget.forecast_min_days of data) and when the limit will be reached, or
whether it was. At 100 % with budget.action refuse, new sandboxes are refused
until the reset date; workspaces that have a sandbox keep working.`,
		Example: `  gitgate budget
  gitgate budget --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Read(o.configPath, os.Getenv)
			if err != nil {
				return err
			}
			if err := cfg.ResolveBudget(os.Getenv); err != nil {
				return err
			}
			store, closeStore, err := openBudgetStore(cmd.Context(), cfg, nil)
			if err != nil {
				return err
			}
			defer closeStore()
			b, err := newBudget(cfg, store, nil, nil)
			if err != nil {
				return err
			}
			statuses, err := b.Status(cmd.Context())
			if err != nil {
				return err
			}
			month := budget.MonthOf(time.Now())
			r := budgetReport{Month: month, ResetsAt: month.End(), Action: cfg.Budget.Action, Store: cfg.BudgetStore(), Scopes: statuses}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return printBudget(cmd.OutOrStdout(), r)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printBudget writes r as a table.
func printBudget(out io.Writer, r budgetReport) error {
	fmt.Fprintf(out, "Sandbox budgets, %s (UTC); they reset on %s. Action at 100 %%: %s. Store: %s.\n\n",
		r.Month.Start().Format("January 2006"), r.ResetsAt.Format("2006-01-02 15:04 MST"), r.Action, r.Store)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tSPENT\tLIMIT\tUSED\tFORECAST\tLIMIT REACHED")
	for _, s := range r.Scopes {
		limit, used, forecast, reached := "none", "-", "not yet", "-"
		if s.LimitUSD > 0 {
			limit, used = fmt.Sprintf("$%.2f", s.LimitUSD), fmt.Sprintf("%.0f %%", 100*s.Ratio)
			reached = "not this month"
		}
		if s.ForecastUSD != nil {
			forecast = fmt.Sprintf("$%.2f", *s.ForecastUSD)
		}
		switch {
		case s.Spent():
			reached = "spent: new sandboxes refused"
			if s.Action == budget.Alert {
				reached = "spent (alert only)"
			}
		case s.ReachAt != nil:
			reached = "forecast " + s.ReachAt.Format("2006-01-02 15:04 MST")
		case s.LimitUSD > 0 && s.ForecastUSD == nil:
			reached = "no forecast yet"
		}
		fmt.Fprintf(tw, "%s\t$%.2f\t%s\t%s\t%s\t%s\n", s.Scope, s.SpentUSD, limit, used, forecast, reached)
	}
	return tw.Flush()
}
