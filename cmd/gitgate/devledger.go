package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/internal/ledgergen"
	"github.com/spf13/cobra"
)

// newDevLedgerCmd is "gitgate dev ledger": a simulated canary ledger to
// try "gitgate report" on.
func newDevLedgerCmd() *cobra.Command {
	var (
		scenario, out, end string
		weeks, agents      int
		seed               uint64
	)
	var names []string
	for _, s := range ledgergen.Scenarios() {
		names = append(names, string(s))
	}
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Write a simulated canary ledger (JSON lines) to try gitgate report on",
		Long: `ledger simulates agents working through the gateway for weeks (sessions by
day, fewer at night and at weekends; every operation with its own latency;
workspace-sticky canary stages; shadow comparisons; sandboxes that end after an
hour idle, priced at E2B's rates) and writes the records the gateway would have
written to its ledger, one JSON object per line, in time order. The same seed
and end give the same file.

Scenarios:
  healthy          every operation in canary (0 %, 10 % from a quarter of the
                   way, 50 % from half way), Approach 2 drawn like Approach 1
  push-failures    the same, Approach 2 failing 20 % of pushes
  clone-slow       the same, Approach 2 2 s slower on clone, 10 ms on status
  commit-mismatch  the same, 2 % of commit shadow comparisons disagreeing
  cost             the same, Approach 2 costing three times as much
  thin             every operation at 10 % for the last three hours only
  a1-slow          no canary; Approach 1's P95 2.5 s in the last three weeks
  a1-busy          no canary; 14 agents in parallel daily in the last two weeks

The stay-or-migrate decision follows from the agents too: a hundred agents'
sandboxes cost more than $500 a month, so "migrate" is the right answer there
whatever the scenario; try --agents 5 for a team that Approach 1 serves.`,
		Example: `  gitgate dev ledger --scenario push-failures --weeks 4 --agents 20 --seed 1 --out /tmp/ledger.jsonl
  gitgate report --ledger /tmp/ledger.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := ledgergen.Scenario(scenario)
			if !s.Known() {
				return fmt.Errorf("--scenario: %q is not one of %s", scenario, strings.Join(names, ", "))
			}
			if out == "" {
				return errors.New("--out: the file to write is required (- for standard output)")
			}
			if agents < 1 || weeks < 1 {
				return fmt.Errorf("--agents (%d) and --weeks (%d) must be at least 1", agents, weeks)
			}
			until := time.Now().UTC().Truncate(time.Hour)
			if end != "" {
				t, err := time.Parse(time.RFC3339, end)
				if err != nil {
					return fmt.Errorf("--end: %q is not an RFC 3339 time (2026-11-30T00:00:00Z)", end)
				}
				until = t.UTC()
			}
			cfg, err := s.Config(until.Add(-time.Duration(weeks)*ledgergen.Week), weeks, agents, seed)
			if err != nil {
				return err
			}
			stats, err := writeLedger(cfg, out, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if out != "-" {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d records from %s to %s (%d calls on approach1, %d on approach2; %d comparisons; %d sandboxes costing $%.2f; at most %d calls in flight)\n  try: gitgate report --ledger %s --since %s --until %s\n",
					out, stats.Entries, cfg.Start.Format(time.RFC3339), cfg.End().Format(time.RFC3339),
					stats.Calls[backends.Approach1], stats.Calls[backends.Approach2], comparisons(stats), stats.Sandboxes, stats.SandboxUSD, stats.MaxInFlight,
					out, cfg.Start.Format(time.RFC3339), cfg.End().Format(time.RFC3339))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&scenario, "scenario", string(ledgergen.Healthy), "what the ledger shows: "+strings.Join(names, ", "))
	cmd.Flags().IntVar(&weeks, "weeks", 4, "weeks simulated, ending at --end")
	cmd.Flags().IntVar(&agents, "agents", 20, "agents working (a hundred make about a million records a week)")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "the simulation's seed")
	cmd.Flags().StringVar(&out, "out", "", "the ledger file to write (replaced), or - for standard output")
	cmd.Flags().StringVar(&end, "end", "", "when the ledger ends, RFC 3339 (default: the start of the current hour)")
	return cmd
}

func comparisons(s ledgergen.Stats) int64 {
	var n int64
	for _, c := range s.Comparisons {
		n += c
	}
	return n
}

// writeLedger streams cfg's simulation into the file at path as JSON
// lines (stdout when path is "-"); a file is written beside its place and
// renamed over it once complete.
func writeLedger(cfg ledgergen.Config, path string, stdout io.Writer) (ledgergen.Stats, error) {
	var stats ledgergen.Stats
	write := func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		enc := json.NewEncoder(bw)
		err := ledgergen.Each(cfg, func(e canary.Entry) error {
			stats.Add(e)
			return enc.Encode(e)
		})
		if err != nil {
			return err
		}
		return bw.Flush()
	}
	if path == "-" {
		return stats, write(stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return stats, fmt.Errorf("--out: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }() // fails once renamed: nothing left to remove
	if err := write(f); err != nil {
		f.Close()
		return stats, fmt.Errorf("--out: %w", err)
	}
	if err := f.Close(); err != nil {
		return stats, fmt.Errorf("--out: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return stats, fmt.Errorf("--out: %w", err)
	}
	// A roll-up of an older ledger at this path would not fit the new one.
	if err := os.Remove(canary.RollupPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return stats, fmt.Errorf("--out: the old roll-up: %w", err)
	}
	return stats, nil
}
