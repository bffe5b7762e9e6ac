package drill

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// Recover puts back the state that a drill which did not finish (the
// machine or the process died) saved before it changed anything: the flag
// file's bytes, each gateway's override, the breaker it forced and its
// mark. The snapshot names the gateways, so Recover works with the
// configuration's gateways changed since. It is a no-op error when no
// drill is unfinished.
func Recover(ctx context.Context, cfg Config) (Result, error) {
	cfg.defaults()
	if cfg.HistoryDir == "" || cfg.Connect == nil {
		return Result{}, fmt.Errorf("drill: recover needs the history directory and the gateways' admin clients")
	}
	unlock, err := lockHistory(cfg.HistoryDir)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	snap, err := loadSnapshot(cfg.HistoryDir)
	if err != nil {
		return Result{}, err
	}
	if snap == nil {
		return Result{}, fmt.Errorf("drill: nothing to recover: no unfinished drill in %s", cfg.HistoryDir)
	}
	start := time.Now().UTC()
	cfg.Targets = nil
	for _, g := range snap.Gateways {
		cfg.Targets = append(cfg.Targets, Target{Name: g.Name, Admin: g.Admin})
	}
	cfg.FlagPath, cfg.BreakerOp = snap.FlagSource, snap.BreakerOp
	r := &run{cfg: cfg, snap: snap, res: &Result{ID: NewID(start), Start: start, By: cfg.By,
		Reason: "recover drill " + snap.ID, FlagSource: snap.FlagSource}}
	for _, t := range cfg.Targets {
		r.gws = append(r.gws, cfg.Connect(t))
		r.res.Gateways = append(r.res.Gateways, GatewayResult{Name: t.Name, Admin: t.Admin})
	}
	for _, g := range snap.Gateways {
		r.before = append(r.before, g.State)
	}
	r.res.Verdict = r.recover(ctx)
	r.res.End = time.Now().UTC()
	if _, _, err := (History{Dir: cfg.HistoryDir}).Save(*r.res); err != nil {
		return *r.res, fmt.Errorf("drill: keep the result: %w", err)
	}
	return *r.res, nil
}

func (r *run) recover(ctx context.Context) Verdict {
	snap := r.snap
	r.say("recover: drill %s of %s by %s", snap.ID, snap.Start.Format(time.RFC3339), snap.By)
	r.putBackOverrides(ctx, snap)
	identical, problem := restoreSource(r.cfg, snap, r.edit("restore from drill "+snap.ID+"'s snapshot"))
	if problem != "" {
		r.fail("%s", problem)
	}
	r.res.Restore.FlagSourceIdentical = identical
	op := snap.BreakerOp
	r.each(func(i int, g Gateway) {
		name := snap.Gateways[i].Name
		if op != "" && !slices.Contains(snap.Gateways[i].State.Forced, op) {
			if err := g.ReleaseBreaker(ctx, op, r.cfg.By, "recover drill "+snap.ID); err != nil {
				r.note("gateway %s: releasing the %s breaker: %v", name, op, err)
			}
		}
		if err := g.Unmark(ctx, snap.ID, Aborted, "did not finish; recovered by "+r.res.ID); err != nil {
			r.note("gateway %s: clearing drill %s's mark: %v (it expires by itself)", name, snap.ID, err)
		}
	})
	r.res.Restore.GatewaysRestored = true
	again := r.reputOverrides(ctx, snap)
	back := r.waitAll(ctx, r.cfg.MaxTimeToEffect, func(i int, st State) bool {
		if len(sameRouting(r.before[i], st)) == 0 {
			return true
		}
		again(i, st)
		return false
	})
	for i, s := range back {
		if s != nil {
			continue
		}
		r.res.Restore.GatewaysRestored = false
		st, err := r.gws[i].State(ctx)
		diff := sameRouting(r.before[i], st)
		if err != nil {
			diff = []string{"unreachable: " + err.Error()}
		}
		for _, d := range diff {
			r.res.Restore.Differences = append(r.res.Restore.Differences, snap.Gateways[i].Name+": "+d)
		}
	}
	if !identical {
		r.res.Restore.Differences = append(r.res.Restore.Differences, "the flag file's bytes differ from the snapshot's")
	}
	if !identical || !r.res.Restore.GatewaysRestored {
		r.fail("the state is not the snapshot's: %v; the snapshot is kept, run --recover again", r.res.Restore.Differences)
		return Fail
	}
	if err := removeSnapshot(r.cfg.HistoryDir); err != nil {
		r.fail("the snapshot %s could not be removed: %v", filepath.Join(r.cfg.HistoryDir, snapshotFile), err)
		return Fail
	}
	return Recovered
}
