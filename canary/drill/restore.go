package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
)

// restore puts back the overrides and the flag file of the snapshot and
// measures how soon each gateway applies its state before again.
func (r *run) restore(ctx context.Context) {
	r.res.Phases.Restore = time.Now().UTC()
	r.putBackOverrides(ctx, r.snap)
	t2 := time.Now()
	identical, problem := restoreSource(r.cfg, r.snap, r.edit("restore from the drill's snapshot"))
	if problem != "" {
		r.fail("%s", problem)
	}
	r.res.Restore.FlagSourceIdentical = identical
	r.say("restore: overrides and flag source put back")
	again := r.reputOverrides(ctx, r.snap)
	back := r.waitAll(ctx, r.cfg.MaxTimeToEffect, func(i int, st State) bool {
		want := r.before[i]
		want.DrillID = r.res.ID
		if len(sameRouting(want, st)) == 0 {
			return true
		}
		again(i, st)
		return false
	})
	for i, s := range back {
		if s != nil {
			r.res.Gateways[i].RestoreMS = msPtr(s.mid.Sub(t2))
		}
	}
}

// reputInterval is how long reputOverrides leaves a gateway to show the
// override it was sent before sending it again.
const reputInterval = time.Second

// reputOverrides returns a check, for waitAll's goroutine of gateway i,
// that sends the snapshot's override to the gateway again when its state
// shows another one reputInterval after the last put: a request the
// drill sent earlier and stopped waiting for (a timeout, a network that
// held it) may reach the gateway after the put back and undo it.
func (r *run) reputOverrides(ctx context.Context, snap *Snapshot) func(i int, st State) {
	last := make([]time.Time, len(r.gws)) // each gateway's goroutine uses its own
	for i := range last {
		last[i] = time.Now()
	}
	return func(i int, st State) {
		want := snap.Gateways[i].Over
		if overrideText(st.Kill.Override) == overrideText(want) || time.Since(last[i]) < reputInterval {
			return
		}
		last[i] = time.Now()
		r.note("gateway %s showed the kill-switch override %s after the restore had put back %s; put back again",
			snap.Gateways[i].Name, overrideText(st.Kill.Override), overrideText(want))
		if err := r.gws[i].PutOverride(ctx, want, r.cfg.By, r.cfg.Reason+" "+snap.ID+": restore"); err != nil {
			r.note("gateway %s: putting its kill-switch override back again: %v", snap.Gateways[i].Name, err)
		}
	}
}

// putBackOverrides sets every gateway's override back to the snapshot's.
func (r *run) putBackOverrides(ctx context.Context, snap *Snapshot) {
	r.each(func(i int, g Gateway) {
		by, reason := r.cfg.By, r.cfg.Reason+" "+snap.ID+": restore"
		if err := g.PutOverride(ctx, snap.Gateways[i].Over, by, reason); err != nil {
			r.fail("gateway %s: could not put its kill-switch override back (%s): %v", snap.Gateways[i].Name, overrideText(snap.Gateways[i].Over), err)
		}
	})
}

// restoreSource puts the flag file back to the snapshot's bytes when it
// differs from them in nothing but the kill switch; when someone changed
// it otherwise during the drill, it keeps their change and sets only the
// kill switch back. It reports whether the file is byte-identical to the
// snapshot, and a problem to report if not.
func restoreSource(cfg Config, snap *Snapshot, e flags.Edit) (identical bool, problem string) {
	cur, err := os.ReadFile(snap.FlagSource)
	if err == nil && bytes.Equal(cur, snap.Flags) {
		return true, ""
	}
	var was flags.File
	if err := json.Unmarshal(snap.Flags, &was); err != nil {
		return false, fmt.Sprintf("the snapshot's flags are unreadable: %v", err)
	}
	now, lerr := flags.Load(snap.FlagSource)
	if lerr == nil {
		now.SetKill(was.Kill())
		if len(flags.Diff(&was, now, cfg.Ops)) > 0 {
			// Someone else changed the flags during the drill.
			err := e.Apply(snap.FlagSource, func(f *flags.File) error { f.SetKill(was.Kill()); return nil })
			if err != nil {
				return false, fmt.Sprintf("the flag file was changed during the drill by someone else, and setting the kill switch back failed: %v", err)
			}
			return false, "the flag file was changed during the drill by someone else (see its change log): that change is kept, only the kill switch was set back, so the file is not the snapshot"
		}
	}
	if err := e.Restore(snap.FlagSource, snap.Flags); err != nil {
		return false, fmt.Sprintf("could not put the flag file back: %v", err)
	}
	cur, err = os.ReadFile(snap.FlagSource)
	return err == nil && bytes.Equal(cur, snap.Flags), ""
}

