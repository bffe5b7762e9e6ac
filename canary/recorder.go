package canary

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	// Store keeps the ledger (FileStore or PGStore). Required.
	Store Store
	// Ledger configures the ledger's buffer and flushes (its Registerer
	// and Logger are the recorder's).
	Ledger LedgerConfig
	// Rollback configures the automatic rollback (its Ledger, Registerer
	// and Logger are the recorder's).
	Rollback RollbackConfig
	// Redact removes secrets from a comparison's diff before it is
	// recorded. Required.
	Redact     func(string) string
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Recorder is what the gateway's router tells about every call and every
// shadow comparison: it writes them to the ledger, feeds the calls to the
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

// Observe records a routed call in the ledger and gives it to the
// automatic rollback. It does not block.
func (r *Recorder) Observe(o Observation) {
	r.ledger.Record(Entry{At: o.At.UTC(), Kind: KindCall, Op: string(o.Op), Routed: o.Routed, Backend: o.Backend,
		FellBack: o.FellBack, Category: string(o.Category), DurationMS: durationMS(o.Duration)})
	r.rollback.Observe(o)
}

// ObserveComparison counts a shadow comparison and records it in the
// ledger, its diff redacted. It does not block.
func (r *Recorder) ObserveComparison(c Comparison) {
	r.comparisons.WithLabelValues(string(c.Op), string(c.Outcome)).Inc()
	r.ledger.Record(Entry{At: c.At.UTC(), Kind: KindComparison, Op: string(c.Op), Routed: c.Primary, Backend: c.Shadow,
		Outcome: c.Outcome, Detail: r.redact(c.Diff), DurationMS: durationMS(c.Duration)})
}

// durationMS is d in milliseconds, to the microsecond, as the ledger keeps it.
func durationMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Run writes the ledger until ctx ends (see Ledger.Run).
func (r *Recorder) Run(ctx context.Context) { r.ledger.Run(ctx) }

// Wait returns once every rollback under way is applied and recorded and
// the ledger's last entries are written: call it after Run returned and
// before the store closes.
func (r *Recorder) Wait() {
	r.rollback.Wait()
	r.ledger.Wait()
}

// Applied returns the last automatic rollback applied per operation.
func (r *Recorder) Applied() map[string]Applied { return r.rollback.Applied() }
