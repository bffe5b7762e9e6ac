package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary/drill"
	"github.com/gitgate/gitgate/configs"
	"github.com/spf13/cobra"
)

// Exit codes of `gitgate drill`, for cron, systemd and Kubernetes.
const (
	exitDrillFailed  = 1 // the drill ran and failed, or was aborted by a stop condition
	exitDrillRefused = 4 // the preflight refused: nothing was changed
)

func newDrillCmd(o *globalOptions) *cobra.Command {
	var dryRun, recover bool
	var by, reason string
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Run the weekly kill-switch drill on the gateways, measured, and put everything back",
		Long: `drill proves on the running gateways (drill.gateways, or every address of a DNS name:
drill.discover) that the kill switch works:
1. preflight: every gateway reachable, using its flags, not already killed; the routing
   state snapshotted to <history>/in-progress.json; the drill mark taken on every
   gateway (no other drill may run);
2. flip: the kill switch set in the flag source, then the admin override on every gateway;
   per gateway, the time until it sends no new call to Approach 2 (its /status and
   counters, and the drill agent's probe calls through MCP);
3. hold, counting agents' failed calls and calls that still reached Approach 2;
4. restore: the flag file's bytes and the overrides as they were, verified on every gateway;
5. breaker: one operation's Approach 2 breaker forced open on every gateway, its calls
   checked to fall back to Approach 1 without errors, released.
Stop conditions (agents' calls failing above drill.max_error_rate, a gateway not
answering) abort and restore at once. Each run is kept in drill.history_dir (JSON and
Markdown); metrics go to a textfile for node_exporter or a Pushgateway.
Exit codes: 0 pass, 1 fail or aborted, 4 refused by the preflight (nothing changed).
A drill that did not finish (the machine died) leaves its snapshot: --recover puts it back.`,
		Example: `  gitgate drill --config /etc/gitgate/gitgate.yaml
  gitgate drill --dry-run
  gitgate drill --recover
  gitgate drill history`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, dc, err := drillConfig(o, by, reason)
			if err != nil {
				return err
			}
			dc.DryRun, dc.Progress = dryRun, cmd.ErrOrStderr()
			// Warnings and errors of what the drill runs (flagd in process,
			// choosing the probe workspace) go to standard error as JSON.
			dc.Logger = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			run := drill.Run
			if recover {
				run = drill.Recover
			}
			// SIGINT and SIGTERM (systemd's stop, a pod's eviction) stop the
			// drill, which puts everything back before it exits; only a
			// SIGKILL or a dying machine leaves the snapshot to --recover.
			ctx, cancel := context.WithCancelCause(cmd.Context())
			defer cancel(nil)
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			go func() {
				select {
				case sig := <-sigs:
					cancel(fmt.Errorf("interrupted by %v: putting everything back", sig))
				case <-ctx.Done():
				}
			}()
			res, err := run(ctx, dc)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), drill.Markdown(res))
			fmt.Fprintf(cmd.OutOrStdout(), "\nkept in %s\n", filepath.Join(dc.HistoryDir, res.ID+".json"))
			if err := drillMetrics(cmd.Context(), cfg, dc.HistoryDir); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: drill metrics: %v\n", err)
			}
			switch res.Verdict {
			case drill.Pass, drill.DryRun, drill.Recovered:
				return nil
			case drill.Refused:
				return &exitError{code: exitDrillRefused, msg: "drill refused: " + strings.Join(res.Reasons, "; ")}
			}
			return &exitError{code: exitDrillFailed, msg: "drill " + string(res.Verdict) + ": " + strings.Join(res.Reasons, "; ")}
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "preflight only: check the gateways and say what the drill would do; change nothing")
	cmd.Flags().BoolVar(&recover, "recover", false, "put back the state an unfinished drill saved (<history>/in-progress.json)")
	cmd.Flags().StringVar(&by, "by", "", "who runs the drill (default: gitgate drill ($USER))")
	cmd.Flags().StringVar(&reason, "reason", "weekly drill", "why (recorded in the change log and the ledger)")
	cmd.MarkFlagsMutuallyExclusive("dry-run", "recover")
	cmd.AddCommand(newDrillHistoryCmd(o))
	return cmd
}

