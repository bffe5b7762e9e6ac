package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/gitgate/gitgate/flags"
)

// preflight checks that the drill may start and takes the snapshot (in
// memory; it is saved once the marks are taken). It reports false, with
// the reasons in the result, when the drill must not start.
func (r *run) preflight(ctx context.Context) bool {
	if old, err := loadSnapshot(r.cfg.HistoryDir); err != nil || old != nil {
		if err != nil {
			r.fail("%v", err)
		} else {
			r.fail("drill %s (by %s) did not finish: run `gitgate drill --recover` to put back the state it saved, %s",
				old.ID, old.By, filepath.Join(r.cfg.HistoryDir, snapshotFile))
		}
		return false
	}
	data, err := os.ReadFile(r.cfg.FlagPath)
	if err != nil {
		r.fail("the flag source %s: %v", r.cfg.FlagPath, err)
		return false
	}
	f, err := flags.Load(r.cfg.FlagPath)
	if err == nil {
		err = f.Validate(r.cfg.Ops)
	}
	if err != nil {
		r.fail("the flag source %s is not usable: %v", r.cfg.FlagPath, err)
		return false
	}
	if f.Kill() {
		r.fail("the kill switch is already on in %s: an incident may be under way; drill another time", r.cfg.FlagPath)
		return false
	}
	rev := flags.Revision(data)
	r.res.Revision = rev
	r.snap = &Snapshot{ID: r.res.ID, Start: r.res.Start, By: r.cfg.By, Reason: r.cfg.Reason, FlagSource: r.cfg.FlagPath,
		Flags: data, BreakerOp: r.cfg.BreakerOp}
	r.before = make([]State, len(r.gws))
	var mu sync.Mutex
	ok := true
	r.each(func(i int, g Gateway) {
		t := r.cfg.Targets[i]
		st, err := g.State(ctx)
		ready := g.Ready(ctx)
		mu.Lock()
		defer mu.Unlock()
		gr := &r.res.Gateways[i]
		if err != nil {
			gr.Error = "unreachable: " + err.Error()
			r.fail("gateway %s (%s) is unreachable: %v", t.Name, t.Admin, err)
			ok = false
			return
		}
		if ready != nil {
			gr.Error = "not ready: " + ready.Error()
			r.fail("gateway %s (%s) is not ready: %v", t.Name, t.Admin, ready)
			ok = false
		}
		r.before[i] = st
		gr.Following = st.Revision == rev
		switch {
		case st.FailSafe != "":
			r.fail("gateway %s cannot use its flags (%s): every call already goes to approach1", t.Name, st.FailSafe)
			ok = false
		case st.Kill.Effective:
			r.fail("gateway %s already applies the kill switch (%s): an incident may be under way; drill another time", t.Name, st.Kill.Source)
			ok = false
		case st.DrillID != "":
			r.fail("gateway %s is marked by drill %s: another drill is running", t.Name, st.DrillID)
			ok = false
		}
		if !gr.Following {
			r.note("gateway %s applies flags revision %.12s, the flag source has %.12s: it does not follow the source (checked in the flip)", t.Name, st.Revision, rev)
		}
		for _, op := range st.Forced {
			if op == r.cfg.BreakerOp {
				r.fail("gateway %s has the %s breaker forced open already: release it or drill another operation (drill.breaker_op)", t.Name, op)
				ok = false
			}
		}
		r.snap.Gateways = append(r.snap.Gateways, GatewaySnapshot{Name: t.Name, Admin: t.Admin, State: st, Over: st.Kill.Override})
	})
	if !ok {
		return false
	}
	// Keep the snapshot's gateways in the configuration's order.
	byName := map[string]GatewaySnapshot{}
	for _, g := range r.snap.Gateways {
		byName[g.Name] = g
	}
	r.snap.Gateways = r.snap.Gateways[:0]
	for _, t := range r.cfg.Targets {
		r.snap.Gateways = append(r.snap.Gateways, byName[t.Name])
	}
	var calls, failed int64
	for _, st := range r.before {
		calls, failed = calls+st.Calls, failed+st.Failed
	}
	if calls >= r.cfg.MinCalls && float64(failed) > r.cfg.MaxErrorRate*float64(calls) {
		r.fail("agents' calls already fail at %.1f%% (%d of %d since the gateways started), above the stop condition's %.1f%%: fix that first",
			100*float64(failed)/float64(calls), failed, calls, 100*r.cfg.MaxErrorRate)
		return false
	}
	if r.cfg.Probe == nil {
		r.note("no drill agent (drill.probe.agent): no probe calls through MCP; the gateways' own state and counters are the evidence")
	} else {
		p, err := r.setUpProbe(ctx, data)
		if err != nil {
			r.fail("the drill agent's probe: %v", err)
			return false
		}
		r.probe = p
	}
	r.say("preflight: %d gateways reachable, flags revision %.12s", len(r.gws), rev)
	return true
}

// takeMarks takes the drill mark on every gateway; if one is held by
// another drill, it gives back those it took and refuses.
func (r *run) takeMarks(ctx context.Context) bool {
	var mu sync.Mutex
	ok := true
	r.each(func(i int, g Gateway) {
		err := g.Mark(ctx, r.res.ID, r.cfg.By, r.cfg.Reason, r.cfg.markTTL())
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			ok = false
			var busy *Busy
			if errors.As(err, &busy) {
				r.fail("gateway %s: %v", r.cfg.Targets[i].Name, busy)
			} else {
				r.fail("gateway %s: could not take the drill mark: %v", r.cfg.Targets[i].Name, err)
			}
			return
		}
		r.snap.Gateways[i].Marked = true
	})
	if !ok {
		r.releaseMarks(context.WithoutCancel(ctx), Refused, "another drill or an unreachable gateway")
	}
	return ok
}

// releaseMarks clears the marks the drill took, with its verdict.
func (r *run) releaseMarks(ctx context.Context, v Verdict, detail string) {
	r.each(func(i int, g Gateway) {
		if !r.snap.Gateways[i].Marked {
			return
		}
		if err := g.Unmark(ctx, r.res.ID, v, detail); err != nil {
			r.note("gateway %s: the drill mark could not be cleared (it expires by itself): %v", r.cfg.Targets[i].Name, err)
			return
		}
		r.snap.Gateways[i].Marked = false
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}
