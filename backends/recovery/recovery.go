// Package recovery counts failure recovery and what it cost: the work
// gitgate did because something failed (a request retried, a call served by
// the fallback backend, a lost sandbox's workspace cloned again, shelved
// work restored). Every part that recovers records here, on the registry of
// its process, into one pair of series (gitgate_recovery_total and
// gitgate_recovery_cost_usd_total, by kind).
package recovery

import (
	"github.com/gitgate/gitgate/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
)

// Kind is what was recovered; the only label of the recovery metrics.
type Kind string

// The kinds of recovery.
const (
	// Retry is a request to a dependency repeated after a failure (the E2B
	// control plane's retried calls).
	Retry Kind = "retry"
	// Fallback is a call routed to Approach 2 that Approach 1 served.
	Fallback Kind = "fallback"
	// Reclone is a workspace whose sandbox was lost, cloned again.
	Reclone Kind = "reclone"
	// Restore is shelved work put back into a new sandbox.
	Restore Kind = "restore"
)

// Kinds lists every Kind, for zeroed series and documentation.
var Kinds = []Kind{Retry, Fallback, Reclone, Restore}

// Metrics records recoveries. The nil *Metrics records nothing.
type Metrics struct {
	count *prometheus.CounterVec
	cost  *prometheus.CounterVec
}

// NewMetrics returns the recovery metrics of reg (registered once per
// registry: a second call with the same reg counts into the same series).
// Every kind's series starts at zero. A nil reg gives unregistered metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		count: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_recovery_total", Help: "Failure recoveries, by kind: retry (a dependency's request repeated), fallback (Approach 1 served a call routed to Approach 2), reclone (a lost sandbox's workspace cloned again), restore (shelved work restored).",
		}, []string{"kind"})),
		cost: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_recovery_cost_usd_total", Help: "What failure recovery cost at the sandbox provider's per-second price, in US dollars, by kind (sandbox time of the recovery's commands where it is measured; 0 where it used none).",
		}, []string{"kind"})),
	}
	for _, k := range Kinds {
		m.count.WithLabelValues(string(k))
		m.cost.WithLabelValues(string(k))
	}
	return m
}

// Record counts one recovery of kind k that cost costUSD.
func (m *Metrics) Record(k Kind, costUSD float64) {
	if m == nil {
		return
	}
	m.count.WithLabelValues(string(k)).Inc()
	if costUSD > 0 {
		m.cost.WithLabelValues(string(k)).Add(costUSD)
	}
}
