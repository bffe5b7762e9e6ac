package canary

import (
	"fmt"
	"slices"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// Stages are the canary stages: the share (per cent) of an operation's
// workspaces on Approach 2.
var Stages = []int{0, 10, 50, 100}

// NextStage returns the stage after current, and false at the last one.
func NextStage(current int) (int, bool) {
	for _, s := range Stages {
		if s > current {
			return s, true
		}
	}
	return current, false
}

// Thresholds decide whether a stage passed. Zero values take the defaults.
type Thresholds struct {
	// MinSamples of Approach 2 calls in the stage. Default 100.
	MinSamples int
	// MaxErrorRate of Approach 2 (failures and fallbacks). Default 0.05.
	MaxErrorRate float64
	// MaxErrorRateOverA1: Approach 2's error rate may exceed Approach 1's
	// by at most this much. Default 0.01.
	MaxErrorRateOverA1 float64
	// MaxP95 of Approach 2. Default 2 s.
	MaxP95 time.Duration
	// MaxP95OverA1: Approach 2's P95 may be at most this multiple of
	// Approach 1's. Default 1.5.
	MaxP95OverA1 float64
	// MaxMismatchRate of shadow comparisons (mismatches over matches plus
	// mismatches; stale, skipped, errored and timed-out shadows are not
	// comparisons). Default 0.01.
	MaxMismatchRate float64
}

func (t Thresholds) withDefaults() Thresholds {
	if t.MinSamples <= 0 {
		t.MinSamples = 100
	}
	if t.MaxErrorRate <= 0 {
		t.MaxErrorRate = 0.05
	}
	if t.MaxErrorRateOverA1 <= 0 {
		t.MaxErrorRateOverA1 = 0.01
	}
	if t.MaxP95 <= 0 {
		t.MaxP95 = 2 * time.Second
	}
	if t.MaxP95OverA1 <= 0 {
		t.MaxP95OverA1 = 1.5
	}
	if t.MaxMismatchRate <= 0 {
		t.MaxMismatchRate = 0.01
	}
	return t
}

// Stats summarise one backend's calls in a stage.
type Stats struct {
	Calls, Failures int
	ErrorRate       float64
	P95             time.Duration
}

// Shadowing summarises the shadow comparisons in a stage.
type Shadowing struct {
	Compared, Mismatches int
	MismatchRate         float64
	// Unfinished counts shadows that errored or ran out of time; Stale,
	// those that found the workspace had moved on (nothing to compare).
	Unfinished, Stale int
}

// Analysis is the verdict on an operation's current stage.
type Analysis struct {
	Op       string
	Since    time.Time
	A1, A2   Stats
	Shadow   Shadowing
	Pass     bool
	Failures []string // why it did not pass
}

// Analyze judges op's calls in the ledger since the stage began. Calls are
// attributed to the backend the flags chose; a fallback counts against
// Approach 2, and client mistakes count against nobody.
func Analyze(entries []Entry, op string, since time.Time, th Thresholds) Analysis {
	th = th.withDefaults()
	a := Analysis{Op: op, Since: since}
	var a1, a2 tally
	for _, e := range entries {
		if e.Op != backends.Op(op) || e.At.Before(since) {
			continue
		}
		switch {
		case e.Kind == KindComparison:
			a.Shadow.add(e.Outcome)
		case e.Kind == KindCall && e.Routed == backends.Approach1:
			a1.add(e)
		case e.Kind == KindCall && e.Routed == backends.Approach2:
			a2.add(e)
		}
	}
	a.A1, a.A2 = a1.stats(), a2.stats()
	a.Failures = judgeStage(a, th)
	a.Pass = len(a.Failures) == 0
	return a
}

func (s *Shadowing) add(outcome Outcome) {
	switch outcome {
	case OutcomeMatch, OutcomeMismatch:
		s.Compared++
		if outcome == OutcomeMismatch {
			s.Mismatches++
		}
		s.MismatchRate = float64(s.Mismatches) / float64(s.Compared)
	case OutcomeShadowError, OutcomeShadowTimeout:
		s.Unfinished++
	case OutcomeStale:
		s.Stale++
	}
}

// tally sums up one backend's calls in a stage.
type tally struct {
	s         Stats
	durations []time.Duration
}

func (t *tally) add(call Entry) {
	t.s.Calls++
	if call.Failed() {
		t.s.Failures++
	}
	t.durations = append(t.durations, call.Duration)
}

func (t *tally) stats() Stats {
	s := t.s
	if s.Calls > 0 {
		s.ErrorRate = float64(s.Failures) / float64(s.Calls)
	}
	s.P95 = p95(t.durations)
	return s
}

// p95 is the 95th percentile of d (sorted in place); 0 when d is empty.
func p95(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)*95/100]
}

func judgeStage(a Analysis, th Thresholds) []string {
	var why []string
	if a.A2.Calls < th.MinSamples {
		why = append(why, fmt.Sprintf("only %d approach2 calls in this stage (need %d)", a.A2.Calls, th.MinSamples))
	}
	if a.A2.ErrorRate > th.MaxErrorRate {
		why = append(why, fmt.Sprintf("approach2 error rate %.1f%% > %.1f%%", 100*a.A2.ErrorRate, 100*th.MaxErrorRate))
	}
	if a.A1.Calls > 0 && a.A2.ErrorRate > a.A1.ErrorRate+th.MaxErrorRateOverA1 {
		why = append(why, fmt.Sprintf("approach2 error rate %.1f%% exceeds approach1's %.1f%% by more than %.1f points",
			100*a.A2.ErrorRate, 100*a.A1.ErrorRate, 100*th.MaxErrorRateOverA1))
	}
	if a.A2.P95 > th.MaxP95 {
		why = append(why, fmt.Sprintf("approach2 P95 %s > %s", a.A2.P95, th.MaxP95))
	}
	if a.A1.P95 > 0 && float64(a.A2.P95) > th.MaxP95OverA1*float64(a.A1.P95) {
		why = append(why, fmt.Sprintf("approach2 P95 %s is more than %.1fx approach1's %s", a.A2.P95, th.MaxP95OverA1, a.A1.P95))
	}
	if a.Shadow.MismatchRate > th.MaxMismatchRate {
		why = append(why, fmt.Sprintf("shadow mismatch rate %.1f%% (%d of %d) > %.1f%%",
			100*a.Shadow.MismatchRate, a.Shadow.Mismatches, a.Shadow.Compared, 100*th.MaxMismatchRate))
	}
	return why
}
