package drill

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/gitgate/gitgate/flags"
)

// sample is a gateway's state as one poll saw it: mid is the drill's
// clock halfway between asking and hearing, skew the gateway's clock
// minus the drill's at that moment.
type sample struct {
	st   State
	mid  time.Time
	got  time.Time // when the answer arrived: the state held by then
	skew time.Duration
}

// poll asks g for its state.
func poll(ctx context.Context, g Gateway) (sample, error) {
	sent := time.Now()
	st, err := g.State(ctx)
	got := time.Now()
	mid := sent.Add(got.Sub(sent) / 2)
	return sample{st: st, mid: mid, got: got, skew: st.At.Sub(mid)}, err
}

// waitAll polls every gateway until cond holds for it or the limit passes,
// and returns the sample that first showed it (nil where it never did).
func (r *run) waitAll(ctx context.Context, limit time.Duration, cond func(i int, st State) bool) []*sample {
	out := make([]*sample, len(r.gws))
	deadline := time.Now().Add(limit)
	r.each(func(i int, g Gateway) {
		for {
			s, err := poll(ctx, g)
			if err == nil && cond(i, s.st) {
				out[i] = &s
				return
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				return
			}
			t := time.NewTimer(r.cfg.Poll)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	})
	return out
}

// watch starts the stop conditions: the returned context is cancelled,
// with the reason as its cause, when a gateway stops answering for
// UnreachableAfter or the agents' calls fail above MaxErrorRate (counted
// from now, once MinCalls were made). stop ends the watch.
func (r *run) watch(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	base := make([]State, len(r.gws))
	copy(base, r.before)
	r.each(func(i int, g Gateway) {
		if st, err := g.State(ctx); err == nil {
			base[i] = st
		}
	})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		lastOK := make([]time.Time, len(r.gws))
		for i := range lastOK {
			lastOK[i] = time.Now()
		}
		latest := make([]State, len(r.gws))
		copy(latest, base)
		tick := time.NewTicker(max(r.cfg.Poll*5, 100*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var mu sync.Mutex
			r.each(func(i int, g Gateway) {
				st, err := g.State(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					lastOK[i], latest[i] = time.Now(), st
				} else if ctx.Err() == nil && time.Since(lastOK[i]) > r.cfg.UnreachableAfter {
					cancel(fmt.Errorf("gateway %s stopped answering for %s: %w", r.cfg.Targets[i].Name, r.cfg.UnreachableAfter, err))
				}
			})
			var calls, failed int64
			for i := range latest {
				calls += latest[i].Calls - base[i].Calls
				failed += latest[i].Failed - base[i].Failed
			}
			if calls >= r.cfg.MinCalls && float64(failed) > r.cfg.MaxErrorRate*float64(calls) {
				cancel(fmt.Errorf("agents' calls failed at %.1f%% during the drill (%d of %d), above the limit of %.1f%%",
					100*float64(failed)/float64(calls), failed, calls, 100*r.cfg.MaxErrorRate))
			}
		}
	})
	return ctx, func() { close(done); wg.Wait(); cancel(nil) }
}

