package gateway

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// switchDecider sends every call to the backend it holds, shadowing all of
// them.
type switchDecider struct{ to atomic.Pointer[backends.Name] }

func newSwitchDecider(to backends.Name) *switchDecider {
	d := &switchDecider{}
	d.set(to)
	return d
}

func (d *switchDecider) set(to backends.Name) { d.to.Store(&to) }

func (d *switchDecider) Decide(context.Context, string, string) flags.Decision {
	return flags.Decision{Backend: *d.to.Load(), ShadowRate: 1, Stage: 50}
}

// entries collects what a router hands to Observe.
type entries struct {
	mu  sync.Mutex
	all []canary.Entry
}

func (e *entries) add(x canary.Entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, x)
}

func (e *entries) of(kind canary.Kind) []canary.Entry {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []canary.Entry
	for _, x := range e.all {
		if x.Kind == kind {
			out = append(out, x)
		}
	}
	return out
}

type drillRouter struct {
	*Router
	a1, a2   *scripted
	to       *switchDecider
	seen     *entries
	mark     *DrillMark
	reg      *prometheus.Registry
	changes  chan BreakerChange
	fallback *prometheus.CounterVec
}

func newDrillRouter(t *testing.T) *drillRouter {
	t.Helper()
	d := &drillRouter{a1: &scripted{}, a2: &scripted{}, to: newSwitchDecider(backends.Approach2), seen: &entries{},
		reg: prometheus.NewRegistry(), changes: make(chan BreakerChange, 16)}
	d.mark = NewDrillMark(d.seen.add, slog.New(slog.DiscardHandler))
	r, err := NewRouter(RouterConfig{Backends: map[backends.Name]backends.Executor{backends.Approach1: d.a1, backends.Approach2: d.a2},
		Default: backends.Approach1, Flags: d.to, Breakers: BreakerConfig{ConsecutiveFailures: 3}, Registerer: d.reg,
		Observe: d.seen.add, Shadow: ShadowConfig{Observe: d.seen.add}, Drill: d.mark,
		BreakerChanged: func(c BreakerChange) { d.changes <- c },
		Logger:         slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	d.Router, d.fallback = r, r.fallback
	return d
}

// TestDrillMarkStampsCallsAndComparisons: while a drill marks the gateway,
// every call and comparison the router records carries its id; none does
// after the mark is cleared, and the drill's window is recorded then.
func TestDrillMarkStampsCallsAndComparisons(t *testing.T) {
	d := newDrillRouter(t)
	if _, err := d.mark.Set("drill-1", "oncall", "weekly drill", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Execute(t.Context(), req(backends.OpStatus)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the call's comparison is recorded", func() bool { return len(d.seen.of(canary.KindComparison)) == 1 })
	for _, e := range append(d.seen.of(canary.KindCall), d.seen.of(canary.KindComparison)...) {
		if e.Drill != "drill-1" {
			t.Fatalf("%s entry during the drill: Drill %q", e.Kind, e.Drill)
		}
	}
	if _, err := d.mark.Clear("drill-1", DrillPass, "all good"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Execute(t.Context(), req(backends.OpStatus)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the second comparison is recorded", func() bool { return len(d.seen.of(canary.KindComparison)) == 2 })
	calls, comps := d.seen.of(canary.KindCall), d.seen.of(canary.KindComparison)
	if calls[1].Drill != "" || comps[1].Drill != "" {
		t.Fatalf("after the drill: call %q, comparison %q", calls[1].Drill, comps[1].Drill)
	}
	windows := d.seen.of(canary.KindDrill)
	if len(windows) != 1 || windows[0].Drill != "drill-1" || windows[0].Detail != "pass: all good" || windows[0].Duration <= 0 {
		t.Fatalf("drill windows %+v", windows)
	}
}

// TestDrillMarkIsALock: another drill cannot take a held mark; the same
// drill refreshes it; clearing needs its id; a mark past its until is
// gone and recorded as expired.
func TestDrillMarkIsALock(t *testing.T) {
	seen := &entries{}
	m := NewDrillMark(seen.add, slog.New(slog.DiscardHandler))
	first, err := m.Set("a", "alice", "weekly", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var held *DrillHeldError
	if _, err := m.Set("b", "bob", "weekly", time.Hour); !errors.As(err, &held) || held.Holder.ID != "a" || held.Holder.By != "alice" {
		t.Fatalf("a second drill: %v", err)
	}
	again, err := m.Set("a", "alice", "weekly", 2*time.Hour)
	if err != nil || !again.Since.Equal(first.Since) || !again.Until.After(first.Until) {
		t.Fatalf("refresh: %+v %v (first %+v)", again, err, first)
	}
	if _, err := m.Clear("b", DrillPass, ""); !errors.As(err, &held) {
		t.Fatalf("clearing another drill's mark: %v", err)
	}
	if _, err := m.Clear("a", DrillAborted, "stop condition"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Clear("a", DrillPass, ""); !errors.Is(err, ErrNoDrill) {
		t.Fatalf("clearing twice: %v", err)
	}
	if _, err := m.Set("c", "carol", "weekly", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the short mark expires", func() bool { _, on := m.Current(); return !on })
	if _, err := m.Set("d", "dave", "weekly", time.Hour); err != nil {
		t.Fatalf("a new drill after the expiry: %v", err)
	}
	w := seen.of(canary.KindDrill)
	if len(w) != 2 || w[0].Detail != "aborted: stop condition" || w[1].Drill != "c" || !strings.HasPrefix(w[1].Detail, string(DrillExpired)+": ") {
		t.Fatalf("windows %+v", w)
	}
}

// TestTrafficCountsWhatReachesApproach2: routed calls the breaker lets
// through and shadows run on Approach 2 are counted as sent there; a
// backend failure counts as failed, an agent's mistake does not.
func TestTrafficCountsWhatReachesApproach2(t *testing.T) {
	d := newDrillRouter(t)
	if tr := d.Traffic(); tr != (Traffic{}) {
		t.Fatalf("traffic at start %+v", tr)
	}
	before := time.Now()
	if _, err := d.Execute(t.Context(), req(backends.OpStatus)); err != nil { // routed to 2, shadowed on 1
		t.Fatal(err)
	}
	d.to.set(backends.Approach1)
	if _, err := d.Execute(t.Context(), req(backends.OpStatus)); err != nil { // routed to 1, shadowed on 2
		t.Fatal(err)
	}
	testkit.Eventually(t, "both shadows are done", func() bool { return len(d.seen.of(canary.KindComparison)) == 2 })
	tr := d.Traffic()
	if tr.Calls != 2 || tr.Failed != 0 || tr.Approach2Sent != 2 || tr.Approach2Sent != d.a2.calls.Load() {
		t.Fatalf("traffic %+v, approach2 saw %d calls", tr, d.a2.calls.Load())
	}
	if tr.Approach2LastSent == nil || tr.Approach2LastSent.Before(before) || tr.Approach2LastSent.After(time.Now()) {
		t.Fatalf("last sent %v", tr.Approach2LastSent)
	}
	d.a1.fail(backends.Errorf(backends.NotFound, "no such workspace"))
	if _, err := d.Execute(t.Context(), req(backends.OpStatus)); backends.CategoryOf(err) != backends.NotFound {
		t.Fatalf("err %v", err)
	}
	d.a1.fail(backends.Errorf(backends.Internal, "broken"))
	if _, err := d.Execute(t.Context(), req(backends.OpStatus)); backends.CategoryOf(err) != backends.Internal {
		t.Fatalf("err %v", err)
	}
	if tr := d.Traffic(); tr.Calls != 4 || tr.Failed != 1 {
		t.Fatalf("traffic %+v", tr)
	}
}

// TestForcedBreakerFallsBackWithoutReachingApproach2: a breaker forced
// open sends its operation's calls to Approach 1 without an error and
// without a call to Approach 2, shows as open, and lets calls through
// again once released or once its ttl passed.
func TestForcedBreakerFallsBackWithoutReachingApproach2(t *testing.T) {
	d := newDrillRouter(t)
	gauge := func() float64 {
		return testutil.ToFloat64(d.breakers.state.WithLabelValues(string(backends.OpPush)))
	}
	if _, err := d.ForceBreaker("nonsense", "oncall", "drill", time.Hour); !errors.Is(err, ErrUnknownOp) {
		t.Fatalf("unknown op: %v", err)
	}
	if _, err := d.ForceBreaker(backends.OpPush, "oncall", "weekly drill", time.Hour); err != nil {
		t.Fatal(err)
	}
	if c := <-d.changes; c != (BreakerChange{Op: backends.OpPush, Forced: true, By: "oncall", Reason: "weekly drill"}) {
		t.Fatalf("change %+v", c)
	}
	for range 3 {
		res, err := d.Execute(t.Context(), req(backends.OpPush))
		if err != nil || res.GetServed().Backend != "approach1" || !res.GetServed().FellBack {
			t.Fatalf("forced open: %+v %v", res, err)
		}
	}
	if n := d.a2.calls.Load(); n != 0 {
		t.Fatalf("approach2 got %d calls through a forced breaker", n)
	}
	if n := testutil.ToFloat64(d.fallback.WithLabelValues(string(backends.OpPush), "forced_open")); n != 3 {
		t.Fatalf("forced_open fallbacks %v", n)
	}
	if g, st := gauge(), d.BreakerStates()[string(backends.OpPush)]; g != 2 || st != breakerForcedOpen {
		t.Fatalf("gauge %v, state %q", g, st)
	}
	if f := d.ForcedBreakers()[string(backends.OpPush)]; f.By != "oncall" || f.Reason != "weekly drill" || !f.Until.After(f.Since) {
		t.Fatalf("forced %+v", d.ForcedBreakers())
	}
	if _, err := d.Execute(t.Context(), req(backends.OpStatus)); err != nil || d.a2.calls.Load() != 1 {
		t.Fatalf("another op's breaker is not forced: %v, %d calls", err, d.a2.calls.Load())
	}
	if released, err := d.ReleaseBreaker(backends.OpPush, "oncall", "drill over"); !released || err != nil {
		t.Fatalf("release: %v %v", released, err)
	}
	if c := <-d.changes; c.Forced || c.By != "oncall" {
		t.Fatalf("change %+v", c)
	}
	if res, err := d.Execute(t.Context(), req(backends.OpPush)); err != nil || res.GetServed().Backend != "approach2" || d.a2.calls.Load() != 2 {
		t.Fatalf("released: %+v %v", res, err)
	}
	if g, n := gauge(), len(d.ForcedBreakers()); g != 0 || n != 0 {
		t.Fatalf("gauge %v, forced %d after release", g, n)
	}
	if released, err := d.ReleaseBreaker(backends.OpPush, "oncall", "again"); released || err != nil {
		t.Fatalf("second release: %v %v", released, err)
	}

	if _, err := d.ForceBreaker(backends.OpPush, "oncall", "short", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	<-d.changes
	testkit.Eventually(t, "the force's ttl passes", func() bool { return gauge() == 0 && len(d.ForcedBreakers()) == 0 })
	if c := <-d.changes; c.Forced || c.Op != backends.OpPush {
		t.Fatalf("expiry change %+v", c)
	}
	if res, err := d.Execute(t.Context(), req(backends.OpPush)); err != nil || res.GetServed().Backend != "approach2" {
		t.Fatalf("after the ttl: %+v %v", res, err)
	}
}