func newDrillHistoryCmd(o *globalOptions) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List past drills, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Read(o.configPath, os.Getenv)
			if err != nil {
				return err
			}
			rs, listErr := (drill.History{Dir: cfg.DrillHistoryDir()}).List()
			if limit > 0 && len(rs) > limit {
				rs = rs[:limit]
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rs); err != nil {
					return err
				}
			} else if err := drill.HistoryTable(cmd.OutOrStdout(), rs); err != nil {
				return err
			}
			if listErr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", listErr)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON (the files' format)")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (0: all)")
	return cmd
}

// drillConfig is the drill's configuration from the file and the
// environment: the gateways, the flag source, the limits, the admin token
// and the drill agent's.
func drillConfig(o *globalOptions, by, reason string) (*configs.Config, drill.Config, error) {
	cfg, err := configs.Read(o.configPath, os.Getenv)
	if err != nil {
		return nil, drill.Config{}, err
	}
	dc, err := newDrillConfig(cfg, os.Getenv, by, reason)
	return cfg, dc, err
}

// newDrillConfig is the drill's configuration from cfg, with the tokens
// and the user from getenv: the gateways configured (drill.gateways), or
// their discovery by DNS (drill.discover) through the system's resolver.
func newDrillConfig(cfg *configs.Config, getenv func(string) string, by, reason string) (drill.Config, error) {
	if err := cfg.ValidateDrill(); err != nil {
		return drill.Config{}, err
	}
	d := cfg.Drill
	if by == "" {
		by = "gitgate drill"
		if u := getenv("USER"); u != "" {
			by += " (" + u + ")"
		}
	}
	adminToken, err := cfg.DrillAdminToken(getenv)
	if err != nil {
		return drill.Config{}, err
	}
	dc := drill.Config{FlagPath: cfg.DrillFlagFile(), Ops: backends.OpNames(), Services: d.Services, BreakerOp: d.BreakerOp,
		By: by, Reason: reason, MaxTimeToEffect: d.MaxTimeToEffect, Hold: d.Hold, UnreachableAfter: d.UnreachableAfter,
		MaxErrorRate: d.MaxErrorRate, MinCalls: d.MinCalls, HistoryDir: cfg.DrillHistoryDir(), LockWait: changeLogLockWait,
		Connect: drill.Connect(adminToken)}
	if dd, on := cfg.DrillDiscovery(); on {
		dc.Discover = &drill.Discovery{Name: dd.DNS, AdminPort: dd.AdminPort, MCPPort: dd.MCPPort, MCPPath: dd.MCPPath,
			MCPHost: dd.MCPHost, Scheme: dd.Scheme}
	}
	for _, g := range cfg.DrillGateways() {
		dc.Targets = append(dc.Targets, drill.Target{Name: g.Name, Admin: g.Admin, MCP: g.MCP})
	}
	if p := d.Probe; p.Agent != "" {
		token, err := cfg.DrillProbeToken(getenv)
		if err != nil {
			return drill.Config{}, err
		}
		dc.Probe = &drill.ProbeConfig{Token: token, Project: cfg.DrillProbeProject(), Repo: p.Repo, Op: p.Op}
	}
	return dc, nil
}

// drillMetrics writes the drill metrics of the whole history to the
// textfile (unless "-") and pushes them to the Pushgateway, if set.
func drillMetrics(ctx context.Context, cfg *configs.Config, dir string) error {
	rs, err := (drill.History{Dir: dir}).List()
	if err != nil && len(rs) == 0 {
		return err
	}
	path := cfg.Drill.MetricsTextfile
	if path == "" {
		path = filepath.Join(dir, "gitgate_drill.prom")
	}
	if path != "-" {
		if err := drill.WriteTextfile(path, rs); err != nil {
			return err
		}
	}
	if u := cfg.Drill.Pushgateway; u != "" {
		return drill.Push(ctx, u, "gitgate_drill", rs)
	}
	return nil
}
