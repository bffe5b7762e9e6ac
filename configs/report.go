package configs

import (
	"fmt"
	"time"

	"github.com/gitgate/gitgate/canary"
)

// ReportConfig configures `gitgate report`: the thresholds of the
// stay-or-migrate decision (design.md, "The decision framework"). Zero
// values take the plan's defaults.
type ReportConfig struct {
	Decision DecisionThresholds `mapstructure:"decision"`
}

// DecisionThresholds are the decision framework's thresholds.
type DecisionThresholds struct {
	MaxPeakConcurrency int           `mapstructure:"max_peak_concurrency"`
	MaxCostPerOpUSD    float64       `mapstructure:"max_cost_per_op_usd"`
	MaxP95             time.Duration `mapstructure:"max_p95"`
	MaxErrorRate       float64       `mapstructure:"max_error_rate"`
	MaxMonthlyCostUSD  float64       `mapstructure:"max_monthly_cost_usd"`
	MinWeeks           int           `mapstructure:"min_weeks"`
	MaxCostGrowth      float64       `mapstructure:"max_cost_growth"`
	GrowthHorizon      time.Duration `mapstructure:"growth_horizon"`
	MaxQueueP95        time.Duration `mapstructure:"max_queue_p95"`
}

// DecisionConfig is the decision framework's configuration, checked.
func (r ReportConfig) DecisionConfig() (canary.DecisionConfig, error) {
	d := r.Decision
	for _, v := range []struct {
		key string
		bad bool
	}{
		{"max_peak_concurrency", d.MaxPeakConcurrency < 0},
		{"max_cost_per_op_usd", d.MaxCostPerOpUSD < 0},
		{"max_p95", d.MaxP95 < 0},
		{"max_error_rate", d.MaxErrorRate < 0 || d.MaxErrorRate > 1},
		{"max_monthly_cost_usd", d.MaxMonthlyCostUSD < 0},
		{"min_weeks", d.MinWeeks < 0},
		{"max_cost_growth", d.MaxCostGrowth < 0 || (d.MaxCostGrowth > 0 && d.MaxCostGrowth <= 1)},
		{"growth_horizon", d.GrowthHorizon < 0},
		{"max_queue_p95", d.MaxQueueP95 < 0},
	} {
		if v.bad {
			return canary.DecisionConfig{}, fmt.Errorf("config: report.decision.%s is out of range", v.key)
		}
	}
	return canary.DecisionConfig{MaxPeakConcurrency: d.MaxPeakConcurrency, MaxCostPerOp: d.MaxCostPerOpUSD, MaxP95: d.MaxP95,
		MaxErrorRate: d.MaxErrorRate, MaxMonthlyCost: d.MaxMonthlyCostUSD, MinWeeks: d.MinWeeks, MaxCostGrowth: d.MaxCostGrowth,
		GrowthHorizon: d.GrowthHorizon, MaxQueueP95: d.MaxQueueP95}.WithDefaults(), nil
}
