package main

import (
	"context"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// exactlyOnce puts engine behind the exactly-once layer (every write
// journaled under the workspace lock; a retry with the same idempotency
// key replays the first answer), with a recovery that settles, in the
// background once the process runs, what a crashed process left started
// (only writes to those workspaces wait for it). engine must lock through
// lock.Reentrant(locker). lockWait bounds how long reconciliation waits for
// a workspace lock a dead holder may still have.
func (a *base) exactlyOnce(engine *approach1.Executor, locker lock.Locker, j journal.Store, lockWait time.Duration) (*approach2.Once, error) {
	recovery := approach2.NewRecovery(approach2.ReconcileConfig{Journal: j, Locker: locker,
		RemoteReach: engine.RemoteReach, Engine: engine, LockWait: lockWait, Logger: a.log})
	once, err := approach2.NewOnce(approach2.OnceConfig{Engine: engine, Locker: locker, Journal: j,
		LockKey: a.lockKey, RemoteReach: engine.RemoteReach, Recovery: recovery, Logger: a.log})
	if err != nil {
		return nil, err
	}
	// Entries whose holder died later are skipped while its lease lives;
	// looking again every few lock lifetimes settles them soon after.
	every := 2 * max(lockWait, 5*time.Second)
	a.starters = append(a.starters, recovery.Start) // lists what is left before serving; settles it beside
	a.runners = append(a.runners, func(ctx context.Context) {
		for pause.For(ctx, every) {
			if n, err := recovery.Pass(ctx); err != nil {
				a.log.Warn("journal reconciliation failed", "err", err)
			} else if n > 0 {
				a.log.Info("journal reconciled interrupted operations", "settled", n)
			}
		}
	})
	return once, nil
}

// lockKey is the workspace lock key of a request, the same the gateway's
// engine uses, so that both backends serialise against each other.
func (a *base) lockKey(req backends.Request) string {
	s := req.GetScope()
	k := sandbox.WorkspaceKey{Project: s.Principal.Project, Name: s.Workspace}
	if a.cfg.Sandbox.Scope == "agent" {
		k.Agent = s.Principal.Agent
	}
	return approach1.LockKey(k)
}
