package main

import (
	"cmp"
	"context"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/gateway/admin"
)

// canaryRecorder starts the ledger and the automatic rollback for the
// gateway's router (canary.Recorder), and the routing state's gauges.
func (a *gatewayRoot) canaryRecorder() (*canary.Recorder, error) {
	store, closeStore, err := a.ledgerStore()
	if err != nil {
		return nil, err
	}
	rec := canary.NewRecorder(canary.RecorderConfig{Store: store, Redact: a.redactor.String,
		Rollback:   canary.RollbackConfig{Judge: a.cfg.Canary.JudgeConfig(), Apply: a.rollbackApply()},
		Registerer: a.registry, Logger: a.log})
	a.recorder = rec
	// The routing state's gauges, computed on each scrape from what
	// /status shows, so that the two always agree.
	a.registry.MustRegister(gateway.NewStateCollector(a.flags.Status))
	a.runners = append(a.runners, rec.Run)
	var seeding sync.WaitGroup
	started := time.Now().UTC()
	a.starters = append(a.starters, func(ctx context.Context) { seeding.Go(func() { a.seedBaselines(ctx, rec, started) }) })
	if a.cfg.Canary.LedgerDSN != "" && a.cfg.Canary.LedgerRawRetention > 0 {
		a.starters = append(a.starters, func(ctx context.Context) { seeding.Go(func() { a.maintainLedger(ctx) }) })
	}
	// A rollback under way is finished (and recorded in the ledger) before
	// the ledger's last flush, which comes before the store closes.
	a.closers = append(a.closers, seeding.Wait, rec.Wait, closeStore)
	return rec, nil
}

// maintainLedger rolls the PostgreSQL ledger's complete hours up every
// hour and deletes the raw rows older than canary.ledger_raw_retention that
// are rolled up, until ctx ends. Replicas doing it at once serialise on
// the roll-up's advisory lock; a failure is logged and tried again the
// next hour.
func (a *gatewayRoot) maintainLedger(ctx context.Context) {
	for {
		if err := a.pruneLedger(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("ledger roll-up or pruning failed; trying again in an hour", "err", err)
		}
		if !pause.For(ctx, time.Hour) {
			return
		}
	}
}

func (a *gatewayRoot) pruneLedger(ctx context.Context) error {
	src, err := canary.OpenPGSource(ctx, a.cfg.Canary.LedgerDSN)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := src.RollUp(ctx); err != nil {
		return err
	}
	n, err := src.PruneRawBefore(ctx, time.Now().Add(-a.cfg.Canary.LedgerRawRetention))
	if err != nil {
		return err
	}
	if n > 0 {
		a.log.Info("ledger: raw rows rolled up and past their retention deleted", "rows", n, "retention", a.cfg.Canary.LedgerRawRetention)
	}
	return nil
}

// seedBaselines gives the automatic rollback Approach 1's calls of the
// four weeks before the gateway started, from the ledger (whole hours
// before the start, so that no call counts twice): a gateway restarted
// while an operation is at 100 % can then still judge it against Approach
// 1. It runs in the background; failing, it logs and the watcher starts
// without them.
func (a *gatewayRoot) seedBaselines(ctx context.Context, rec *canary.Recorder, started time.Time) {
	until := started.Truncate(time.Hour)
	since := until.Add(-28 * 24 * time.Hour)
	var src canary.Source
	if dsn := a.cfg.Canary.LedgerDSN; dsn != "" {
		pg, err := canary.OpenPGSource(ctx, dsn)
		if err != nil {
			a.log.Warn("automatic rollback: approach1's baselines not read from the ledger", "err", err)
			return
		}
		defer pg.Close()
		src = pg
	} else {
		path := cmp.Or(a.cfg.Canary.LedgerPath, canary.LedgerPath(a.cfg.Flags.Path))
		if _, err := os.Stat(path); err != nil {
			return // no ledger yet: nothing to seed
		}
		src = &canary.FileSource{Path: path, Logger: a.log}
	}
	a1, err := canary.Baselines(ctx, src, since, until)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("automatic rollback: approach1's baselines not read from the ledger", "err", err)
		}
		return
	}
	rec.SeedBaselines(a1, since)
	a.log.Info("automatic rollback: approach1's baselines read from the ledger", "operations", len(a1), "since", since, "until", until)
}

// ledgerStore is PostgreSQL when canary.ledger_dsn_env or _file is set (new
// connections follow a rotated file), the JSON lines file otherwise. An
// unreachable database does not stop the gateway.
func (a *gatewayRoot) ledgerStore() (store canary.Store, closeStore func(), err error) {
	if dsn := a.cfg.Canary.LedgerDSN; dsn != "" {
		pg, err := canary.NewPGStore(dsn, followDSN("canary ledger", a.cfg.Canary.LedgerDSNSecret, a.log))
		if err != nil {
			return nil, nil, err // a configuration mistake
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := pg.Init(ctx); err != nil {
			// Agents are served regardless; batches fail (and are counted in
			// gitgate_ledger_write_errors_total) until the database is back.
			a.log.Error("the canary ledger's PostgreSQL is not reachable; serving anyway, ledger entries are lost until it is", "err", err)
		}
		return pg, pg.Close, nil
	}
	return canary.NewFileStore(cmp.Or(a.cfg.Canary.LedgerPath, canary.LedgerPath(a.cfg.Flags.Path))), func() {}, nil
}

// rollbackApply is how automatic rollback sends an operation back: by
// editing the flag file, or, with a sync source the gateway cannot edit,
// on this gateway until an operator changes the route at the source.
func (a *gatewayRoot) rollbackApply() func(op, reason string) error {
	if a.cfg.Flags.SyncAddr != "" {
		return a.flags.RollBackLocally
	}
	return flags.AutomaticRollback(a.cfg.Flags.Path, backends.OpNames(), changeLogLockWait)
}

// adminHandler is the admin listener: metrics, health, and with flags the
// kill-switch override, the routing state at /status, the drill mark and
// forced breakers.
func (a *gatewayRoot) adminHandler() http.Handler {
	cfg := admin.Config{Gatherer: a.registry, Ready: a.ready, Kill: a.killSwitch(),
		KillTokenSHA256: a.cfg.Listen.AdminTokenSHA256, KillWithoutToken: a.cfg.Listen.AdminKillWithoutToken}
	if a.flags != nil {
		cfg.Status = a.status
	}
	if a.drill != nil {
		cfg.Drill = a.drill
	}
	if a.router != nil && a.flags != nil {
		cfg.Breakers = a.router
	}
	return admin.New(cfg)
}

// status is the routing state this gateway applies (GET /status).
func (a *gatewayRoot) status(context.Context) admin.Status {
	st := a.flags.Status()
	out := admin.Status{Status: &st, AutoRollbacks: map[string]canary.Applied{}}
	if a.recorder != nil {
		out.AutoRollbacks = a.recorder.Applied()
	}
	if a.router != nil {
		out.Breakers = a.router.BreakerStates()
		out.BreakersForced = a.router.ForcedBreakers()
		tr := a.router.Traffic()
		out.Traffic = &tr
	}
	return out
}
