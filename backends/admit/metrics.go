package admit

import "github.com/prometheus/client_golang/prometheus"

// The reasons of gitgate_admission_refused_total.
const (
	// reasonQueueFull: every slot was busy and the queue full, or the
	// call was shadow work, which does not queue.
	reasonQueueFull = "queue_full"
	// reasonWait: no slot became free within MaxWait.
	reasonWait = "wait"
	// reasonDraining: the process was stopping (Limiter.Drain) and no
	// slot was free.
	reasonDraining = "draining"
)

type metrics struct {
	running, waiting prometheus.Gauge
	wait             prometheus.Histogram
	refusedTotal     *prometheus.CounterVec
}

// newMetrics makes the Limiter's metrics, labelled backend=name when name
// is set, and registers them on reg when it is not nil.
func newMetrics(reg prometheus.Registerer, name string) *metrics {
	var labels prometheus.Labels
	if name != "" {
		labels = prometheus.Labels{"backend": name}
	}
	m := &metrics{
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitgate_admission_running", Help: "Operations holding an admission slot now (running).", ConstLabels: labels,
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitgate_admission_waiting", Help: "Calls queued for an admission slot now.", ConstLabels: labels,
		}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gitgate_admission_wait_seconds", Help: "Time calls waited for an admission slot (0 when one was free), whether they got one or not; calls refused at once are not counted.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		refusedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_admission_refused_total", Help: "Calls refused as unavailable, having done nothing, because the process was at capacity: queue_full (every slot busy and the queue full, or shadow work, which never queues) wait (no slot within admission.max_wait) or draining (the process stopping, no slot free).",
			ConstLabels: labels,
		}, []string{"reason"}),
	}
	for _, r := range []string{reasonQueueFull, reasonWait, reasonDraining} { // every series from zero, for rates and alerts
		m.refusedTotal.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.running, m.waiting, m.wait, m.refusedTotal)
	}
	return m
}

// set records the slots taken and the queue's length.
func (m *metrics) set(running, waiting int) {
	m.running.Set(float64(running))
	m.waiting.Set(float64(waiting))
}

func (m *metrics) refused(reason string) { m.refusedTotal.WithLabelValues(reason).Inc() }
