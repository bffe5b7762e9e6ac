package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/configs"
	"github.com/spf13/cobra"
)

// exitError ends the command with its code after printing nothing more
// than what the command printed (the report's "rollback" exit code).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitRollback is the report's exit code when any operation's verdict is
// rollback, for cron and CI.
const exitRollback = 3

// reportFormat is one of the report's output forms.
type reportFormat string

// The report's output forms.
const (
	formatMarkdown reportFormat = "markdown"
	formatHTML     reportFormat = "html"
	formatJSON     reportFormat = "json"
)

var reportFormats = []reportFormat{formatMarkdown, formatHTML, formatJSON}

// write renders r in f.
func (f reportFormat) write(r *canary.Report, w io.Writer) error {
	switch f {
	case formatHTML:
		return r.WriteHTML(w)
	case formatJSON:
		return r.WriteJSON(w)
	default:
		return r.WriteMarkdown(w)
	}
}

func (f reportFormat) ext() string {
	return map[reportFormat]string{formatMarkdown: "md", formatHTML: "html", formatJSON: "json"}[f]
}

func newReportCmd(o *globalOptions) *cobra.Command {
	var (
		ledgerPath, ledgerDSNEnv, flagPath, since, until, format, outDir, output string
	)
	cmd := &cobra.Command{
		Use:   "report",
		Short: "The canary comparison and the stay-or-migrate decision, from the ledger",
		Long: `report reads the canary ledger (the file store, or PostgreSQL with
--ledger-dsn-env) over a period (default: the last 4 weeks) and answers two
questions with the evidence beside each answer:

  - stay on Approach 1, or migrate? The decision framework, per whole week of
    Approach 1's own calls: peak concurrency, cost per operation, P95
    latency, error rate, monthly cost (any over its threshold for 2+ weeks),
    cost growth, an upward error trend, visible queueing.
  - per operation: advance, hold, roll back or complete? Approach 2 against
    Approach 1 in the operation's current stage, call by call, with
    anytime-valid bounds and practical floors (the same judge as
    "gitgate canary advance" and the automatic rollback).

The flag file (--flags, default flags.path) gives each operation's stage, and
its change log the stage timeline. The exit code is 3 when any operation's
verdict is rollback, 0 otherwise. --out-dir writes report.md, report.html and
report.json there (each replaced atomically), for a scheduled run.`,
		Example: `  gitgate report
  gitgate report --format html --output canary.html
  gitgate report --ledger-dsn-env GITGATE_LEDGER_DSN --since 2026-11-01 --format json
  gitgate report --out-dir /var/lib/gitgate/reports`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := reportFormat(format)
			if !slices.Contains(reportFormats, f) {
				return fmt.Errorf("--format: %q is not one of markdown, html, json", format)
			}
			cfg, err := configs.Read(o.configPath, os.Getenv)
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			decision, err := cfg.Report.DecisionConfig()
			if err != nil {
				return err
			}
			rc := canary.ReportConfig{Now: now, Ops: backends.OpList(), Judge: cfg.Canary.JudgeConfig(), Decision: decision}
			if rc.Until, err = parseWhen(until, now, now); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			if rc.Since, err = parseWhen(since, rc.Until.Add(-28*24*time.Hour), rc.Until); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if rc.Until.After(now) {
				rc.Now = now
			} else {
				rc.Now = rc.Until
			}
			flagPath = cmp.Or(flagPath, cfg.Flags.Path)
			if err := canary.StagesFromFlags(flagPath, &rc); err != nil {
				return err
			}
			src, closeSrc, err := reportSource(cmd, cfg, ledgerPath, ledgerDSNEnv, flagPath, &rc)
			if err != nil {
				return err
			}
			defer closeSrc()
			r, err := canary.BuildReport(cmd.Context(), src, rc)
			if err != nil {
				return err
			}
			switch {
			case outDir != "" && output != "":
				return errors.New("--out-dir and --output: pass one")
			case output != "":
				if err := writeAtomically(output, func(w io.Writer) error { return f.write(r, w) }); err != nil {
					return fmt.Errorf("--output: %w", err)
				}
			case outDir != "":
				if err := writeReports(outDir, r); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: decision %s; %s\n", outDir, r.Decision.Verdict, verdictCounts(r))
			default:
				if err := f.write(r, cmd.OutOrStdout()); err != nil {
					return err
				}
			}
			if ops := r.RolledBackOps(); len(ops) > 0 {
				return &exitError{code: exitRollback, msg: fmt.Sprintf("verdict rollback for %s", joinOps(ops))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ledgerPath, "ledger", "", "canary ledger file (default: canary.ledger_path, or <flag file>.ledger.jsonl)")
	cmd.Flags().StringVar(&ledgerDSNEnv, "ledger-dsn-env", "", "environment variable holding the ledger's PostgreSQL DSN (default: canary.ledger_dsn_env), instead of the file")
	cmd.Flags().StringVar(&flagPath, "flags", "", "flag file for the stages and, beside it, the change log (default: flags.path)")
	cmd.Flags().StringVar(&since, "since", "", "start: RFC 3339 time, a date (2026-11-01), or a span back from --until (4w, 28d, 36h); default 4w")
	cmd.Flags().StringVar(&until, "until", "", "end: RFC 3339 time, a date, or a span back from now; default now")
	cmd.Flags().StringVar(&format, "format", string(formatMarkdown), "markdown, html (one self-contained file with charts) or json")
	cmd.Flags().StringVar(&output, "output", "", "write the report into this file (replaced atomically) instead of printing it")
	cmd.Flags().StringVar(&outDir, "out-dir", "", "write report.md, report.html and report.json into this directory instead of printing")
	return cmd
}

// parseWhen reads a --since/--until value: empty (def), RFC 3339, a date,
// or a span back from ref ("4w", "28d", "36h").
func parseWhen(s string, def, ref time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return def.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	if n := len(s); n > 1 && (s[n-1] == 'w' || s[n-1] == 'd') {
		k, err := strconv.Atoi(s[:n-1])
		if err == nil && k >= 0 {
			days := k
			if s[n-1] == 'w' {
				days *= 7
			}
			return ref.Add(-time.Duration(days) * 24 * time.Hour).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return ref.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-11-01T00:00:00Z), a date (2026-11-01) or a span (4w, 28d, 36h)", s)
}

// reportSource opens the ledger: PostgreSQL when a DSN variable is named
// (--ledger-dsn-env, or canary.ledger_dsn_env), the file otherwise.
func reportSource(cmd *cobra.Command, cfg *configs.Config, file, dsnEnv, flagPath string, rc *canary.ReportConfig) (canary.Source, func(), error) {
	src, what, closeSrc, err := openLedger(cmd.Context(), cfg, file, dsnEnv, flagPath, false)
	rc.Source = what
	return src, closeSrc, err
}

// openLedger opens the canary ledger as a report Source (its roll-ups
// keep long periods cheap): PostgreSQL when a DSN variable is named
// (dsnEnv, or canary.ledger_dsn_env), else the file (file, or
// canary.ledger_path, or the one beside the flag file). It says which. A
// file that does not exist is an empty ledger when missingOK (no call was
// routed yet), an error otherwise (a mistyped --ledger).
func openLedger(ctx context.Context, cfg *configs.Config, file, dsnEnv, flagPath string, missingOK bool) (canary.Source, string, func(), error) {
	dsnEnv = cmp.Or(dsnEnv, cfg.Canary.LedgerDSNEnv)
	if f := cfg.Canary.LedgerDSNFile; dsnEnv == "" && f != "" {
		return openLedgerDSNFile(ctx, f)
	}
	if dsnEnv != "" {
		dsn, err := ledgerDSN(dsnEnv)
		if err != nil {
			return nil, "", nil, err
		}
		src, err := canary.OpenPGSource(ctx, dsn)
		if err != nil {
			return nil, "", nil, fmt.Errorf("the ledger: %w", err)
		}
		return src, "postgresql (" + dsnEnv + ")", src.Close, nil
	}
	file = cmp.Or(file, cfg.Canary.LedgerPath)
	if file == "" && flagPath != "" {
		file = canary.LedgerPath(flagPath)
	}
	if file == "" {
		return nil, "", nil, errors.New("no ledger: pass --ledger FILE or --ledger-dsn-env VAR, or set flags.path or canary.ledger_path")
	}
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) && missingOK {
		return canary.Entries{}, "file " + file + " (none yet)", func() {}, nil
	} else if err != nil {
		return nil, "", nil, fmt.Errorf("the ledger: %w", err)
	}
	return &canary.FileSource{Path: file}, "file " + file, func() {}, nil
}

// writeReports writes the three forms into dir, each replaced atomically.
func writeReports(dir string, r *canary.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out-dir: %w", err)
	}
	for _, f := range reportFormats {
		path := filepath.Join(dir, "report."+f.ext())
		if err := writeAtomically(path, func(w io.Writer) error { return f.write(r, w) }); err != nil {
			return fmt.Errorf("--out-dir: %w", err)
		}
	}
	return nil
}

// writeAtomically writes path through a temporary file beside it, renamed
// over it once complete: a reader sees the old file or the new one.
func writeAtomically(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return err
	}
	err = write(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func verdictCounts(r *canary.Report) string {
	n := map[canary.Verdict]int{}
	for _, o := range r.Operations {
		n[o.Verdict]++
	}
	var parts []string
	for _, v := range []canary.Verdict{canary.VerdictRollback, canary.VerdictHold, canary.VerdictAdvance, canary.VerdictComplete, canary.VerdictIdle} {
		if n[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[v], v))
		}
	}
	return strings.Join(parts, ", ")
}

func joinOps(ops []backends.Op) string {
	s := make([]string, len(ops))
	for i, op := range ops {
		s[i] = string(op)
	}
	return strings.Join(s, ", ")
}
