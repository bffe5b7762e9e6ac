package main

// Agents' branches: the policy guard in front of the gateway's router, the
// store of pushed branches the fleet shares, and the scheduled cleanup
// (gateway/branches).

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/gateway/branches"
	"github.com/gitgate/gitgate/internal/pgdsn"
	"github.com/redis/go-redis/v9"
)

// guardBranches puts the branch policy in front of the router: the
// executor agents' calls go to. With branches.cleanup.interval set, the
// gateway also runs the cleanup on that schedule.
func (a *gatewayRoot) guardBranches(ctx context.Context) error {
	store, closeStore, err := openBranchStore(ctx, a.cfg, a.redis, followDSN("branch store", a.cfg.Postgres.DSNSecret, a.log))
	if err != nil {
		return err
	}
	a.closers = append(a.closers, closeStore)
	metrics := branches.NewMetrics(a.registry)
	git := branchGit(a.cfg)
	a.agentExec = branches.NewGuard(branches.GuardConfig{Next: a.router, Policy: a.cfg.BranchPolicy(), Git: git,
		Workspace: workspaceOf(a.bindings), Store: store, Metrics: metrics, Logger: a.log})
	if every := a.cfg.Branches.Cleanup.Interval; every > 0 {
		c := newCleaner(a.cfg, store, git, metrics, a.log, false)
		a.runners = append(a.runners, func(ctx context.Context) { runCleanups(ctx, c, every, a.log) })
	}
	return nil
}

// runCleanups runs c every interval until ctx ends.
func runCleanups(ctx context.Context, c *branches.Cleaner, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := c.Run(ctx)
		if err != nil {
			log.WarnContext(ctx, "branch cleanup failed", "err", err)
		}
		log.InfoContext(ctx, "branch cleanup ran", "dry_run", rep.DryRun, "branches", len(rep.Decisions), "deleted", deletedCount(rep))
	}
}

func deletedCount(rep branches.Report) int {
	n := 0
	for _, d := range rep.Decisions {
		if d.Deletion != "" {
			n++
		}
	}
	return n
}

// workspaceOf finds a workspace's repository URL and current branch in the
// binding store both backends share.
func workspaceOf(binds sandbox.BindingStore) func(context.Context, backends.Principal, string) (branches.Workspace, bool, error) {
	return func(ctx context.Context, p backends.Principal, workspace string) (branches.Workspace, bool, error) {
		if binds == nil {
			return branches.Workspace{}, false, nil
		}
		for _, agent := range []string{"", p.Agent} { // shared workspaces, then per-agent ones
			b, ok, err := binds.Get(ctx, sandbox.WorkspaceKey{Project: p.Project, Agent: agent, Name: workspace})
			if err != nil || ok {
				return branches.Workspace{URL: b.URL, Branch: b.Branch}, ok, err
			}
		}
		return branches.Workspace{}, false, nil
	}
}

// branchGit reaches the projects' remotes from the host with their tokens.
func branchGit(cfg *configs.Config) *branches.Git {
	return &branches.Git{Timeout: cfg.Git.RemoteTimeout, Projects: func(name string) (branches.Project, bool) {
		p, ok := cfg.Projects[name]
		return branches.Project{Remotes: gitcmd.RemotePolicy{Schemes: p.AllowedSchemes, Hosts: p.AllowedHosts},
			Username: p.TokenUsername, Token: p.CurrentToken()}, ok
	}}
}

// newCleaner builds the cleanup the configuration describes; a run is dry
// when dryRun is set or branches.cleanup.enabled is false.
func newCleaner(cfg *configs.Config, store branches.Store, git *branches.Git, m *branches.Metrics, log *slog.Logger, dryRun bool) *branches.Cleaner {
	c := branches.CleanerConfig{Store: store, Git: git, Policy: cfg.BranchPolicy(), StaleAfter: cfg.Branches.Cleanup.StaleAfter,
		DryRun: dryRun || !cfg.Branches.Cleanup.Enabled, Metrics: m, Logger: log}
	if cfg.Branches.Cleanup.SkipOpenPullRequests {
		c.PullRequests = &branches.GitHub{API: cfg.Branches.Cleanup.GitHubAPI, Token: func(project string) string { return cfg.Projects[project].CurrentToken() }}
	}
	return branches.NewCleaner(c)
}

// openBranchStore opens the store of pushed branches and deletions:
// PostgreSQL when postgres.dsn_env's variable is set, else Redis when
// redis.addr or redis.sentinel is set (on rdb, the process's client, when given), else a file
// under the state directory. pg applies to a PostgreSQL store's pool (a
// long-lived process passes followDSN; a one-shot command none, reading
// the DSN once).
func openBranchStore(ctx context.Context, cfg *configs.Config, rdb redis.UniversalClient, pg ...pgdsn.Option) (branches.Store, func(), error) {
	switch {
	case cfg.Postgres.DSN != "":
		s, err := branches.OpenPGStore(ctx, cfg.Postgres.DSN, pg...)
		if err != nil {
			return nil, nil, fmt.Errorf("branches store: %w", err)
		}
		return s, s.Close, nil
	case cfg.Redis.Configured():
		if rdb != nil {
			return branches.NewRedisStore(rdb, cfg.Redis.Prefix), func() {}, nil
		}
		own := newRedisClient(cfg.Redis)
		return branches.NewRedisStore(own, cfg.Redis.Prefix), func() { _ = own.Close() }, nil
	}
	s, err := branches.OpenFileStore(cfg.StatePath("branches"))
	if err != nil {
		return nil, nil, err
	}
	return s, func() {}, nil
}
