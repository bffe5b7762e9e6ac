package canary

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// The stay-or-migrate decision (design.md, "The decision framework"):
// computed per week from Approach 1's own traffic, it says whether
// Approach 1 is enough or the data call for Approach 2.

// DecisionConfig holds the framework's thresholds. Zero values take the
// defaults, which are the plan's.
type DecisionConfig struct {
	MaxPeakConcurrency int           `json:"max_peak_concurrency"` // default 10
	MaxCostPerOp       float64       `json:"max_cost_per_op_usd"`  // default $0.05
	MaxP95             time.Duration `json:"-"`                    // default 2 s
	MaxErrorRate       float64       `json:"max_error_rate"`       // default 0.05
	MaxMonthlyCost     float64       `json:"max_monthly_cost_usd"` // default $500
	// MinWeeks a signal must exceed its threshold (any weeks of the
	// period, not necessarily in a row). Default 2.
	MinWeeks int `json:"min_weeks"`
	// MaxCostGrowth over GrowthHorizon, projected from the weekly cost's
	// trend. Defaults 2 and 13 weeks (3 months).
	MaxCostGrowth float64       `json:"max_cost_growth"`
	GrowthHorizon time.Duration `json:"-"`
	// MaxQueueP95: queueing is visible when the 95th percentile of the
	// time calls waited for their workspace lock or a pooled sandbox
	// exceeds it. Default 1 s.
	MaxQueueP95 time.Duration `json:"-"`
	// TrendZ is how many standard errors the weekly error rate's upward
	// slope must clear to count as a trend. Default 2.33 (one-sided 1 %).
	TrendZ float64 `json:"trend_z"`
}

// MarshalJSON writes the thresholds with their durations in the report's
// units: milliseconds, and days for the growth horizon.
func (c DecisionConfig) MarshalJSON() ([]byte, error) {
	type plain DecisionConfig
	return json.Marshal(struct {
		plain
		MaxP95MS          float64 `json:"max_p95_ms"`
		GrowthHorizonDays float64 `json:"growth_horizon_days"`
		MaxQueueP95MS     float64 `json:"max_queue_p95_ms"`
	}{plain(c), ms(c.MaxP95), c.GrowthHorizon.Hours() / 24, ms(c.MaxQueueP95)})
}

// WithDefaults fills the zero values.
func (c DecisionConfig) WithDefaults() DecisionConfig {
	if c.MaxPeakConcurrency <= 0 {
		c.MaxPeakConcurrency = 10
	}
	if c.MaxCostPerOp <= 0 {
		c.MaxCostPerOp = 0.05
	}
	if c.MaxP95 <= 0 {
		c.MaxP95 = 2 * time.Second
	}
	if c.MaxErrorRate <= 0 {
		c.MaxErrorRate = 0.05
	}
	if c.MaxMonthlyCost <= 0 {
		c.MaxMonthlyCost = 500
	}
	if c.MinWeeks <= 0 {
		c.MinWeeks = 2
	}
	if c.MaxCostGrowth <= 0 {
		c.MaxCostGrowth = 2
	}
	if c.GrowthHorizon <= 0 {
		c.GrowthHorizon = 13 * 7 * 24 * time.Hour
	}
	if c.MaxQueueP95 <= 0 {
		c.MaxQueueP95 = time.Second
	}
	if c.TrendZ <= 0 {
		c.TrendZ = 2.33
	}
	return c
}

// DecisionVerdict is the framework's answer.
type DecisionVerdict string

// The framework's answers.
const (
	Stay    DecisionVerdict = "stay"    // Approach 1 is enough: revisit quarterly
	Migrate DecisionVerdict = "migrate" // the data call for Approach 2
)

// The names of the framework's signals.
const (
	SignalPeakConcurrency = "peak_concurrency"
	SignalCostPerOp       = "cost_per_op_usd"
	SignalP95             = "p95_latency_ms"
	SignalErrorRate       = "error_rate"
	SignalMonthlyCost     = "monthly_cost_usd"
	SignalQueueP95        = "queue_wait_p95_ms"
	SignalCostGrowth      = "cost_growth"
	SignalErrorTrend      = "error_rate_trend"
)

// Decision is the stay-or-migrate answer with its signals.
type Decision struct {
	Verdict DecisionVerdict `json:"verdict"`
	Reasons []string        `json:"reasons"`
	Signals []Signal        `json:"signals"`
	// Weeks are the whole weeks judged, oldest first: each ends where the
	// next begins, the last at the report's end.
	Weeks []Week `json:"weeks"`
}

// Week is one week of Approach 1's traffic.
type Week struct {
	Start   time.Time `json:"start"`
	Calls   int64     `json:"calls"`
	CostUSD float64   `json:"cost_usd"`
	// CostSource says where the cost comes from: "sandboxes" (what the
	// sandboxes cost over their lives) or "calls" (the calls' commands
	// only, when no sandbox ended that week).
	CostSource string `json:"cost_source"`
}