// breakerCheck forces the breaker of BreakerOp open on every gateway,
// checks that its calls fall back to Approach 1 without errors (the drill
// agent's probes, on a workspace the flags send to Approach 2, and the
// agents' failures), and releases it.
func (r *run) breakerCheck(ctx context.Context) {
	op := r.cfg.BreakerOp
	bc := &BreakerCheck{Op: op}
	r.res.Breaker = bc
	start := make([]State, len(r.gws))
	r.res.Phases.Breaker = time.Now().UTC()
	r.each(func(i int, g Gateway) {
		start[i], _ = g.State(ctx)
		if err := g.ForceBreaker(ctx, op, r.cfg.By, r.cfg.Reason+" "+r.res.ID, r.cfg.markTTL()); err != nil {
			r.fail("gateway %s: could not force the %s breaker open: %v", r.cfg.Targets[i].Name, op, err)
		}
	})
	forced := r.waitAll(ctx, r.cfg.MaxTimeToEffect, func(_ int, st State) bool { return slices.Contains(st.Forced, op) })
	for i, s := range forced {
		if s == nil && ctx.Err() == nil {
			r.fail("gateway %s does not show the %s breaker forced open", r.cfg.Targets[i].Name, op)
		}
	}
	deadline := time.Now().Add(r.cfg.Hold)
	if r.probe != nil && r.probe.op == op {
		bc.ProbeWorkspace = r.probe.workspace
		for ctx.Err() == nil && time.Now().Before(deadline) {
			r.each(func(i int, _ Gateway) {
				c := r.probe.call(ctx, i, op, map[string]any{"workspace": r.probe.workspace})
				if ctx.Err() != nil {
					return
				}
				r.mu.Lock()
				bc.count(c)
				r.mu.Unlock()
			})
		}
	} else {
		t := time.NewTimer(r.cfg.Hold)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	r.each(func(i int, g Gateway) {
		if end, err := g.State(ctx); err == nil {
			r.mu.Lock()
			bc.AgentFailures += end.Failed - start[i].Failed
			r.mu.Unlock()
		}
	})
	// Probes on a workspace the flags send to Approach 2 must all have
	// fallen back; elsewhere they prove nothing about the breaker.
	probed := bc.ProbeWorkspace != "" && r.probe.routed == backends.Approach2
	bc.Passed = bc.Failures == 0 && bc.AgentFailures == 0 && (!probed || bc.Probes > 0 && bc.FellBack == bc.Probes)
	if !bc.Passed && ctx.Err() == nil {
		r.fail("the forced %s breaker: %d probes, %d fell back to approach1, %d failed; %d agent calls failed", op, bc.Probes, bc.FellBack, bc.Failures, bc.AgentFailures)
	}
}

func (bc *BreakerCheck) count(c probeCall) {
	bc.Probes++
	switch {
	case c.err != "":
		bc.Failures++
	case c.fellBack && c.backend != "approach2":
		bc.FellBack++
	}
}

// releaseBreaker releases the breaker the drill forced (when it did) and
// checks that every gateway shows it released.
func (r *run) releaseBreaker(ctx context.Context) {
	if r.res.Breaker == nil {
		return
	}
	op := r.cfg.BreakerOp
	r.res.Phases.Released = time.Now().UTC()
	r.each(func(i int, g Gateway) {
		if err := g.ReleaseBreaker(ctx, op, r.cfg.By, r.cfg.Reason+" "+r.res.ID); err != nil {
			r.fail("gateway %s: could not release the %s breaker: %v", r.cfg.Targets[i].Name, op, err)
		}
	})
	released := r.waitAll(ctx, r.cfg.MaxTimeToEffect, func(_ int, st State) bool { return !slices.Contains(st.Forced, op) })
	r.res.Breaker.Released = !slices.Contains(released, nil)
}

// final compares every gateway and the flag file with the snapshot, and
// judges the agents' failed calls during the drill against their failure
// rate before it.
func (r *run) final(ctx context.Context) {
	cur, err := os.ReadFile(r.cfg.FlagPath)
	r.res.Restore.FlagSourceIdentical = err == nil && bytes.Equal(cur, r.snap.Flags)
	if !r.res.Restore.FlagSourceIdentical {
		r.res.Restore.Differences = append(r.res.Restore.Differences, "the flag file's bytes differ from the snapshot's")
	}
	r.res.Restore.GatewaysRestored = true
	diffs := make([][]string, len(r.gws)) // each gateway's own goroutine writes its own
	back := r.waitAll(ctx, r.cfg.MaxTimeToEffect, func(i int, st State) bool {
		want := r.before[i]
		want.DrillID = r.res.ID
		diffs[i] = sameRouting(want, st)
		return len(diffs[i]) == 0
	})
	for i, s := range back {
		if s != nil {
			continue
		}
		diff := diffs[i]
		if len(diff) == 0 {
			diff = []string{"unreachable"}
		}
		r.res.Restore.GatewaysRestored = false
		for _, d := range diff {
			r.res.Restore.Differences = append(r.res.Restore.Differences, r.cfg.Targets[i].Name+": "+d)
		}
	}
	if !r.res.Restore.FlagSourceIdentical || !r.res.Restore.GatewaysRestored {
		r.fail("the state after the drill is not the state before: %v", r.res.Restore.Differences)
	}
	for i := range r.res.Gateways {
		gr := &r.res.Gateways[i]
		if gr.RestoreMS == nil && r.res.Restore.GatewaysRestored {
			r.note("gateway %s returned to its state before only after the restore's time limit", gr.Name)
		}
		if p := unexplainedFailures(r.before[i], gr.Calls, gr.FailedCalls); p < failureAlpha {
			r.fail("gateway %s: %d of %d agent calls failed during the drill, more than its failure rate before the drill (%d of %d) explains (p = %.2g)",
				gr.Name, gr.FailedCalls, gr.Calls, r.before[i].Failed, r.before[i].Calls, p)
		}
	}
}

// failureAlpha is the false-alarm rate of the failed-calls check: a
// gateway whose agents fail as often during the drill as before it fails
// the drill in at most this share of drills (TestFailedCallsFalseAlarmRate
// measures it).
const failureAlpha = 0.001

// unexplainedFailures is the p-value of the agents' failures during the
// drill against those before it, both counted by the gateway since it
// started: Fisher's exact test, one-sided (the failures during the drill,
// given all the failures, are hypergeometric when the rate did not
// change). It is 1 when none failed during the drill; it never exceeds
// the false-alarm rate asked for more often than that rate.
func unexplainedFailures(before State, calls, failed int64) float64 {
	if failed <= 0 || calls <= 0 {
		return 1
	}
	n := before.Calls + calls   // all the calls
	k := before.Failed + failed // all the failures
	logC := func(a, b int64) float64 {
		x, _ := math.Lgamma(float64(a + 1))
		y, _ := math.Lgamma(float64(b + 1))
		z, _ := math.Lgamma(float64(a - b + 1))
		return x - y - z
	}
	total := logC(n, calls)
	p := 0.0
	for x := failed; x <= min(k, calls); x++ {
		p += math.Exp(logC(k, x) + logC(n-k, calls-x) - total)
	}
	return min(p, 1)
}
