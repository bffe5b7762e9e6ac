package canary

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// Verdict is what the judge says of one operation's canary stage.
type Verdict string

// The verdicts.
const (
	// VerdictIdle: no canary under way (the operation is at 0 % and
	// Approach 2 has shown nothing against it).
	VerdictIdle Verdict = "idle"
	// VerdictAdvance: Approach 2 is shown to be no worse than Approach 1,
	// beyond the floors, on every judged signal: move to the next stage.
	VerdictAdvance Verdict = "advance"
	// VerdictHold: not yet shown either way, or a signal that is not an
	// outage (cost, a mismatch rate above its limit but not yet proven)
	// stands in the way; Reasons and FurtherCalls say what is missing.
	VerdictHold Verdict = "hold"
	// VerdictRollback: Approach 2 is shown to be worse than Approach 1 by
	// more than a floor, at the stated false-alarm rate.
	VerdictRollback Verdict = "rollback"
	// VerdictComplete: at 100 % and shown no worse: the migration of this
	// operation is done.
	VerdictComplete Verdict = "complete"
)

func (v Verdict) String() string { return string(v) }

// Floor is a practical-significance floor: a difference counts only when
// it exceeds both Abs and Rel times the baseline (Approach 1's value).
type Floor struct {
	Abs float64 `json:"abs"`
	Rel float64 `json:"rel"`
}

// at is the floor's size above baseline b.
func (f Floor) at(b float64) float64 { return max(f.Abs, f.Rel*b) }

// JudgeConfig sets the judge. Zero values take the defaults.
type JudgeConfig struct {
	// FalseAlarmRate is the chance, per operation and stage, that a canary
	// no worse than Approach 1 beyond the floors is ever judged
	// "rollback", however often it is looked at. Default 0.01.
	FalseAlarmRate float64 `json:"false_alarm_rate"`
	// MissRate is the chance that a canary worse than Approach 1 beyond
	// the floors is ever judged "advance" or "complete". Default 0.05.
	MissRate float64 `json:"miss_rate"`
	// MinCalls of Approach 2 in the stage before it may advance. Default 100.
	MinCalls int64 `json:"min_calls"`
	// ErrorFloor: error-rate differences within it are no regression.
	// Default 2 points, or half of Approach 1's rate if that is more.
	ErrorFloor Floor `json:"error_floor"`
	// LatencyFloor, in milliseconds: quantile differences within it are no
	// regression. Default 250 ms, or a quarter of Approach 1's quantile if
	// that is more.
	LatencyFloor Floor `json:"latency_floor_ms"`
	// MaxMismatchRate of shadow comparisons (mismatches over matches plus
	// mismatches; stale, skipped and unfinished ones compare nothing).
	// Default 0.01.
	MaxMismatchRate float64 `json:"max_mismatch_rate"`
	// MaxCostRatio: Approach 2's cost per call may be at most this
	// multiple of Approach 1's before it holds the stage. Default 1.5.
	MaxCostRatio float64 `json:"max_cost_ratio"`
	// MinStageTime a stage must have lasted before it may advance.
	// Default 0.
	MinStageTime time.Duration `json:"-"`
}

// MarshalJSON writes the settings with MinStageTime in seconds.
func (c JudgeConfig) MarshalJSON() ([]byte, error) {
	type plain JudgeConfig
	return json.Marshal(struct {
		plain
		MinStageTimeS float64 `json:"min_stage_time_s"`
	}{plain(c), c.MinStageTime.Seconds()})
}

// WithDefaults fills the zero values.
func (c JudgeConfig) WithDefaults() JudgeConfig {
	if c.FalseAlarmRate <= 0 {
		c.FalseAlarmRate = 0.01
	}
	if c.MissRate <= 0 {
		c.MissRate = 0.05
	}
	if c.MinCalls <= 0 {
		c.MinCalls = 100
	}
	if c.ErrorFloor == (Floor{}) {
		c.ErrorFloor = Floor{Abs: 0.02, Rel: 0.5}
	}
	if c.LatencyFloor == (Floor{}) {
		c.LatencyFloor = Floor{Abs: 250, Rel: 0.25}
	}
	if c.MaxMismatchRate <= 0 {
		c.MaxMismatchRate = 0.01
	}
	if c.MaxCostRatio <= 0 {
		c.MaxCostRatio = 1.5
	}
	return c
}

