package budget

import "github.com/prometheus/client_golang/prometheus"

// metrics are the gitgate_budget_* series; the project label is a
// configured project or TotalScope.
type metrics struct {
	limit, spent, ratio, forecast *prometheus.GaugeVec
	refusals                      *prometheus.CounterVec
	storeErrors                   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, scopes []string) *metrics {
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"project"})
	}
	m := &metrics{
		limit: gauge("gitgate_budget_limit_usd", "Monthly sandbox budget in US dollars, by project (_total: the overall budget); absent without a limit."),
		spent: gauge("gitgate_budget_spent_usd", "Month-to-date sandbox spend in US dollars (UTC month, from the shared budget store), by project (_total: all)."),
		ratio: gauge("gitgate_budget_used_ratio", "Month-to-date spend divided by the monthly budget, by project (_total: the overall budget)."),
		forecast: gauge("gitgate_budget_forecast_usd",
			"Spend projected to the month's end, linear on the month so far; absent until budget.forecast_min_days of data."),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitgate_budget_refusals_total",
			Help: "Sandbox creations refused because the budget of the project (or _total) is spent."}, []string{"project"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "gitgate_budget_store_errors_total",
			Help: "Budget store calls that failed (spend read or charged)."}),
	}
	for _, s := range scopes {
		m.spent.WithLabelValues(s)
		m.refusals.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.limit, m.spent, m.ratio, m.forecast, m.refusals, m.storeErrors)
	}
	return m
}

// set exports s.
func (m *metrics) set(s Status) {
	m.spent.WithLabelValues(s.Scope).Set(s.SpentUSD)
	if s.LimitUSD > 0 {
		m.limit.WithLabelValues(s.Scope).Set(s.LimitUSD)
		m.ratio.WithLabelValues(s.Scope).Set(s.Ratio)
	}
	if s.ForecastUSD != nil {
		m.forecast.WithLabelValues(s.Scope).Set(*s.ForecastUSD)
	} else {
		m.forecast.DeleteLabelValues(s.Scope)
	}
}
