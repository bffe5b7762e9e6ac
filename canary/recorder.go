package canary

import (
	"context"
	"log/slog"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/prometheus/client_golang/prometheus"
)

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	// Store keeps the ledger (FileStore or PGStore). Required.
	Store Store
	// Ledger configures the ledger's buffer and flushes (its Registerer
	// and Logger are the recorder's).
	Ledger LedgerConfig
	// Rollback configures the automatic rollback, with the judge's
	// configuration (its Ledger, Registerer and Logger are the recorder's).
	Rollback RollbackConfig
	// Redact removes secrets from an entry's Detail (a comparison's diff)
	// before it is recorded. Required.
	Redact     func(string) string
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Recorder is what the gateway's router hands every call and every shadow
// comparison (an Entry): it writes them to the ledger, feeds both to the
// automatic rollback and counts the comparisons
// (gitgate_shadow_comparisons_total).
type Recorder struct {
	ledger      *Ledger
	rollback    *Rollback
	comparisons *prometheus.CounterVec
	redact      func(string) string
}

// NewRecorder returns a recorder; Run writes its ledger.
func NewRecorder(cfg RecorderConfig) *Recorder {
	lc := cfg.Ledger
	lc.Registerer, lc.Logger = cfg.Registerer, cfg.Logger
	ledger := NewLedger(cfg.Store, lc)
	rb := cfg.Rollback
	rb.Ledger, rb.Registerer, rb.Logger = ledger, cfg.Registerer, cfg.Logger
	r := &Recorder{ledger: ledger, rollback: NewRollback(rb), redact: cfg.Redact,
		comparisons: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitgate_shadow_comparisons_total",
			Help: "Shadow comparisons by operation and outcome (match, mismatch, shadow_error, shadow_timeout, skipped, stale)."}, []string{"op", "outcome"})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(r.comparisons)
	}
	return r
}

// Record writes e to the ledger, its Detail redacted; gives a call or a
// comparison to the automatic rollback (which ignores a drill's, see
// Rollback.Observe) and counts a comparison. It does
// not block on the ledger.
func (r *Recorder) Record(e Entry) {
	e.At = e.At.UTC()
	if e.Detail != "" {
		e.Detail = r.redact(e.Detail)
	}
	r.ledger.Record(e)
	r.rollback.Observe(e)
	if e.Kind == KindComparison {
		r.comparisons.WithLabelValues(string(e.Op), e.Outcome.String()).Inc()
	}
}

// Run writes the ledger until ctx ends (see Ledger.Run).
func (r *Recorder) Run(ctx context.Context) { r.ledger.Run(ctx) }

// Wait returns once every rollback under way is applied and recorded and
// the ledger's last entries are written: call it after Run returned and
// before the store closes.
func (r *Recorder) Wait() {
	r.rollback.Wait()
	r.ledger.Wait()
}

// SeedBaselines gives the automatic rollback Approach 1's calls from
// before this process started (Baselines), for stages at 100 %.
func (r *Recorder) SeedBaselines(a1 map[backends.Op]*Calls, since time.Time) {
	for op, c := range a1 {
		r.rollback.SeedBaseline(op, c, since)
	}
}

// Applied returns the last automatic rollback applied per operation.
func (r *Recorder) Applied() map[string]Applied { return r.rollback.Applied() }
