package branches

import "github.com/prometheus/client_golang/prometheus"

// Outcome is how a cleanup run ended (the outcome label of
// gitgate_branch_cleanup_runs_total).
type Outcome string

// The outcomes of a cleanup run.
const (
	OutcomeOK     Outcome = "ok"
	OutcomeError  Outcome = "error"
	OutcomeDryRun Outcome = "dry_run"
)

// Metrics are the branch metrics. A nil *Metrics records nothing.
type Metrics struct {
	refused *prometheus.CounterVec
	deleted *prometheus.CounterVec
	runs    *prometheus.CounterVec
	lastRun prometheus.Gauge
}

// NewMetrics registers the branch metrics on reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitgate_branch_pushes_refused_total",
			Help: "Pushes refused by the branch policy, by reason (protected, prefix)."}, []string{"reason"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitgate_branches_deleted_total",
			Help: "Agent branches deleted from remotes, by reason (merged, stale, agent)."}, []string{"reason"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitgate_branch_cleanup_runs_total",
			Help: "Branch cleanup runs, by outcome (ok, error, dry_run)."}, []string{"outcome"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gitgate_branch_cleanup_last_run_timestamp_seconds",
			Help: "When the last branch cleanup run ended (Unix seconds)."}),
	}
	for _, r := range []Reason{ReasonProtected, ReasonPrefix} {
		m.refused.WithLabelValues(string(r))
	}
	for _, r := range []DeleteReason{DeleteMerged, DeleteStale, DeleteAgent} {
		m.deleted.WithLabelValues(string(r))
	}
	for _, o := range []Outcome{OutcomeOK, OutcomeError, OutcomeDryRun} {
		m.runs.WithLabelValues(string(o))
	}
	if reg != nil {
		reg.MustRegister(m.refused, m.deleted, m.runs, m.lastRun)
	}
	return m
}

func (m *Metrics) refusedPush(r Reason) {
	if m != nil {
		m.refused.WithLabelValues(string(r)).Inc()
	}
}

func (m *Metrics) deletedBranch(r DeleteReason) {
	if m != nil {
		m.deleted.WithLabelValues(string(r)).Inc()
	}
}

func (m *Metrics) ran(o Outcome, atUnix float64) {
	if m != nil {
		m.runs.WithLabelValues(string(o)).Inc()
		m.lastRun.Set(atUnix)
	}
}
