package gateway

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// TestAgentsActive: gitgate_agents_active counts, per project, the agents
// with a call in the last five minutes; one idle longer drops out.
func TestAgentsActive(t *testing.T) {
	clk := &testClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, backends.Approach1)
	m.agents.now = clk.Now
	call := func(project, agent string) {
		req := &backends.StatusRequest{Scope: backends.Scope{Principal: backends.Principal{Project: project, Agent: agent}, Workspace: "w"}}
		m.begin(req)(backends.Approach1, nil, time.Millisecond)
	}
	call("p", "a")
	call("p", "b")
	call("p", "a")
	clk.add(3 * time.Minute)
	call("q", "c")
	want := func(project string, n float64) {
		t.Helper()
		if got, _ := testkit.SeriesValue(t, reg, "gitgate_agents_active", map[string]string{"project": project}); got != n {
			t.Errorf("agents_active{project=%q} = %v, want %v", project, got, n)
		}
	}
	want("p", 2)
	want("q", 1)
	clk.add(3 * time.Minute) // p's agents idle for 6 minutes, q's for 3
	want("p", 0)
	want("q", 1)
}

// stageStatus is a flags status with one operation at a 50 % stage.
func stageStatus() flags.Status {
	return flags.Status{Ops: []flags.OpStatus{{Op: "push", Route: flags.Share{Configured: 0.5, Effective: 0.5}}}}
}

// TestRoutingGauges: the canary stage of each operation in percent, the
// drill mark and forced breakers are gauges that follow the router's
// state.
func TestRoutingGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewStateCollector(stageStatus))
	if got, _ := testkit.SeriesValue(t, reg, "gitgate_canary_stage", map[string]string{"op": "push"}); got != 50 {
		t.Errorf("canary_stage{op=push} = %v, want 50", got)
	}

	d := newDrillRouter(t)
	forced := func() float64 {
		v, _ := testkit.SeriesValue(t, d.reg, "gitgate_breaker_forced_open", map[string]string{"op": string(backends.OpPush)})
		return v
	}
	drill := func() float64 {
		v, _ := testkit.SeriesValue(t, d.reg, "gitgate_drill_active", map[string]string{})
		return v
	}
	if forced() != 0 || drill() != 0 {
		t.Fatalf("before anything: forced_open %v, drill_active %v", forced(), drill())
	}
	if _, err := d.ForceBreaker(backends.OpPush, "oncall", "drill", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := d.mark.Set("drill-1", "oncall", "weekly drill", time.Hour); err != nil {
		t.Fatal(err)
	}
	if forced() != 1 || drill() != 1 {
		t.Errorf("during a drill with push forced open: forced_open %v, drill_active %v; want 1 and 1", forced(), drill())
	}
	if _, err := d.ReleaseBreaker(backends.OpPush, "oncall", "done"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.mark.Clear("drill-1", DrillPass, "ok"); err != nil {
		t.Fatal(err)
	}
	if forced() != 0 || drill() != 0 {
		t.Errorf("after the drill: forced_open %v, drill_active %v; want 0", forced(), drill())
	}
}

// TestFallbackCountsAsRecovery: a read routed to Approach 2 that failed
// there and was served by Approach 1 is a recovery of kind fallback.
func TestFallbackCountsAsRecovery(t *testing.T) {
	d := newDrillRouter(t)
	d.a2.fail(backends.Errorf(backends.Unavailable, "approach 2 down"))
	if _, err := d.Execute(context.Background(), req(backends.OpStatus)); err != nil {
		t.Fatal(err)
	}
	if got, _ := testkit.SeriesValue(t, d.reg, "gitgate_recovery_total", map[string]string{"kind": "fallback"}); got != 1 {
		t.Errorf("recovery_total{kind=fallback} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(d.fallback.WithLabelValues(string(backends.OpStatus), "failed")); got != 1 {
		t.Errorf("fallbacks_total = %v, want 1", got)
	}
}