// Signal is one signal of the framework, per week, against its threshold.
type Signal struct {
	Name      string  `json:"name"`
	Value     float64 `json:"value"` // the latest week's (a trend: its projection)
	Threshold float64 `json:"threshold"`
	// WeeksExceeded counts the weeks above the threshold (0 for trends).
	WeeksExceeded int `json:"weeks_exceeded"`
	// Exceeded says whether the signal calls for migration.
	Exceeded bool     `json:"exceeded"`
	Weekly   []Point  `json:"weekly,omitempty"`
	Note     string   `json:"note,omitempty"`
	Weeks    []string `json:"exceeded_weeks,omitempty"` // the weeks above it, by start date
}

// Point is a value at a time.
type Point struct {
	At    time.Time `json:"at"`
	Value float64   `json:"value"`
}

// weekAgg is one week of Approach 1's calls and sandboxes.
type weekAgg struct {
	start     time.Time
	calls     *Calls
	sandboxes Sandboxes
}

// decide computes the framework from weekly aggregates, oldest first.
func decide(weeks []weekAgg, cfg DecisionConfig) Decision {
	cfg = cfg.WithDefaults()
	d := Decision{Verdict: Stay, Reasons: []string{}, Signals: []Signal{}, Weeks: []Week{}}
	if len(weeks) == 0 {
		d.Reasons = append(d.Reasons, "no whole week of approach1 traffic in the period: nothing to decide on; stay and revisit when there is")
		return d
	}
	costs := make([]float64, len(weeks))
	for i, w := range weeks {
		wk := Week{Start: w.start, Calls: w.calls.N, CostUSD: w.calls.CostUSD, CostSource: "calls"}
		if w.sandboxes.N > 0 {
			wk.CostUSD, wk.CostSource = w.sandboxes.CostUSD, "sandboxes"
		}
		costs[i] = wk.CostUSD
		d.Weeks = append(d.Weeks, wk)
	}
	perWeek := func(name string, threshold float64, value func(i int, w weekAgg) (float64, bool)) {
		s := Signal{Name: name, Threshold: threshold}
		for i, w := range weeks {
			v, ok := value(i, w)
			if !ok {
				continue
			}
			s.Weekly = append(s.Weekly, Point{At: w.start, Value: v})
			s.Value = v
			if v > threshold {
				s.WeeksExceeded++
				s.Weeks = append(s.Weeks, w.start.Format(time.DateOnly))
			}
		}
		s.Exceeded = s.WeeksExceeded >= cfg.MinWeeks
		d.Signals = append(d.Signals, s)
	}
	hasCalls := func(w weekAgg) bool { return w.calls.N > 0 }
	perWeek(SignalPeakConcurrency, float64(cfg.MaxPeakConcurrency), func(_ int, w weekAgg) (float64, bool) {
		return float64(w.calls.MaxInFlight), hasCalls(w)
	})
	perWeek(SignalCostPerOp, cfg.MaxCostPerOp, func(i int, w weekAgg) (float64, bool) {
		return costs[i] / float64(max(w.calls.N, 1)), hasCalls(w)
	})
	perWeek(SignalP95, ms(cfg.MaxP95), func(_ int, w weekAgg) (float64, bool) {
		return w.calls.Latency.Quantile(0.95), hasCalls(w)
	})
	perWeek(SignalErrorRate, cfg.MaxErrorRate, func(_ int, w weekAgg) (float64, bool) {
		return w.calls.ErrorRate(), hasCalls(w)
	})
	perWeek(SignalMonthlyCost, cfg.MaxMonthlyCost, func(i int, _ weekAgg) (float64, bool) {
		return costs[i] * daysPerMonth / 7, true
	})
	perWeek(SignalQueueP95, ms(cfg.MaxQueueP95), func(_ int, w weekAgg) (float64, bool) {
		return w.calls.Wait.Quantile(0.95), hasCalls(w)
	})
	d.Signals = append(d.Signals, costGrowth(d.Weeks, cfg), errorTrend(weeks, cfg))

	for _, s := range d.Signals {
		if s.Exceeded {
			d.Reasons = append(d.Reasons, s.reason(cfg))
		}
	}
	if len(d.Reasons) > 0 {
		d.Verdict = Migrate
	} else {
		d.Reasons = append(d.Reasons, fmt.Sprintf("no signal exceeded its threshold for %d weeks or more in the %d weeks judged, and neither cost nor errors trend upward: stay on approach1 and revisit quarterly", cfg.MinWeeks, len(weeks)))
	}
	return d
}

// daysPerMonth turns a week's cost into a month's.
const daysPerMonth = 365.25 / 12

func (s Signal) reason(cfg DecisionConfig) string {
	switch s.Name {
	case SignalCostGrowth:
		return fmt.Sprintf("cost trajectory: the weekly cost grows %.2f× over %s at its current trend (threshold %.1f×)", s.Value, weeksOf(cfg.GrowthHorizon), s.Threshold)
	case SignalErrorTrend:
		return fmt.Sprintf("the error rate trends upward: %+.2f points a week (%s)", 100*s.Value, s.Note)
	}
	return fmt.Sprintf("%s exceeded %s in %d weeks (%s); latest week %s", s.Name, formatSignal(s.Name, s.Threshold), s.WeeksExceeded, strings.Join(s.Weeks, ", "), formatSignal(s.Name, s.Value))
}