// Validate reports settings that make no sense.
func (c JudgeConfig) Validate() error {
	switch {
	case c.FalseAlarmRate < 0 || c.FalseAlarmRate >= 0.5:
		return fmt.Errorf("false_alarm_rate: %v is not in (0, 0.5)", c.FalseAlarmRate)
	case c.MissRate < 0 || c.MissRate >= 0.5:
		return fmt.Errorf("miss_rate: %v is not in (0, 0.5)", c.MissRate)
	case c.ErrorFloor.Abs < 0 || c.ErrorFloor.Rel < 0 || c.LatencyFloor.Abs < 0 || c.LatencyFloor.Rel < 0:
		return fmt.Errorf("floors cannot be negative")
	case c.MaxMismatchRate < 0 || c.MaxMismatchRate >= 1:
		return fmt.Errorf("max_mismatch_rate: %v is not in (0, 1)", c.MaxMismatchRate)
	}
	return nil
}

// The quantiles the judge compares: all three can roll a stage back; the
// first two must be shown no worse before it advances (the 99th needs
// thousands of calls before any bound on it exists).
var (
	judgedQuantiles  = []float64{0.5, 0.95, 0.99}
	advanceQuantiles = 2
)

// rollbackTests is how many tests can roll a stage back (the error rate,
// each quantile, the mismatch rate): the false-alarm rate is split
// evenly among them (Bonferroni), so that together they stay within it.
var rollbackTests = 2 + len(judgedQuantiles)

// advanceTests is how many tests must pass to advance (the error rate and
// the advance quantiles): the miss rate is split among them.
var advanceTests = 1 + advanceQuantiles

// Input is what the judge looks at: one operation's stage.
type Input struct {
	Op    backends.Op
	Stage int // per cent on Approach 2
	Since time.Time
	Now   time.Time
	// A1 and A2 are the calls the flags routed to each backend in the
	// stage (a fallback counts against Approach 2). At 100 %, A1 is
	// Approach 1's calls of the stage before (the baseline).
	A1, A2 *Calls
	// Baseline says where A1 comes from when not from this stage.
	Baseline string
	Shadow   Shadows
	// NoForecast skips the estimate of the further calls needed (the
	// automatic rollback needs only the verdict).
	NoForecast bool
}

// Judgement is the judge's verdict with every input it used, so that a
// reader can check it by hand.
type Judgement struct {
	Op      backends.Op `json:"op"`
	Verdict Verdict     `json:"verdict"`
	Reasons []string    `json:"reasons"`
	Stage   int         `json:"stage"`
	Since   time.Time   `json:"stage_since,omitzero"`
	// TimeInStage in seconds.
	TimeInStage float64        `json:"time_in_stage_s"`
	Approach1   BackendSummary `json:"approach1"`
	Approach2   BackendSummary `json:"approach2"`
	Baseline    string         `json:"baseline,omitempty"`
	Shadow      ShadowSummary  `json:"shadow"`
	Tests       []Test         `json:"tests"`
	// FurtherCalls is, for a hold, how many more Approach 2 calls the
	// stage needs before the judge can decide, if what was seen so far
	// holds (-1: more than ten million, or never at these rates).
	FurtherCalls int64 `json:"further_calls,omitempty"`
	// FalseAlarmRate and MissRate are the rates the verdict was judged at.
	FalseAlarmRate float64 `json:"false_alarm_rate"`
	MissRate       float64 `json:"miss_rate"`
}

// BackendSummary is one backend's calls in the stage.
type BackendSummary struct {
	Calls     int64      `json:"calls"`
	Failures  int64      `json:"failures"`
	FellBack  int64      `json:"fell_back"`
	ErrorRate float64    `json:"error_rate"`
	ErrorCI   [2]float64 `json:"error_rate_ci"`
	P50       float64    `json:"p50_ms"`
	P95       float64    `json:"p95_ms"`
	P99       float64    `json:"p99_ms"`
	CostPerOp float64    `json:"cost_per_op_usd"`
}

// ShadowSummary is the stage's shadow comparisons.
type ShadowSummary struct {
	Shadows
	Compared     int64      `json:"compared"`
	MismatchRate float64    `json:"mismatch_rate"`
	MismatchCI   [2]float64 `json:"mismatch_rate_ci"`
}

// TestResult is how one signal's test came out.
type TestResult string

// The results of a test.
const (
	ResultPass       TestResult = "pass"       // shown no worse beyond the floor (or within its limit)
	ResultRegression TestResult = "regression" // shown worse beyond the floor
	ResultUndecided  TestResult = "undecided"  // neither yet
	ResultOver       TestResult = "over"       // above a limit that holds but does not roll back (cost, mismatches not yet proven)
	ResultNoData     TestResult = "no_data"
)

