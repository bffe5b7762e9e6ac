package main

// The monthly sandbox budgets: the store the fleet shares, the Budget and
// the provider decorator that enforces it (backends/budget).

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/gitgate/gitgate/backends/budget"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/internal/pgdsn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// budgeted returns p decorated with the monthly budgets when p bills its
// sandboxes (E2B); local sandboxes cost nothing and p is returned as it
// is. The decorator charges live sandboxes in a runner.
func (a *base) budgeted(ctx context.Context, p sandbox.Provider) (sandbox.Provider, error) {
	if _, bills := p.(sandbox.Coster); !bills {
		return p, nil
	}
	store, closeStore, err := openBudgetStore(ctx, a.cfg, a.redis, followDSN("budget store", a.cfg.Postgres.DSNSecret, a.log))
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, closeStore)
	b, err := newBudget(a.cfg, store, a.registry, a.log)
	if err != nil {
		return nil, err
	}
	bp, err := budget.NewProvider(p, b, budget.ProviderConfig{Interval: a.cfg.Budget.Interval, Lifetime: a.cfg.Sandbox.E2B.Lifetime})
	if err != nil {
		return nil, err
	}
	a.runners = append(a.runners, bp.Run)
	return bp.Sandbox(), nil
}

// newBudget builds the Budget the configuration describes on store.
func newBudget(cfg *configs.Config, store budget.Store, reg prometheus.Registerer, log *slog.Logger) (*budget.Budget, error) {
	limits := map[string]float64{}
	for name, p := range cfg.Budget.Projects {
		limits[name] = p.MonthlyUSD
	}
	return budget.New(budget.Config{MonthlyUSD: cfg.Budget.MonthlyUSD, Projects: limits,
		Known: slices.Sorted(maps.Keys(cfg.Projects)), WarnAt: cfg.Budget.WarnAt, Action: budget.Action(cfg.Budget.Action),
		ForecastAfter: cfg.BudgetForecastAfter(), Contact: cfg.Budget.Contact, Store: store, Registerer: reg, Logger: log})
}

// openBudgetStore opens the budget's store (configs.Config.BudgetStore):
// on rdb when it is given and the store is Redis (the process's client),
// else on a connection of its own that the returned func closes. pg
// applies to a PostgreSQL store's pool (a long-lived process passes
// followDSN; a one-shot command none, reading the DSN once).
func openBudgetStore(ctx context.Context, cfg *configs.Config, rdb redis.UniversalClient, pg ...pgdsn.Option) (budget.Store, func(), error) {
	switch cfg.BudgetStore() {
	case "redis":
		if rdb != nil {
			return budget.NewRedisStore(rdb, cfg.Redis.Prefix), func() {}, nil
		}
		own := newRedisClient(cfg.Redis)
		if err := checkRedis(ctx, own, cfg.Redis); err != nil {
			_ = own.Close()
			return nil, nil, fmt.Errorf("budget.store redis: %w", err)
		}
		return budget.NewRedisStore(own, cfg.Redis.Prefix), func() { _ = own.Close() }, nil
	case "postgres":
		s, err := budget.OpenPGStore(ctx, cfg.Postgres.DSN, pg...)
		if err != nil {
			return nil, nil, fmt.Errorf("budget.store postgres: %w", err)
		}
		return s, func() { _ = s.Close() }, nil
	}
	s, err := budget.OpenFileStore(cfg.StatePath("budget.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("budget.store file (state_dir): %w", err)
	}
	return s, func() {}, nil
}
