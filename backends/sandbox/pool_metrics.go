package sandbox

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type poolMetrics struct {
	acquisitions *prometheus.CounterVec
	acquireTime  *prometheus.HistogramVec
}

// newPoolMetrics registers the pool's metrics: sizes by state and queue
// depth (read when scraped), acquisitions by source (warm, cold, error) —
// their ratio is the reuse ratio — and acquisition time.
func newPoolMetrics(reg prometheus.Registerer, provider string, sizes func() (idle, bound, waiting int)) *poolMetrics {
	labels := prometheus.Labels{"provider": provider}
	m := &poolMetrics{
		acquisitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_pool_acquisitions_total", Help: "Sandboxes handed out by the pool: warm (pre-created), cold (created on demand), error.",
			ConstLabels: labels,
		}, []string{"source"}),
		acquireTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gitgate_pool_acquire_seconds", Help: "Time to get a sandbox from the pool, including any wait in the queue.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.00001, 4, 12),
		}, []string{"source"}),
	}
	for _, s := range []string{"warm", "cold", "error"} {
		m.acquisitions.WithLabelValues(s)
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.acquisitions, m.acquireTime,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gitgate_pool_sandboxes", Help: "Pool sandboxes by state: idle (warm, unbound) or bound (handed to an owner).",
			ConstLabels: prometheus.Labels{"provider": provider, "state": "idle"}}, func() float64 { i, _, _ := sizes(); return float64(i) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gitgate_pool_sandboxes", Help: "Pool sandboxes by state: idle (warm, unbound) or bound (handed to an owner).",
			ConstLabels: prometheus.Labels{"provider": provider, "state": "bound"}}, func() float64 { _, b, _ := sizes(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gitgate_pool_queue_depth", Help: "Callers waiting for a sandbox.",
			ConstLabels: labels}, func() float64 { _, _, w := sizes(); return float64(w) }),
	)
	return m
}

func (m *poolMetrics) observe(d time.Duration, warm bool, err error) {
	source := "cold"
	switch {
	case err != nil:
		source = "error"
	case warm:
		source = "warm"
	}
	m.acquisitions.WithLabelValues(source).Inc()
	m.acquireTime.WithLabelValues(source).Observe(d.Seconds())
}