// Test is one signal's comparison, with its numbers.
type Test struct {
	Metric    string     `json:"metric"`
	Approach1 float64    `json:"approach1"`
	Approach2 float64    `json:"approach2"`
	A1Bounds  [2]float64 `json:"approach1_bounds,omitzero"`
	A2Bounds  [2]float64 `json:"approach2_bounds,omitzero"`
	// Floor is the practical floor (or the limit) the difference is
	// measured against.
	Floor float64 `json:"floor"`
	// Alpha is the miscoverage of each bound of the rollback side.
	Alpha  float64    `json:"alpha"`
	Result TestResult `json:"result"`
	Why    string     `json:"why"`
}

// Judge decides one operation's stage. It looks only at what in holds
// and may be called as often as anyone likes: its false-alarm rate holds
// over every look (see stats.go).
func Judge(in Input, cfg JudgeConfig) Judgement {
	cfg = cfg.WithDefaults()
	a1, a2 := orEmpty(in.A1), orEmpty(in.A2)
	j := Judgement{Op: in.Op, Stage: in.Stage, Since: in.Since, Baseline: in.Baseline,
		FalseAlarmRate: cfg.FalseAlarmRate, MissRate: cfg.MissRate, Reasons: []string{}}
	if !in.Since.IsZero() && in.Now.After(in.Since) {
		j.TimeInStage = in.Now.Sub(in.Since).Seconds()
	}
	fa := cfg.FalseAlarmRate / float64(rollbackTests) // per rollback test
	miss := cfg.MissRate / float64(advanceTests)      // per advance test
	j.Approach1, j.Approach2 = summarise(a1, fa/2), summarise(a2, fa/2)
	j.Shadow = ShadowSummary{Shadows: in.Shadow, Compared: in.Shadow.Compared(), MismatchRate: in.Shadow.MismatchRate()}
	j.Shadow.MismatchCI[0], j.Shadow.MismatchCI[1] = RateBounds(in.Shadow.Mismatch, in.Shadow.Compared(), fa)

	j.Tests = append(j.Tests, errorTest(a1, a2, cfg, fa/2, miss/2))
	for i, q := range judgedQuantiles {
		j.Tests = append(j.Tests, latencyTest(a1, a2, q, i < advanceQuantiles, cfg, fa/2, miss/2))
	}
	j.Tests = append(j.Tests, mismatchTest(in.Shadow, cfg, fa))
	j.Tests = append(j.Tests, costTest(a1, a2, cfg))

	var regressions, undecided, over []string
	for _, t := range j.Tests {
		switch t.Result {
		case ResultRegression:
			regressions = append(regressions, t.Why)
		case ResultUndecided:
			undecided = append(undecided, t.Why)
		case ResultOver:
			over = append(over, t.Why)
		}
	}
	switch {
	case len(regressions) > 0:
		j.Verdict, j.Reasons = VerdictRollback, regressions
	case in.Stage <= 0 && a2.N == 0:
		j.Verdict = VerdictIdle
		j.Reasons = append(j.Reasons, "no canary under way: the operation is at 0 % on approach2")
		j.Reasons = append(j.Reasons, over...)
	case a2.N < cfg.MinCalls || len(undecided) > 0:
		j.Verdict = VerdictHold
		if a2.N < cfg.MinCalls {
			j.Reasons = append(j.Reasons, fmt.Sprintf("only %d approach2 calls in this stage (at least %d before advancing)", a2.N, cfg.MinCalls))
		}
		j.Reasons = append(append(j.Reasons, undecided...), over...)
		if !in.NoForecast {
			j.FurtherCalls = furtherCalls(a1, a2, in.Stage == 100, cfg, fa/2, miss/2)
			if j.FurtherCalls > 0 {
				j.Reasons = append(j.Reasons, fmt.Sprintf("about %d more approach2 calls would decide, if the rates seen so far hold", j.FurtherCalls))
			} else if j.FurtherCalls < 0 && in.Stage >= 100 {
				j.Reasons = append(j.Reasons, fmt.Sprintf("approach1's baseline (%d calls) is too small to show approach2 no worse however many more approach2 calls come, or the difference sits at the floor: judge with a longer --since, or complete by decision", a1.N))
			} else if j.FurtherCalls < 0 {
				j.Reasons = append(j.Reasons, "more than 10,000,000 further approach2 calls would be needed at the rates seen so far: the difference sits at the floor")
			}
		}
	case len(over) > 0:
		j.Verdict, j.Reasons = VerdictHold, over
	case cfg.MinStageTime > 0 && j.TimeInStage < cfg.MinStageTime.Seconds():
		j.Verdict = VerdictHold
		j.Reasons = append(j.Reasons, fmt.Sprintf("the stage has run %s of the %s it must last", time.Duration(j.TimeInStage*float64(time.Second)).Round(time.Minute), cfg.MinStageTime))
	case in.Stage >= 100:
		j.Verdict = VerdictComplete
		j.Reasons = append(j.Reasons, "approach2 serves all of this operation and is shown no worse than approach1")
	default:
		j.Verdict = VerdictAdvance
		j.Reasons = append(j.Reasons, "approach2 is shown no worse than approach1 beyond the floors on errors and latency (P50, P95)")
	}
	return j
}

