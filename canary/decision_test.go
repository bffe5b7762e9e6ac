package canary

import (
	"strings"
	"testing"
	"time"
)

// weeksOf builds n weeks of approach1 calls: week i has calls[i] calls of
// which failures[i] failed, and sandboxes costing costs[i].
func weekAggs(calls, failures []int64, costs []float64) []weekAgg {
	start := time.Date(2026, 9, 7, 0, 0, 0, 0, time.UTC)
	var out []weekAgg
	for i := range calls {
		c := NewCalls()
		for k := range calls[i] {
			e := Entry{Kind: KindCall, Duration: 200 * time.Millisecond, InFlight: 2}
			if int64(k) < failures[i] {
				e.Category = "unavailable"
			}
			c.Add(e)
		}
		out = append(out, weekAgg{start: start.Add(time.Duration(i) * week), calls: c, sandboxes: Sandboxes{N: 1, CostUSD: costs[i]}})
	}
	return out
}

func signal(d Decision, name string) Signal {
	for _, s := range d.Signals {
		if s.Name == name {
			return s
		}
	}
	return Signal{}
}

// Weekly cost growing steadily 7 % a week doubles within 13 weeks:
// migrate on the trajectory. The same total cost wobbling without a trend
// does not.
func TestDecisionCostTrajectory(t *testing.T) {
	n := []int64{1000, 1000, 1000, 1000, 1000, 1000}
	f := []int64{10, 10, 10, 10, 10, 10}
	growing := []float64{20, 21.4, 22.9, 24.5, 26.2, 28.1}
	d := decide(weekAggs(n, f, growing), DecisionConfig{})
	if s := signal(d, SignalCostGrowth); !s.Exceeded || d.Verdict != Migrate || !strings.Contains(strings.Join(d.Reasons, "\n"), "cost trajectory") {
		t.Errorf("steady growth: %s %+v %v", d.Verdict, s, d.Reasons)
	}
	wobbling := []float64{20, 28, 19, 27, 21, 29}
	d = decide(weekAggs(n, f, wobbling), DecisionConfig{})
	if s := signal(d, SignalCostGrowth); s.Exceeded || d.Verdict != Stay {
		t.Errorf("noise: %s %+v %v", d.Verdict, s, d.Reasons)
	}
}

// An error rate climbing a point a week over large weeks is a trend; the
// same rates shuffled are not.
func TestDecisionErrorTrend(t *testing.T) {
	n := []int64{5000, 5000, 5000, 5000}
	costs := []float64{1, 1, 1, 1}
	d := decide(weekAggs(n, []int64{50, 100, 150, 200}, costs), DecisionConfig{})
	if s := signal(d, SignalErrorTrend); !s.Exceeded || d.Verdict != Migrate {
		t.Errorf("climbing: %s %+v", d.Verdict, s)
	}
	d = decide(weekAggs(n, []int64{150, 50, 200, 100}, costs), DecisionConfig{})
	if s := signal(d, SignalErrorTrend); s.Exceeded {
		t.Errorf("shuffled: %+v", s)
	}
}
