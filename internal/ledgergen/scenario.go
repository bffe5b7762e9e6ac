package ledgergen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// Scenario names a ready-made simulation (gitgate dev ledger --scenario).
type Scenario string

// The scenarios.
const (
	// Healthy: a canary of every operation (0 %, then 10 % from a quarter
	// of the way, 50 % from half way), Approach 2 drawn like Approach 1.
	Healthy Scenario = "healthy"
	// PushFailures: the canary, with Approach 2 failing 20 % of pushes.
	PushFailures Scenario = "push-failures"
	// CloneSlow: the canary, with Approach 2 2 s slower on clone and 10 ms
	// slower on status (a gRPC hop).
	CloneSlow Scenario = "clone-slow"
	// CommitMismatch: the canary, with 2 % of commit comparisons finding
	// the backends disagree.
	CommitMismatch Scenario = "commit-mismatch"
	// Cost: the canary, with Approach 2 costing three times as much per
	// call and per sandbox.
	Cost Scenario = "cost"
	// Thin: every operation at 10 % for the last three hours only.
	Thin Scenario = "thin"
	// A1Slow: no canary; Approach 1's calls take longer in the last three
	// weeks, its P95 over every call 2.5 s.
	A1Slow Scenario = "a1-slow"
	// A1Busy: no canary; in the last two weeks a fan-out of 14 parallel
	// agents every day at 14:00 UTC.
	A1Busy Scenario = "a1-busy"
)

// Scenarios lists them.
func Scenarios() []Scenario {
	return []Scenario{Healthy, PushFailures, CloneSlow, CommitMismatch, Cost, Thin, A1Slow, A1Busy}
}

// Known reports whether s is one of Scenarios.
func (s Scenario) Known() bool { return slices.Contains(Scenarios(), s) }

// A1SlowP95 and BurstAgents are what the a1-slow and a1-busy scenarios
// give Approach 1.
const (
	A1SlowP95   = 2500 * time.Millisecond
	BurstAgents = 14
)

// Config is the scenario's simulation of agents over weeks from start.
func (s Scenario) Config(start time.Time, weeks, agents int, seed uint64) (Config, error) {
	if weeks <= 0 {
		return Config{}, fmt.Errorf("scenario %s: weeks must be at least 1", s)
	}
	cfg := Config{Seed: seed, Start: start, Duration: time.Duration(weeks) * Week, Agents: agents}
	end := cfg.Start.Add(cfg.Duration)
	canary := func() {
		cfg.Stages = CanaryStages(start, cfg.Duration)
		cfg.ShadowRate, cfg.StaleRate, cfg.ShadowErrorRate = 0.1, 0.005, 0.002
	}
	switch s {
	case Healthy:
		canary()
	case PushFailures:
		canary()
		cfg.Mods = []Mod{{Backend: backends.Approach2, Op: backends.OpPush, Modifier: Modifier{FailRate: 0.2}}}
	case CloneSlow:
		canary()
		cfg.Mods = []Mod{
			{Backend: backends.Approach2, Op: backends.OpClone, Modifier: Modifier{Shift: 2 * time.Second}},
			{Backend: backends.Approach2, Op: backends.OpStatus, Modifier: Modifier{Shift: 10 * time.Millisecond}},
		}
	case CommitMismatch:
		canary()
		cfg.Mods = []Mod{{Backend: backends.Approach2, Op: backends.OpCommit, Modifier: Modifier{MismatchRate: 0.02}}}
	case Cost:
		canary()
		cfg.Mods = []Mod{{Backend: backends.Approach2, Modifier: Modifier{CostFactor: 3}}}
	case Thin:
		cfg.Stages = map[backends.Op][]StageAt{}
		for _, op := range backends.OpList() {
			cfg.Stages[op] = []StageAt{{At: end.Add(-3 * time.Hour), Stage: 10}}
		}
		cfg.ShadowRate = 0.1
	case A1Slow:
		if weeks < 3 {
			return Config{}, fmt.Errorf("scenario %s: needs at least 3 weeks", s)
		}
		f := float64(A1SlowP95) / float64(cfg.MixQuantile(0.95))
		cfg.Mods = []Mod{{Backend: backends.Approach1, From: end.Add(-3 * Week), Modifier: Modifier{Factor: f}}}
	case A1Busy:
		if weeks < 2 {
			return Config{}, fmt.Errorf("scenario %s: needs at least 2 weeks", s)
		}
		from := end.Add(-2 * Week)
		offset := (14*time.Hour - from.Sub(from.Truncate(24*time.Hour)) + 24*time.Hour) % (24 * time.Hour)
		cfg.Bursts = []Burst{{From: from, To: end, Offset: offset, Agents: BurstAgents}}
	default:
		return Config{}, fmt.Errorf("unknown scenario %q (known: %v)", s, Scenarios())
	}
	return cfg, nil
}

// CanaryStages moves every operation to 10 % a quarter of the way
// through and to 50 % half way (canary.Stages).
func CanaryStages(start time.Time, d time.Duration) map[backends.Op][]StageAt {
	out := map[backends.Op][]StageAt{}
	for _, op := range backends.OpList() {
		out[op] = []StageAt{{At: start, Stage: 0}, {At: start.Add(d / 4), Stage: 10}, {At: start.Add(d / 2), Stage: 50}}
	}
	return out
}

// MixQuantile is the q-quantile of a call's time in its sandbox over the
// operation mix, without modifiers or queueing, from 200,000 draws of a
// fixed seed.
func (c Config) MixQuantile(q float64) time.Duration {
	c = c.WithDefaults()
	g := newGen(Config{Ops: c.Ops, Start: c.Start, Duration: time.Nanosecond, Workspaces: 1, Load: c.Load}.WithDefaults(), nil)
	g.r = rand.New(rand.NewPCG(1, 2))
	const n = 200_000
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = g.service(g.pickOp(), Modifier{Factor: 1})
	}
	slices.Sort(ds)
	return ds[min(int(math.Ceil(q*n))-1, n-1)]
}