func orEmpty(c *Calls) *Calls {
	if c == nil {
		return NewCalls()
	}
	return c
}

func summarise(c *Calls, alpha float64) BackendSummary {
	s := BackendSummary{Calls: c.N, Failures: c.Failures, FellBack: c.FellBack, ErrorRate: c.ErrorRate(),
		P50: c.Latency.Quantile(0.5), P95: c.Latency.Quantile(0.95), P99: c.Latency.Quantile(0.99), CostPerOp: c.CostPerCall()}
	s.ErrorCI[0], s.ErrorCI[1] = RateBounds(c.Failures, c.N, alpha)
	return s
}

// errorTest: a regression when Approach 2's lowest plausible error rate
// exceeds Approach 1's highest plausible one by more than the floor; no
// worse when Approach 2's highest is within the floor of Approach 1's
// lowest.
func errorTest(a1, a2 *Calls, cfg JudgeConfig, fa, miss float64) Test {
	t := Test{Metric: "error_rate", Approach1: a1.ErrorRate(), Approach2: a2.ErrorRate(), Alpha: fa}
	if a2.N == 0 || a1.N == 0 {
		t.Result, t.Why = ResultNoData, noData("error rate", a1, a2)
		return t
	}
	lo1, hi1 := RateBounds(a1.Failures, a1.N, fa)
	lo2, hi2 := RateBounds(a2.Failures, a2.N, fa)
	t.A1Bounds, t.A2Bounds = [2]float64{lo1, hi1}, [2]float64{lo2, hi2}
	t.Floor = cfg.ErrorFloor.at(hi1)
	switch d := decideErrors(a1.Failures, a1.N, a2.Failures, a2.N, cfg, fa, miss); d {
	case ResultRegression:
		t.Result = d
		t.Why = fmt.Sprintf("approach2 error rate %s (%d of %d; at least %s) exceeds approach1's %s (%d of %d; at most %s) by more than the floor of %s",
			pct(t.Approach2), a2.Failures, a2.N, pct(lo2), pct(t.Approach1), a1.Failures, a1.N, pct(hi1), pts(t.Floor))
	case ResultPass:
		t.Result = d
		t.Why = fmt.Sprintf("approach2 error rate %s is within %s of approach1's %s", pct(t.Approach2), pts(cfg.ErrorFloor.at(t.Approach1)), pct(t.Approach1))
	default:
		t.Result = ResultUndecided
		t.Why = fmt.Sprintf("error rate not yet shown no worse: approach2 %s (%d of %d) against approach1 %s (%d of %d)",
			pct(t.Approach2), a2.Failures, a2.N, pct(t.Approach1), a1.Failures, a1.N)
	}
	return t
}

// decideErrors is the error-rate test on counts alone (also used to
// forecast the calls needed).
func decideErrors(f1, n1, f2, n2 int64, cfg JudgeConfig, fa, miss float64) TestResult {
	_, hi1 := RateBounds(f1, n1, fa)
	lo2, _ := RateBounds(f2, n2, fa)
	if lo2 > hi1+cfg.ErrorFloor.at(hi1) {
		return ResultRegression
	}
	lo1, _ := RateBounds(f1, n1, miss)
	_, hi2 := RateBounds(f2, n2, miss)
	if hi2 <= lo1+cfg.ErrorFloor.at(lo1) {
		return ResultPass
	}
	return ResultUndecided
}

