package main

// The git engine both processes build: Approach 1's executor on the
// configured sandbox provider, with the vault of shelved work.

import (
	"context"
	"fmt"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/admit"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/configs"
)

// engineDeps are the shared-state parts of an engine.
type engineDeps struct {
	dir     string        // local sandbox directory
	backend backends.Name // name in results and metrics
	locker  lock.Locker
	binds   sandbox.BindingStore
	creator func(sandbox.Provider) (sandbox.Creator, error) // nil: cold creation by the provider
	// onEnd, if set, hears of every sandbox the engine's manager ends
	// (sandbox.ManagerConfig.OnEnd).
	onEnd func(id string, life time.Duration, costUSD float64)
	// relay is where this process's git relay listens (relay section).
	relay configs.RelayEndpoint
}

// newEngine builds the git engine (the embedded executor) on the
// configured sandbox provider.
func (a *base) newEngine(d engineDeps) (*approach1.Executor, error) {
	provider, err := a.newProvider(d.dir)
	if err != nil {
		return nil, err
	}
	usage, _ := provider.(sandbox.UsageReader) // measured on the provider itself, whatever decorates it
	if provider, err = a.budgeted(context.Background(), provider); err != nil {
		return nil, err
	}
	var creator sandbox.Creator
	if d.creator != nil {
		if creator, err = d.creator(provider); err != nil {
			return nil, err
		}
	}
	a.bindings = d.binds
	vault, err := a.openVault()
	if err != nil {
		return nil, err
	}
	var engine *approach1.Executor
	// What a sandbox holds unsaved is shelved in the vault before it is
	// destroyed, and restored on the workspace's next use.
	preserve := func(ctx context.Context, info sandbox.Info, forced bool) error {
		return engine.Preserve(ctx, info, forced)
	}
	a.sandboxes, err = sandbox.NewManager(sandbox.ManagerConfig{Provider: provider, Creator: creator, Bindings: d.binds,
		IdleTTL: a.cfg.Sandbox.TTL, Registerer: a.registry, Logger: a.log, KeepOnClose: a.sandboxesShared(), Preserve: preserve,
		OnEnd: d.onEnd, Attribution: a.cfg.CostAttribution(), Usage: usage, UsageInterval: a.cfg.Metrics.UsageInterval})
	if err != nil {
		return nil, err
	}
	relayCfg, err := a.startRelay(d.relay)
	if err != nil {
		return nil, err
	}
	engine, err = approach1.New(approach1.Config{
		Sandboxes: a.sandboxes, Bindings: d.binds, Locker: d.locker, Projects: a.projects(),
		PerAgent: a.cfg.Sandbox.Scope == "agent", GitPath: a.cfg.Git.Path, Limits: a.limits(),
		Registerer: a.registry, Logger: a.log, Backend: d.backend.String(), Vault: vault,
		PooledSandboxes: creator != nil, // a warm pool's acquire is queueing, a cold creation is not
		Relay:           relayCfg,
	})
	return engine, err
}

// openVault opens the vault of shelved work and sweeps, daily, entries
// kept well past the retention (their bindings are gone).
func (a *base) openVault() (*sandbox.DirVault, error) {
	vault, err := sandbox.NewDirVault(a.cfg.VaultDir(), sandbox.DirVaultOptions{MaxBytes: a.cfg.Sandbox.Vault.MaxBytes})
	if err != nil {
		return nil, fmt.Errorf("sandbox.vault.dir: %w", err)
	}
	a.runners = append(a.runners, func(ctx context.Context) {
		for {
			if n, err := vault.Sweep(ctx, 2*a.cfg.Sandbox.Retention()); err != nil {
				a.log.Warn("vault sweep failed", "err", err)
			} else if n > 0 {
				a.log.Info("shelved work past its retention removed from the vault", "entries", n)
			}
			if !pause.For(ctx, 24*time.Hour) {
				return
			}
		}
	})
	return vault, nil
}

// newProvider returns the configured sandbox provider.
func (a *base) newProvider(dir string) (sandbox.Provider, error) {
	if a.cfg.Sandbox.Provider != "e2b" {
		p, err := local.OpenWith(dir, local.Options{Shared: a.cfg.Sandbox.Local.Shared})
		if err != nil {
			return nil, fmt.Errorf("sandbox directory: %w", err)
		}
		return p, nil
	}
	c := a.cfg.Sandbox.E2B
	api, err := e2b.NewAPI(e2b.APIConfig{BaseURL: c.APIEndpoint(), APIKey: c.APIKey, APIKeyFunc: c.CurrentAPIKey})
	if err != nil {
		return nil, err
	}
	return e2b.NewProvider(e2b.ProviderConfig{API: api, EnvdURL: c.EnvdEndpoint(), Template: c.Template, User: c.User,
		Root: c.Root, Lifetime: c.Lifetime, Keepalive: c.Keepalive, VCPUSecondUSD: c.VCPUSecondUSD, GiBSecondUSD: c.GiBSecondUSD,
		Registerer: a.registry})
}

// sandboxesShared reports whether the sandboxes outlive this process
// (another process, or this one restarted, adopts or reaps them). Local
// sandboxes always do: they cost nothing while idle, and they hold the
// agents' work. E2B sandboxes are billed while they run: without Redis
// nobody else adopts them, so a stopping gateway ends them (what they hold
// unsaved is shelved first).
func (a *base) sandboxesShared() bool {
	if a.cfg.Sandbox.Provider == "e2b" {
		return a.cfg.Redis.Configured()
	}
	return true
}

// admission is the process's admission limiter (the admission section),
// its metrics labelled with the backend its engine serves as.
func (a *base) admission(backend backends.Name) *admit.Limiter {
	c := a.cfg.Admission
	return admit.New(admit.Options{Slots: c.Slots, MaxQueue: c.MaxQueue, MaxWait: c.MaxWait, Registerer: a.registry, Name: backend.String()})
}

func (a *base) projects() approach1.Projects { return liveProjects(a.cfg.Projects) }

func (a *base) limits() approach1.Limits {
	return approach1.Limits{MaxOutputBytes: a.cfg.Limits.MaxOutputBytes, MaxFileBytes: a.cfg.Limits.MaxFileBytes,
		MaxListEntries: a.cfg.Limits.MaxListEntries, CommandTimeout: a.cfg.Git.CommandTimeout, RemoteTimeout: a.cfg.Git.RemoteTimeout,
		MaxRepoBytes: a.cfg.Limits.MaxRepoBytes, MaxSandboxBytes: a.cfg.Limits.MaxSandboxBytes, DiskPollInterval: a.cfg.Limits.DiskPollInterval}
}
