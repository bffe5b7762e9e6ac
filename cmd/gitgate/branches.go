package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/gateway/branches"
	"github.com/spf13/cobra"
)

// newBranchesCmd is `gitgate branches`: the branches gitgate pushed for
// agents, their cleanup and the restore of a deleted one.
func newBranchesCmd(o *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "branches",
		Short: "Agents' branches: list them, clean up merged and stale ones, restore a deleted one",
		Long: `gitgate records every branch it pushes for an agent (project, agent, branch,
commit, time) in the store the gateways share (PostgreSQL, Redis, or a file
under state_dir). The cleanup deletes from the remote the ones merged into the
default branch or without a push for branches.cleanup.stale_after, never a
protected one nor one someone else pushed on top of. Each deletion is
recorded and keeps its commit on the remote (refs/gitgate/deleted/<record>),
so "gitgate branches restore <record>" can put the branch back.`,
	}
	cmd.AddCommand(newBranchesListCmd(o), newBranchesCleanupCmd(o), newBranchesRestoreCmd(o))
	return cmd
}

// branchesEnv is what the subcommands work with.
type branchesEnv struct {
	cfg   *configs.Config
	store branches.Store
	git   *branches.Git
	close func()
}

func openBranchesEnv(ctx context.Context, o *globalOptions) (*branchesEnv, error) {
	cfg, err := configs.Load(o.configPath, os.Getenv)
	if err != nil {
		return nil, err
	}
	store, closeStore, err := openBranchStore(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	return &branchesEnv{cfg: cfg, store: store, git: branchGit(cfg), close: closeStore}, nil
}

func newBranchesListCmd(o *globalOptions) *cobra.Command {
	var deleted, asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the branches gitgate pushed for agents (or, with --deleted, the deletions)",
		Example: `  gitgate branches list
  gitgate branches list --deleted --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := openBranchesEnv(cmd.Context(), o)
			if err != nil {
				return err
			}
			defer env.close()
			if deleted {
				ds, err := env.store.Deletions(cmd.Context())
				if err != nil {
					return err
				}
				return printDeletions(cmd.OutOrStdout(), ds, asJSON)
			}
			ps, err := env.store.Pushed(cmd.Context(), "")
			if err != nil {
				return err
			}
			return printPushed(cmd.OutOrStdout(), ps, asJSON)
		},
	}
	cmd.Flags().BoolVar(&deleted, "deleted", false, "list the deletion records (restorable with `branches restore`)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newBranchesCleanupCmd(o *globalOptions) *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Delete agents' merged and stale branches from their remotes (a dry run until branches.cleanup.enabled)",
		Example: `  gitgate branches cleanup --dry-run
  gitgate branches cleanup`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := openBranchesEnv(cmd.Context(), o)
			if err != nil {
				return err
			}
			defer env.close()
			rep, runErr := newCleaner(env.cfg, env.store, env.git, nil, newBase(env.cfg, cmd.ErrOrStderr()).log, dryRun).Run(cmd.Context())
			if err := printReport(cmd.OutOrStdout(), rep, asJSON); err != nil {
				return err
			}
			return runErr
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be deleted (always so while branches.cleanup.enabled is false)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newBranchesRestoreCmd(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "restore RECORD",
		Short:   "Push a deleted branch's recorded commit back to its remote",
		Example: `  gitgate branches restore 20261201T120000Z-1a2b3c4d   # an id from "gitgate branches list --deleted"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := openBranchesEnv(cmd.Context(), o)
			if err != nil {
				return err
			}
			defer env.close()
			d, err := branches.Restore(cmd.Context(), env.store, env.git, args[0], time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s of project %s at %s (%s)\n", d.Branch, d.Project, d.Commit, d.URL)
			return nil
		},
	}
}

func printPushed(w io.Writer, ps []branches.Pushed, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(ps)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tAGENT\tBRANCH\tCOMMIT\tLAST PUSH\tREMOTE")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Project, p.Agent, p.Branch, short(p.Commit), p.At.UTC().Format(time.RFC3339), p.URL)
	}
	return tw.Flush()
}

func printDeletions(w io.Writer, ds []branches.Deletion, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(ds)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORD\tPROJECT\tBRANCH\tCOMMIT\tREASON\tBY\tDELETED\tRESTORED")
	for _, d := range ds {
		restored := "-"
		if d.RestoredAt != nil {
			restored = d.RestoredAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Project, d.Branch, short(d.Commit), d.Reason, d.By,
			d.At.UTC().Format(time.RFC3339), restored)
	}
	return tw.Flush()
}

func printReport(w io.Writer, rep branches.Report, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(rep)
	}
	if rep.DryRun {
		fmt.Fprintln(w, "dry run: nothing was deleted")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tBRANCH\tCOMMIT\tACTION\tRECORD")
	for _, d := range rep.Decisions {
		action := "keep (" + string(d.Keep) + ")"
		switch {
		case d.Delete != "" && rep.DryRun:
			action = "would delete (" + string(d.Delete) + ")"
		case d.Delete != "" && d.Deletion != "":
			action = "deleted (" + string(d.Delete) + ")"
		}
		if d.Error != "" {
			action += ": " + d.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Project, d.Branch, short(d.Commit), action, d.Deletion)
	}
	return tw.Flush()
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
