package canary

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/prometheus/client_golang/prometheus"
)

// RollbackConfig configures Rollback. Zero values take the defaults (the
// design's thresholds).
type RollbackConfig struct {
	// Window is how far back calls count. Default 5 min.
	Window time.Duration
	// MinCalls routed to Approach 2 in the window before judging. Default 20.
	MinCalls int
	// MaxErrorRate of Approach 2's calls (failures and fallbacks). Default 0.05.
	MaxErrorRate float64
	// MaxP95 latency of Approach 2's calls. Default 2 s.
	MaxP95 time.Duration
	// Apply sends op back to Approach 1 (sets its route to 0 %) and stops
	// its shadow traffic (shadow share 0 %: an operation rolled back gives
	// Approach 2 nothing), recording reason. Required.
	Apply func(op, reason string) error
	// Ledger, if set, records each rollback.
	Ledger     *Ledger
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Rollback watches Approach 2's calls per operation and rolls an operation
// back to Approach 1 when its error rate or P95 latency breaches the
// thresholds over the window. A fallback counts as a failure of Approach 2
// (its breaker is open or it refused), so a breaker that stays open rolls
// the operation back too.
type Rollback struct {
	cfg     RollbackConfig
	counter *prometheus.CounterVec
	running sync.WaitGroup // rollbacks being applied

	mu      sync.Mutex
	windows map[backends.Op][]Entry // Approach 2's calls in the window
	pending map[backends.Op]bool
	// last is when each operation was last rolled back: calls still on
	// their way to Approach 2 must not trigger a second rollback within the
	// same window.
	last map[backends.Op]time.Time
	// applied is each operation's last rollback that was applied.
	applied map[string]Applied
}

// Applied is a rollback the watcher applied.
type Applied struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Applied returns the last rollback applied per operation since the
// watcher started.
func (r *Rollback) Applied() map[string]Applied {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]Applied, len(r.applied))
	for op, a := range r.applied {
		out[op] = a
	}
	return out
}

// NewRollback returns a watcher.
func NewRollback(cfg RollbackConfig) *Rollback {
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.MinCalls <= 0 {
		cfg.MinCalls = 20
	}
	if cfg.MaxErrorRate <= 0 {
		cfg.MaxErrorRate = 0.05
	}
	if cfg.MaxP95 <= 0 {
		cfg.MaxP95 = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Rollback{cfg: cfg, windows: map[backends.Op][]Entry{}, pending: map[backends.Op]bool{}, last: map[backends.Op]time.Time{}, applied: map[string]Applied{},
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_auto_rollbacks_total", Help: "Operations the gateway sent back to Approach 1 on its own, by operation.",
		}, []string{"op"})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(r.counter)
	}
	return r
}

// Observe records a call (KindCall) and rolls its operation back if
// Approach 2 now breaches a threshold. Calls not routed to Approach 2 are
// ignored.
func (r *Rollback) Observe(c Entry) {
	if c.Kind != KindCall || c.Routed != backends.Approach2 {
		return
	}
	reason := r.add(c)
	if reason != "" {
		// Applied beside the call, which it must not delay.
		r.running.Go(func() { r.rollBack(c.Op, reason) })
	}
}

// Wait returns once every rollback that Observe started has been applied
// (or has failed) and recorded: in the flags, the metric and the ledger.
func (r *Rollback) Wait() { r.running.Wait() }

// add keeps c in its operation's window and returns why the operation must
// be rolled back, or "".
func (r *Rollback) add(c Entry) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	cutoff := c.At.Add(-r.cfg.Window)
	w := append(r.windows[c.Op], c)
	for len(w) > 0 && w[0].At.Before(cutoff) {
		w = w[1:]
	}
	r.windows[c.Op] = w
	if r.pending[c.Op] || len(w) < r.cfg.MinCalls {
		return ""
	}
	if last, ok := r.last[c.Op]; ok && c.At.Sub(last) < r.cfg.Window {
		return "" // rolled back within this window already
	}
	reason := r.judge(w)
	if reason != "" {
		r.pending[c.Op] = true
		r.last[c.Op] = c.At
		r.windows[c.Op] = nil
	}
	return reason
}

func (r *Rollback) judge(w []Entry) string {
	failed := 0
	durations := make([]time.Duration, 0, len(w))
	for _, c := range w {
		if c.Failed() {
			failed++
		}
		durations = append(durations, c.Duration)
	}
	rate := float64(failed) / float64(len(w))
	if rate > r.cfg.MaxErrorRate {
		return fmt.Sprintf("approach2 error rate %.1f%% > %.1f%% over the last %d calls (%s window)", 100*rate, 100*r.cfg.MaxErrorRate, len(w), r.cfg.Window)
	}
	if p95 := p95(durations); p95 > r.cfg.MaxP95 {
		return fmt.Sprintf("approach2 P95 latency %s > %s over the last %d calls (%s window)", p95, r.cfg.MaxP95, len(w), r.cfg.Window)
	}
	return ""
}

func (r *Rollback) rollBack(op backends.Op, reason string) {
	defer func() {
		r.mu.Lock()
		r.pending[op] = false
		r.mu.Unlock()
	}()
	if err := r.cfg.Apply(string(op), reason); err != nil {
		r.cfg.Logger.Error("AUTOMATIC ROLLBACK FAILED: the operation stays on approach2", "op", op, "reason", reason, "err", err)
		return
	}
	r.mu.Lock()
	r.applied[string(op)] = Applied{At: time.Now().UTC(), Reason: reason}
	r.mu.Unlock()
	r.counter.WithLabelValues(string(op)).Inc()
	r.cfg.Logger.Error("AUTOMATIC ROLLBACK: operation sent back to approach1", "op", op, "reason", reason)
	if r.cfg.Ledger != nil {
		r.cfg.Ledger.Record(Entry{At: time.Now().UTC(), Kind: KindRollback, Op: op, Detail: reason})
	}
}