// flipAndHold engages the kill switch through the flag source, then the
// override on every gateway, measuring each; holds it while probing and
// counting; and reports whether a stop condition ended it early.
func (r *run) flipAndHold(ctx context.Context) (aborted bool) {
	start := make([]State, len(r.gws))
	r.each(func(i int, g Gateway) {
		if s, err := poll(ctx, g); err == nil {
			start[i] = s.st
		} else {
			start[i] = r.before[i]
		}
	})
	probes := r.startProbes(ctx)
	t0 := time.Now()
	r.res.Phases.Flip = t0.UTC()
	if err := r.edit("kill switch on").Apply(r.cfg.FlagPath, func(f *flags.File) error { f.SetKill(true); return nil }); err != nil {
		r.fail("could not set the kill switch in the flag source: %v", err)
		if _, statErr := os.Stat(r.cfg.FlagPath); statErr != nil {
			probes.stop()
			return false
		}
	}
	r.flipped, _ = os.ReadFile(r.cfg.FlagPath)
	if f, err := flags.Load(r.cfg.FlagPath); err == nil && f.Kill() {
		r.say("flip: kill switch set in %s", r.cfg.FlagPath)
	} else {
		r.say("flip: the kill switch could not be set in %s; the overrides follow", r.cfg.FlagPath)
	}
	bySource := r.waitAll(ctx, r.cfg.MaxTimeToEffect, func(_ int, st State) bool { return st.Killed() })
	if ctx.Err() != nil {
		probes.stop()
		return true
	}
	for i, s := range bySource {
		gr := &r.res.Gateways[i]
		if s == nil {
			st, _ := r.gws[i].State(ctx)
			r.fail("gateway %s did not stop routing to approach2 within %s of the flag source's change (it applies flags revision %.12s; the source has %.12s after the flip)",
				gr.Name, r.cfg.MaxTimeToEffect, st.Revision, flags.Revision(r.flipped))
			continue
		}
		gr.FlipSourceMS = msPtr(s.mid.Sub(t0))
	}
	t1 := time.Now()
	r.res.Phases.Override = t1.UTC()
	// A stop condition does not cut the override requests short: a
	// gateway can apply a request whose client stopped waiting, after the
	// restore put its override back, and keep the kill switch on. Waiting
	// for every answer (within a bound) puts the restore after each.
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.MaxTimeToEffect+r.cfg.UnreachableAfter)
	r.each(func(i int, g Gateway) {
		if err := g.Kill(kctx, r.cfg.By, r.cfg.Reason+" "+r.res.ID); err != nil {
			r.res.Gateways[i].Error = "override: " + err.Error()
		}
	})
	cancel()
	byOverride := r.waitAll(ctx, r.cfg.MaxTimeToEffect, func(_ int, st State) bool { return st.Killed() && st.Kill.Override != nil })
	if ctx.Err() != nil {
		probes.stop()
		return true
	}
	effect := make([]*sample, len(r.gws))
	for i, s := range byOverride {
		gr := &r.res.Gateways[i]
		if s == nil {
			r.fail("gateway %s did not apply the kill-switch override within %s (%s)", gr.Name, r.cfg.MaxTimeToEffect, gr.Error)
			continue
		}
		gr.FlipOverrideMS = msPtr(s.mid.Sub(t1))
		effect[i] = s
		if bySource[i] != nil {
			effect[i] = bySource[i]
		}
	}
	r.say("flip: every gateway answered; holding %s", r.cfg.Hold)
	svcBefore, _ := r.serviceCounts(ctx)
	hold := time.NewTimer(r.cfg.Hold)
	select {
	case <-ctx.Done():
	case <-hold.C:
	}
	hold.Stop()
	calls := probes.stop()
	r.countServices(ctx, svcBefore)
	r.count(ctx, t0, start, effect, calls)
	return ctx.Err() != nil
}

// count fills in, per gateway, the calls made, failed and sent to
// Approach 2 since the flip, and refines the time to effect with the
// gateway's own record of its last send to Approach 2.
func (r *run) count(ctx context.Context, t0 time.Time, start []State, effect []*sample, probes [][]probeCall) {
	r.each(func(i int, g Gateway) {
		gr := &r.res.Gateways[i]
		end, err := poll(ctx, g)
		if err != nil {
			gr.Error = "unreachable at the end of the hold: " + err.Error()
			return
		}
		gr.Calls = end.st.Calls - start[i].Calls
		gr.FailedCalls = end.st.Failed - start[i].Failed
		e := effect[i]
		if e == nil {
			return
		}
		gr.KilledAt = e.got.UTC()
		gr.ResidualCalls = end.st.SentApproach2 - e.st.SentApproach2
		// The gateway's last send to Approach 2, on the drill's clock.
		if last := end.st.LastSentApproach2.Add(-e.skew); last.After(t0) && gr.FlipSourceMS != nil {
			if d := ms(last.Sub(t0)); d > *gr.FlipSourceMS {
				*gr.FlipSourceMS = d
			}
		}
		if gr.FlipSourceMS != nil && *gr.FlipSourceMS > ms(r.cfg.MaxTimeToEffect) {
			r.fail("gateway %s sent its last call to approach2 %.0f ms after the flip, above the limit of %s", gr.Name, *gr.FlipSourceMS, r.cfg.MaxTimeToEffect)
		}
		if gr.ResidualCalls > 0 {
			r.fail("gateway %s sent %d calls to approach2 after it applied the kill switch", gr.Name, gr.ResidualCalls)
		}
		if probes != nil {
			r.judgeProbes(gr, t0, e.got, probes[i])
		}
	})
}

// countServices records how many operations each Approach 2 service
// received during the hold (every gateway had applied the kill switch).
func (r *run) countServices(ctx context.Context, before []int64) {
	after, errs := r.serviceCounts(ctx)
	for i, u := range r.cfg.Services {
		sr := ServiceResult{Metrics: u}
		switch {
		case errs[i] != nil || before[i] < 0:
			sr.Error = errText(errs[i])
			if sr.Error == "" {
				sr.Error = "unreadable before the hold"
			}
			r.note("the Approach 2 service at %s could not be read: %s", u, sr.Error)
		default:
			sr.Received = after[i] - before[i]
			if sr.Received > 0 {
				r.fail("the Approach 2 service at %s served %d operations while every gateway applied the kill switch", u, sr.Received)
			}
		}
		r.res.Services = append(r.res.Services, sr)
	}
}