// latencyTest compares the q-quantiles the same way.
func latencyTest(a1, a2 *Calls, q float64, forAdvance bool, cfg JudgeConfig, fa, miss float64) Test {
	name := fmt.Sprintf("latency_p%d", int(math.Round(q*100)))
	label := fmt.Sprintf("P%d", int(math.Round(q*100)))
	t := Test{Metric: name, Approach1: a1.Latency.Quantile(q), Approach2: a2.Latency.Quantile(q), Alpha: fa}
	if a2.N == 0 || a1.N == 0 {
		t.Result, t.Why = ResultNoData, noData(label+" latency", a1, a2)
		return t
	}
	lo1, hi1 := QuantileBounds(a1.Latency, q, fa)
	lo2, hi2 := QuantileBounds(a2.Latency, q, fa)
	t.A1Bounds, t.A2Bounds = [2]float64{lo1, finite(hi1)}, [2]float64{lo2, finite(hi2)}
	d := decideLatency(a1.Latency, a1.N, a2.Latency, a2.N, q, forAdvance, cfg, fa, miss)
	t.Floor = cfg.LatencyFloor.at(finite(hi1))
	switch d {
	case ResultRegression:
		t.Result = d
		t.Why = fmt.Sprintf("approach2 %s latency %s (at least %s) exceeds approach1's %s (at most %s) by more than the floor of %s",
			label, msec(t.Approach2), msec(lo2), msec(t.Approach1), msec(hi1), msec(t.Floor))
	case ResultPass:
		t.Result = d
		if forAdvance {
			t.Why = fmt.Sprintf("approach2 %s latency %s is within %s of approach1's %s", label, msec(t.Approach2), msec(cfg.LatencyFloor.at(t.Approach1)), msec(t.Approach1))
		} else {
			t.Why = fmt.Sprintf("approach2 %s latency %s against approach1's %s: no regression shown (judged for rollback only)", label, msec(t.Approach2), msec(t.Approach1))
		}
	default:
		t.Result = ResultUndecided
		t.Why = fmt.Sprintf("%s latency not yet shown no worse: approach2 %s against approach1 %s (%d and %d calls)", label, msec(t.Approach2), msec(t.Approach1), a2.N, a1.N)
	}
	return t
}

// decideLatency is the quantile test, with the summaries' sizes given so
// that the forecast can ask what more calls of the same distributions
// would show.
func decideLatency(k1 *Sketch, n1 int64, k2 *Sketch, n2 int64, q float64, forAdvance bool, cfg JudgeConfig, fa, miss float64) TestResult {
	_, hi1 := quantileBoundsAt(k1, n1, q, fa)
	lo2, _ := quantileBoundsAt(k2, n2, q, fa)
	if !math.IsInf(hi1, 1) && lo2 > hi1+cfg.LatencyFloor.at(hi1) {
		return ResultRegression
	}
	if !forAdvance {
		return ResultPass
	}
	lo1, _ := quantileBoundsAt(k1, n1, q, miss)
	_, hi2 := quantileBoundsAt(k2, n2, q, miss)
	if !math.IsInf(hi2, 1) && hi2 <= lo1+cfg.LatencyFloor.at(lo1) {
		return ResultPass
	}
	return ResultUndecided
}

// quantileBoundsAt is QuantileBounds for n values drawn like those in k
// (n = k.Count(): the values themselves).
func quantileBoundsAt(k *Sketch, n int64, q, alpha float64) (lo, hi float64) {
	if n == k.Count() {
		return QuantileBounds(k, q, alpha)
	}
	rlo, rhi := QuantileRanks(q, n, alpha)
	lo, hi = 0, math.Inf(1)
	if rlo >= 1 {
		lo = k.Quantile(float64(rlo-1)/float64(max(n-1, 1))) * (1 - SketchAccuracy)
	}
	if rhi+1 <= n {
		hi = k.Quantile(float64(rhi)/float64(max(n-1, 1))) * (1 + SketchAccuracy)
	}
	return lo, hi
}

