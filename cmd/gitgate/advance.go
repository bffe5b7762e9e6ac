package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/spf13/cobra"
)

func newAdvanceCmd(o *globalOptions) *cobra.Command {
	c := &changeOptions{o: o}
	var force bool
	var ledgerPath, ledgerDSNEnv string
	cmd := &cobra.Command{
		Use:   "advance OP",
		Short: "Move OP to the next stage (0 → 10 → 50 → 100 %) if the judge says its current stage may advance",
		Long: `advance reads the canary ledger since OP's stage began (the last change of its
route, or of every operation's, in the flag change log; shadow changes do not
restart a stage) and asks the judge the automatic rollback and gitgate report
use (canary.judge in the configuration): Approach 2 against Approach 1 over
the stage, on error rate, latency (P50, P95, P99), shadow mismatches and cost,
with anytime-valid bounds and practical floors. It prints the judgement and
moves OP to the next stage only on "advance" (or from 0 % while the stage is
idle: starting the canary needs no evidence). On "hold" the judgement says
about how many more Approach 2 calls would decide. --force moves it
regardless, and says so in the change log.`,
		Example: `  gitgate canary advance status --reason "10% stage clean for a week"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := args[0]
			cfg, err := configs.Read(c.o.configPath, os.Getenv)
			if err != nil {
				return err
			}
			if err := cfg.Canary.ValidateJudge(); err != nil {
				return fmt.Errorf("config: %w", err)
			}
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
			stage := f.Route(op)
			next, ok := canary.NextStage(stage)
			if !ok {
				return fmt.Errorf("%s is already at 100%%", op)
			}
			since, err := flags.ReadStageStart(flags.ChangeLogPath(path), op)
			if err != nil {
				return err
			}
			j, err := judgeStage(cmd.Context(), cfg, ledgerPath, ledgerDSNEnv, path, backends.Op(op), stage, since)
			if err != nil {
				return err
			}
			printJudgement(cmd.OutOrStdout(), j)
			what := fmt.Sprintf("%s: advanced to %d%% on approach2", op, next)
			if j.Verdict != canary.VerdictAdvance && j.Verdict != canary.VerdictIdle {
				if !force {
					return fmt.Errorf("the judge says %s for the %d%% stage of %s; not advancing (--force to override)", j.Verdict, stage, op)
				}
				what += fmt.Sprintf(" (FORCED past the judge's %s: %s)", j.Verdict, strings.Join(j.Reasons, "; "))
			}
			return c.edit(cmd.OutOrStdout(), what, func(f *flags.File) error { return f.SetRoute(op, next) })
		},
	}
	c.bind(cmd, true)
	cmd.Flags().BoolVar(&force, "force", false, "advance whatever the judge says (recorded as forced)")
	cmd.Flags().StringVar(&ledgerPath, "ledger", "", "canary ledger file (default: canary.ledger_path, or <flag file>.ledger.jsonl)")
	cmd.Flags().StringVar(&ledgerDSNEnv, "ledger-dsn-env", "", "environment variable holding the ledger's PostgreSQL DSN (default: canary.ledger_dsn_env), instead of the file")
	return cmd
}

// judgeStage judges op's stage the way the report does (canary.BuildReport
// over the ledger's Source, whose roll-ups keep a long stage cheap): the
// calls since the stage began (since; the whole ledger's last 4 weeks when
// the change log has no start) routed at stage per cent or of unknown
// stage, Approach 2 against Approach 1.
func judgeStage(ctx context.Context, cfg *configs.Config, file, dsnEnv, flagPath string, op backends.Op, stage int, since time.Time) (canary.Judgement, error) {
	src, _, closeSrc, err := openLedger(ctx, cfg, file, dsnEnv, flagPath, true)
	if err != nil {
		return canary.Judgement{}, fmt.Errorf("read the ledger: %w", err)
	}
	defer closeSrc()
	now := time.Now().UTC()
	rc := canary.ReportConfig{Since: since, Until: now, Now: now, Judge: cfg.Canary.JudgeConfig(), Ops: []backends.Op{op},
		Stages: map[backends.Op]int{op: stage}, StageSince: map[backends.Op]time.Time{}}
	if since.IsZero() || !since.Before(now) {
		rc.Since = now.Add(-28 * 24 * time.Hour)
	} else {
		rc.StageSince[op] = since
	}
	r, err := canary.BuildReport(ctx, src, rc)
	if err != nil {
		return canary.Judgement{}, fmt.Errorf("read the ledger: %w", err)
	}
	for _, o := range r.Operations {
		if o.Op == op {
			return o.Judgement, nil
		}
	}
	return canary.Judgement{}, fmt.Errorf("read the ledger: no judgement of %s", op)
}

// printJudgement prints the judge's verdict, its reasons and the numbers
// they rest on.
func printJudgement(out io.Writer, j canary.Judgement) {
	since := "the start of the change log"
	if !j.Since.IsZero() {
		since = j.Since.Format(time.RFC3339)
	}
	fmt.Fprintf(out, "%s: the %d%% stage since %s: %s\n", j.Op, j.Stage, since, strings.ToUpper(j.Verdict.String()))
	for _, why := range j.Reasons {
		fmt.Fprintf(out, "  - %s\n", why)
	}
	for _, b := range []struct {
		name backends.Name
		s    canary.BackendSummary
	}{{backends.Approach1, j.Approach1}, {backends.Approach2, j.Approach2}} {
		if b.s.Calls == 0 {
			fmt.Fprintf(out, "  %-10s %7d calls\n", b.name, 0)
			continue
		}
		fmt.Fprintf(out, "  %-10s %7d calls  errors %.2f%% (%d; %.2f–%.2f%%)  P50 %s  P95 %s  P99 %s  cost/op $%.5f\n", b.name, b.s.Calls,
			100*b.s.ErrorRate, b.s.Failures, 100*b.s.ErrorCI[0], 100*b.s.ErrorCI[1], latency(b.s.P50), latency(b.s.P95), latency(b.s.P99), b.s.CostPerOp)
	}
	if j.Baseline != "" {
		fmt.Fprintf(out, "  (approach1: %s)\n", j.Baseline)
	}
	sh := j.Shadow
	fmt.Fprintf(out, "  %-10s %7d compared", "shadow", sh.Compared)
	if sh.Compared > 0 {
		fmt.Fprintf(out, "  mismatches %.2f%% (%d; %.2f–%.2f%%)", 100*sh.MismatchRate, sh.Mismatch, 100*sh.MismatchCI[0], 100*sh.MismatchCI[1])
	}
	fmt.Fprintf(out, "  (%d stale, %d unfinished, %d skipped)\n", sh.Stale, sh.Unfinished, sh.Skipped)
	fmt.Fprintf(out, "  (ranges: anytime-valid bounds; false-alarm rate %.3g%%, miss rate %.3g%%)\n", 100*j.FalseAlarmRate, 100*j.MissRate)
}

// latency prints milliseconds the way a reader compares them.
func latency(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.2f s", ms/1000)
	}
	return fmt.Sprintf("%.1f ms", ms)
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