func weeksOf(d time.Duration) string { return fmt.Sprintf("%d weeks", int(d/(7*24*time.Hour))) }

func formatSignal(name string, v float64) string {
	switch name {
	case SignalCostPerOp, SignalMonthlyCost:
		return fmt.Sprintf("$%.4g", v)
	case SignalErrorRate:
		return pct(v)
	case SignalP95, SignalQueueP95:
		return msec(v)
	}
	return fmt.Sprintf("%.4g", v)
}

// costGrowth fits a straight line to the logarithm of the weekly cost
// (least squares) and projects it over the horizon.
func costGrowth(weeks []Week, cfg DecisionConfig) Signal {
	s := Signal{Name: SignalCostGrowth, Threshold: cfg.MaxCostGrowth, Value: 1}
	var xs, ys []float64
	for i, w := range weeks {
		if w.CostUSD > 0 {
			xs, ys = append(xs, float64(i)), append(ys, math.Log(w.CostUSD))
			s.Weekly = append(s.Weekly, Point{At: w.Start, Value: w.CostUSD})
		}
	}
	if len(xs) < 3 {
		s.Note = "fewer than 3 weeks with a cost: no trend"
		return s
	}
	slope, _, intercept := fitLine(xs, ys, nil)
	se := residualSE(xs, ys, slope, intercept)
	horizon := cfg.GrowthHorizon.Hours() / (7 * 24)
	s.Value = math.Exp(slope * horizon)
	z := math.Inf(1)
	if se > 0 {
		z = slope / se
	}
	s.Note = fmt.Sprintf("weekly cost changes %+.1f%% a week (%.1f standard errors)", 100*(math.Exp(slope)-1), z)
	// A projection from a few noisy weeks is not a trajectory: the growth
	// must also be beyond noise (the slope TrendZ standard errors above 0).
	s.Exceeded = s.Value >= cfg.MaxCostGrowth && z >= cfg.TrendZ
	return s
}

// errorTrend fits the weekly error rate by weighted least squares
// (weights: the week's calls over the rate's variance) and calls it a
// trend when the slope clears TrendZ standard errors.
func errorTrend(weeks []weekAgg, cfg DecisionConfig) Signal {
	s := Signal{Name: SignalErrorTrend}
	var xs, ys, ws []float64
	total, failures := int64(0), int64(0)
	for _, w := range weeks {
		total += w.calls.N
		failures += w.calls.Failures
	}
	if total == 0 {
		s.Note = "no calls"
		return s
	}
	pooled := max(float64(failures)/float64(total), 0.5/float64(total))
	for i, w := range weeks {
		if w.calls.N == 0 {
			continue
		}
		xs, ys = append(xs, float64(i)), append(ys, w.calls.ErrorRate())
		ws = append(ws, float64(w.calls.N)/(pooled*(1-pooled)))
		s.Weekly = append(s.Weekly, Point{At: w.start, Value: w.calls.ErrorRate()})
	}
	if len(xs) < 3 {
		s.Note = "fewer than 3 weeks with calls: no trend"
		return s
	}
	slope, se, _ := fitLine(xs, ys, ws)
	s.Value = slope
	z := 0.0
	if se > 0 {
		z = slope / se
	}
	s.Note = fmt.Sprintf("%.1f standard errors; threshold %.2f", z, cfg.TrendZ)
	s.Exceeded = slope > 0 && z >= cfg.TrendZ
	return s
}

// residualSE is the standard error of an unweighted least-squares
// slope, from the residuals (0 with fewer than 3 points).
func residualSE(xs, ys []float64, slope, intercept float64) float64 {
	n := float64(len(xs))
	if n < 3 {
		return 0
	}
	var rss, mx, sxx float64
	for i := range xs {
		r := ys[i] - intercept - slope*xs[i]
		rss += r * r
		mx += xs[i] / n
	}
	for _, x := range xs {
		sxx += (x - mx) * (x - mx)
	}
	if sxx == 0 {
		return 0
	}
	return math.Sqrt(rss / (n - 2) / sxx)
}

// fitLine is the (weighted) least-squares line y = a + b·x: its slope b,
// the slope's standard error from the weights (as inverse variances), and
// a. With nil weights every point weighs 1 and se is 0.
func fitLine(xs, ys, ws []float64) (slope, se, intercept float64) {
	var sw, sx, sy float64
	for i := range xs {
		w := 1.0
		if ws != nil {
			w = ws[i]
		}
		sw += w
		sx += w * xs[i]
		sy += w * ys[i]
	}
	mx, my := sx/sw, sy/sw
	var sxx, sxy float64
	for i := range xs {
		w := 1.0
		if ws != nil {
			w = ws[i]
		}
		sxx += w * (xs[i] - mx) * (xs[i] - mx)
		sxy += w * (xs[i] - mx) * (ys[i] - my)
	}
	if sxx == 0 {
		return 0, 0, my
	}
	slope = sxy / sxx
	if ws != nil {
		se = math.Sqrt(1 / sxx)
	}
	return slope, se, my - slope*mx
}