func mismatchTest(s Shadows, cfg JudgeConfig, fa float64) Test {
	t := Test{Metric: "mismatch_rate", Approach2: s.MismatchRate(), Floor: cfg.MaxMismatchRate, Alpha: fa}
	n := s.Compared()
	if n == 0 {
		t.Result, t.Why = ResultNoData, "no shadow comparisons in this stage: agreement not judged"
		return t
	}
	lo, hi := RateBounds(s.Mismatch, n, fa)
	t.A2Bounds = [2]float64{lo, hi}
	evidence := ""
	if len(s.Examples) > 0 {
		evidence = "; for example: " + strings.ReplaceAll(s.Examples[0], "\n", "; ")
	}
	switch {
	case lo > cfg.MaxMismatchRate:
		t.Result = ResultRegression
		t.Why = fmt.Sprintf("shadow mismatch rate %s (%d of %d compared; at least %s) exceeds %s%s", pct(t.Approach2), s.Mismatch, n, pct(lo), pct(cfg.MaxMismatchRate), evidence)
	case t.Approach2 > cfg.MaxMismatchRate:
		t.Result = ResultOver
		t.Why = fmt.Sprintf("shadow mismatch rate %s (%d of %d compared) is above %s, not yet proven (at least %s)%s", pct(t.Approach2), s.Mismatch, n, pct(cfg.MaxMismatchRate), pct(lo), evidence)
	default:
		t.Result = ResultPass
		t.Why = fmt.Sprintf("shadow mismatch rate %s (%d of %d compared) is within %s", pct(t.Approach2), s.Mismatch, n, pct(cfg.MaxMismatchRate))
	}
	return t
}

func costTest(a1, a2 *Calls, cfg JudgeConfig) Test {
	t := Test{Metric: "cost_per_op_usd", Approach1: a1.CostPerCall(), Approach2: a2.CostPerCall(), Floor: cfg.MaxCostRatio}
	switch {
	case a1.N == 0 || a2.N == 0 || (a1.CostUSD == 0 && a2.CostUSD == 0):
		t.Result, t.Why = ResultNoData, "no cost recorded for both backends: cost not judged"
	case a1.CostUSD == 0 || t.Approach2 > cfg.MaxCostRatio*t.Approach1:
		t.Result = ResultOver
		ratio := "more than"
		if t.Approach1 > 0 {
			ratio = fmt.Sprintf("%.1f×", t.Approach2/t.Approach1)
		}
		t.Why = fmt.Sprintf("cost per operation on approach2 %s is %s approach1's %s (limit %.1f×)", usd(t.Approach2), ratio, usd(t.Approach1), cfg.MaxCostRatio)
	default:
		t.Result = ResultPass
		t.Why = fmt.Sprintf("cost per operation on approach2 %s, approach1 %s (limit %.1f×)", usd(t.Approach2), usd(t.Approach1), cfg.MaxCostRatio)
	}
	return t
}

// furtherCalls estimates how many more Approach 2 calls the undecided
// tests need, assuming the rates and distributions seen so far hold and
// Approach 1's calls grow in proportion (not at all when A1 is a fixed
// baseline): the smallest total found by doubling, then halving the gap.
func furtherCalls(a1, a2 *Calls, fixedA1 bool, cfg JudgeConfig, fa, miss float64) int64 {
	if a2.N == 0 || a1.N == 0 {
		return max(cfg.MinCalls-a2.N, 0)
	}
	ratio := float64(a1.N) / float64(a2.N)
	decided := func(n2 int64) bool {
		n1 := a1.N
		if !fixedA1 {
			n1 = max(int64(math.Round(ratio*float64(n2))), a1.N)
		}
		f1 := int64(math.Round(a1.ErrorRate() * float64(n1)))
		f2 := int64(math.Round(a2.ErrorRate() * float64(n2)))
		if decideErrors(f1, n1, f2, n2, cfg, fa, miss) == ResultUndecided {
			return false
		}
		for i := range advanceQuantiles {
			if decideLatency(a1.Latency, n1, a2.Latency, n2, judgedQuantiles[i], true, cfg, fa, miss) == ResultUndecided {
				return false
			}
		}
		return true
	}
	const limit = 10_000_000
	lo, hi := a2.N, max(a2.N, cfg.MinCalls)
	for !decided(hi) {
		lo = hi
		hi *= 2
		if hi > limit {
			return -1
		}
	}
	for hi-lo > max(lo/100, 1) {
		m := lo + (hi-lo)/2
		if decided(m) {
			hi = m
		} else {
			lo = m
		}
	}
	return max(hi-a2.N, cfg.MinCalls-a2.N, 0)
}

func noData(what string, a1, a2 *Calls) string {
	return fmt.Sprintf("%s not compared: %d approach1 and %d approach2 calls", what, a1.N, a2.N)
}

func finite(v float64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0
	}
	return v
}

func pct(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }
func pts(v float64) string { return fmt.Sprintf("%.2f points", 100*v) }
func usd(v float64) string {
	if v != 0 && math.Abs(v) < 0.01 {
		return fmt.Sprintf("$%.3g", v)
	}
	return fmt.Sprintf("$%.4f", v)
}

func msec(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "unbounded"
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}
