package gateway

import (
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gateway's per-call metrics. Labels are bounded: operation,
// backend, outcome and error category; never a workspace, URL or token.
type Metrics struct {
	ops      *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (if not nil).
// Every (op, backend, outcome, category) series starts at zero, so rates and
// alerts work before the first error happens.
func NewMetrics(reg prometheus.Registerer, backendNames ...string) *Metrics {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_operations_total", Help: "Operations served, by operation, backend, outcome (ok or error) and error category.",
		}, []string{"op", "backend", "outcome", "category"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gitgate_operation_duration_seconds", Help: "Operation latency as the agent sees it, by operation and backend.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300},
		}, []string{"op", "backend"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitgate_operations_in_flight", Help: "Operations currently running, by operation.",
		}, []string{"op"}),
	}
	if reg != nil {
		reg.MustRegister(m.ops, m.latency, m.inFlight)
	}
	m.initSeries(backendNames)
	return m
}

func (m *Metrics) initSeries(backendNames []string) {
	for _, info := range backends.Ops() {
		op := string(info.Op)
		m.inFlight.WithLabelValues(op)
		for _, b := range backendNames {
			m.ops.WithLabelValues(op, b, "ok", "")
			m.latency.WithLabelValues(op, b)
			for _, c := range backends.Categories {
				m.ops.WithLabelValues(op, b, "error", string(c))
			}
		}
	}
}

// begin marks an operation in flight and returns the function that records
// its end.
func (m *Metrics) begin(op backends.Op) func(backend string, err error, d time.Duration) {
	g := m.inFlight.WithLabelValues(string(op))
	g.Inc()
	return func(backend string, err error, d time.Duration) {
		g.Dec()
		outcome, cat := "ok", ""
		if err != nil {
			outcome, cat = "error", string(backends.CategoryOf(err))
		}
		m.ops.WithLabelValues(string(op), backend, outcome, cat).Inc()
		m.latency.WithLabelValues(string(op), backend).Observe(d.Seconds())
	}
}
