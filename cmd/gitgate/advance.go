package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/spf13/cobra"
)

func newAdvanceCmd(o *globalOptions) *cobra.Command {
	c := &changeOptions{o: o}
	var force bool
	var ledgerPath, ledgerDSNEnv string
	cmd := &cobra.Command{
		Use:   "advance OP",
		Short: "Move OP to the next stage (0 → 10 → 50 → 100 %) if the current stage's analysis passes",
		Long: `advance reads the canary ledger since OP's stage began (the last change of its
route, or of every operation's, in the flag change log; shadow changes do not
restart a stage) and moves OP to the next stage only when Approach 2 had enough
calls, and its error rate and P95 stayed within the thresholds and close to
Approach 1's. --force moves it regardless, and says so in the change log.`,
		Example: `  gitgate canary advance status --reason "10% stage clean for a week"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := args[0]
			path, err := c.path()
			if err != nil {
				return err
			}
			f, err := flags.Load(path)
			if err != nil {
				return err
			}
			if _, ok := f.Flags[flags.RouteFlag(op)]; !ok {
				return unknownOp(op)
			}
			next, ok := canary.NextStage(f.Route(op))
			if !ok {
				return fmt.Errorf("%s is already at 100%%", op)
			}
			since, err := flags.ReadStageStart(flags.ChangeLogPath(path), op)
			if err != nil {
				return err
			}
			dsn, err := ledgerDSN(ledgerDSNEnv)
			if err != nil {
				return fmt.Errorf("read the ledger: %w", err)
			}
			entries, err := canary.ReadLedger(cmd.Context(), cmp.Or(ledgerPath, canary.LedgerPath(path)), dsn, op, since)
			if err != nil {
				return fmt.Errorf("read the ledger: %w", err)
			}
			a := canary.Analyze(entries, op, since, canary.Thresholds{})
			printAnalysis(cmd.OutOrStdout(), a)
			what := fmt.Sprintf("%s: advanced to %d%% on approach2", op, next)
			if !a.Pass {
				if !force {
					return fmt.Errorf("the %d%% stage of %s did not pass; not advancing (--force to override)", f.Route(op), op)
				}
				what += " (FORCED past a failing analysis: " + strings.Join(a.Failures, "; ") + ")"
			}
			return c.edit(cmd.OutOrStdout(), what, func(f *flags.File) error { return f.SetRoute(op, next) })
		},
	}
	c.bind(cmd, true)
	cmd.Flags().BoolVar(&force, "force", false, "advance even if the analysis does not pass (recorded as forced)")
	cmd.Flags().StringVar(&ledgerPath, "ledger", "", "canary ledger file (default: <flag file>.ledger.jsonl)")
	cmd.Flags().StringVar(&ledgerDSNEnv, "ledger-dsn-env", "", "environment variable holding the PostgreSQL DSN of the ledger (the gateway's canary.ledger_dsn_env), instead of the file")
	return cmd
}

func printAnalysis(out io.Writer, a canary.Analysis) {
	fmt.Fprintf(out, "%s since %s\n", a.Op, a.Since.Format(time.RFC3339))
	for _, s := range []struct {
		name backends.Name
		st   canary.Stats
	}{{backends.Approach1, a.A1}, {backends.Approach2, a.A2}} {
		fmt.Fprintf(out, "  %-10s %6d calls  %5.1f%% errors  P95 %s\n", s.name, s.st.Calls, 100*s.st.ErrorRate, s.st.P95)
	}
	sh := a.Shadow
	fmt.Fprintf(out, "  shadow     %6d compared  %5.1f%% mismatches  (%d unfinished, %d stale)\n", sh.Compared, 100*sh.MismatchRate, sh.Unfinished, sh.Stale)
	if a.Pass {
		fmt.Fprintln(out, "  analysis: pass")
		return
	}
	for _, why := range a.Failures {
		fmt.Fprintf(out, "  fails: %s\n", why)
	}
}

// ledgerDSN is the PostgreSQL DSN of the ledger held by the variable env
// names (--ledger-dsn-env); "" (the file ledger) when env is "".
func ledgerDSN(env string) (string, error) {
	if env == "" {
		return "", nil
	}
	dsn := os.Getenv(env)
	if dsn == "" {
		return "", fmt.Errorf("--ledger-dsn-env: environment variable %s is not set", env)
	}
	return dsn, nil
}
