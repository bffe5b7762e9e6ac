package canary

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/prometheus/client_golang/prometheus"
)

// RollbackConfig configures Rollback.
type RollbackConfig struct {
	// Judge is the judge's configuration: the same as `gitgate canary
	// advance` and the report use, so that one place decides.
	Judge JudgeConfig
	// Apply sends op back to Approach 1 (sets its route to 0 %) and stops
	// its shadow traffic (shadow share 0 %: an operation rolled back gives
	// Approach 2 nothing), recording reason. Required.
	Apply func(op, reason string) error
	// Settle is how long after a rollback the calls and comparisons still
	// routed at the rolled-back stage (until the flags are read again) are
	// not evidence for another rollback: it ends early at the first entry
	// of another stage. Default 1 min.
	Settle time.Duration
	// Ledger, if set, records each rollback.
	Ledger     *Ledger
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Rollback watches each operation's current canary stage and rolls the
// operation back to Approach 1 as soon as the judge (Judge) finds
// Approach 2 worse than Approach 1 over the same period beyond a floor, at
// the configured false-alarm rate: its error rate (a fallback counts
// against Approach 2, so a breaker that stays open rolls the operation
// back too), its P50, P95 or P99 latency, or a proven shadow mismatch
// rate. The judge's tests are anytime-valid, so the watcher may look after
// every Approach 2 call and every mismatch (see everyLookUpTo) without
// inflating false alarms.
//
// Per operation it keeps running summaries (Calls, Shadows: memory bounded
// by their sketches) of the stage the operation's calls were routed at
// (Entry.Stage) since that stage began. A call of another stage starts a
// new stage unless it began before the current stage did (a late call of
// the stage before, ignored). At 100 % Approach 1 gets no routed calls: its
// calls in every stage before, since the watcher started, are the
// baseline.
type Rollback struct {
	cfg     RollbackConfig
	counter *prometheus.CounterVec
	running sync.WaitGroup // rollbacks being applied

	mu  sync.Mutex
	ops map[backends.Op]*stageWatch
	// applied is each operation's last rollback that was applied.
	applied map[string]Applied
}

// stageWatch is one operation's current stage.
type stageWatch struct {
	mu     sync.Mutex
	known  bool // a stage was seen
	stage  int
	since  time.Time // the earliest call of the stage
	a1, a2 *Calls
	shadow Shadows
	// baseline is Approach 1's calls of every stage before the current
	// one since baselineSince, for a stage at 100 % (as the report's
	// judge takes them: one stage alone is often too small to show P95 no
	// worse).
	baseline      *Calls
	baselineSince time.Time
	// pending: a rollback of the operation is being applied.
	pending bool
	// settling is the stage last rolled back, until settled (Settle
	// after the rollback, or an entry of another stage).
	settlingStage int
	settled       time.Time
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
	cfg.Judge = cfg.Judge.WithDefaults()
	if cfg.Settle <= 0 {
		cfg.Settle = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Rollback{cfg: cfg, ops: map[backends.Op]*stageWatch{}, applied: map[string]Applied{},
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_auto_rollbacks_total", Help: "Operations the gateway sent back to Approach 1 on its own, by operation.",
		}, []string{"op"})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(r.counter)
	}
	return r
}

// Observe adds a call (KindCall) or a shadow comparison (KindComparison)
// to its operation's stage and, after an Approach 2 call or a mismatch,
// rolls the operation back if the judge says so. Other entries are
// ignored, and so are a drill's calls and comparisons (Entry.Drill): the
// drill engages the kill switch and forces breakers open on purpose, and
// its fallbacks are not Approach 2's failures.
func (r *Rollback) Observe(e Entry) {
	if (e.Kind != KindCall && e.Kind != KindComparison) || e.Drill != "" {
		return
	}
	reason := r.watch(e.Op).add(e, r.cfg.Judge, r.cfg.Settle)
	if reason != "" {
		// Applied beside the call, which it must not delay.
		r.running.Go(func() { r.rollBack(e.Op, reason) })
	}
}

// Wait returns once every rollback that Observe started has been applied
// (or has failed) and recorded: in the flags, the metric and the ledger.
func (r *Rollback) Wait() { r.running.Wait() }

func (r *Rollback) watch(op backends.Op) *stageWatch {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.ops[op]
	if w == nil {
		w = &stageWatch{a1: NewCalls(), a2: NewCalls()}
		r.ops[op] = w
	}
	return w
}

// everyLookUpTo is how many Approach 2 calls (and mismatches) of a stage
// are each followed by a look: a judgement takes from about 50 µs to
// 150 µs. Past it, one in n/everyLookUpTo is, so that a rollback comes at
// most 1 % of the stage's calls later than it could and a stage of n
// calls costs about everyLookUpTo·(1 + ln(n/everyLookUpTo)) looks.
// Anytime-valid tests allow any schedule of looks.
const everyLookUpTo = 100

// lookAt says whether the n-th Approach 2 call (or mismatch) is looked at.
func lookAt(n int64) bool { return n <= everyLookUpTo || n%(n/everyLookUpTo) == 0 }

// add counts e in the stage and returns why the operation must be rolled
// back now, or "".
func (w *stageWatch) add(e Entry, cfg JudgeConfig, settle time.Duration) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.settling(e) || !w.enter(e) || w.pending {
		// While a rollback is applied, and until the flags are read
		// again, the calls still routed at the rolled-back stage are not
		// evidence for another.
		return ""
	}
	judge := false
	switch {
	case e.Kind == KindComparison:
		w.shadow.Add(e)
		judge = e.Outcome == OutcomeMismatch && lookAt(w.shadow.Mismatch)
	case e.Routed == backends.Approach1:
		w.a1.Add(e)
	case e.Routed == backends.Approach2:
		w.a2.Add(e)
		judge = lookAt(w.a2.N)
	}
	if !judge {
		return ""
	}
	j := Judge(w.input(e.Op, e.At), cfg)
	if j.Verdict != VerdictRollback {
		return ""
	}
	// A next rollback needs evidence of its own.
	w.pending = true
	w.settlingStage, w.settled = w.stage, e.At.Add(settle)
	w.keepBaseline()
	w.a1, w.a2, w.shadow = NewCalls(), NewCalls(), Shadows{}
	return fmt.Sprintf("at the %d%% stage: %s", w.stage, strings.Join(j.Reasons, "; "))
}

// settling says whether e is of the stage last rolled back and came
// within Settle of the rollback; an entry of another stage, or a later
// one, ends the settling.
func (w *stageWatch) settling(e Entry) bool {
	if w.settled.IsZero() {
		return false
	}
	if (e.Stage < 0 || e.Stage == w.settlingStage) && e.At.Before(w.settled) {
		return true
	}
	if e.At.Before(w.since) {
		return true // a late entry of an earlier stage: ignored, and no sign the flags were read again
	}
	w.settled = time.Time{}
	return false
}

// enter moves the watch to e's stage when e starts a new one, and says
// whether e counts in the current stage: not when it is a late entry of
// the stage before. An entry whose stage is unknown (negative) counts in
// the current stage.
func (w *stageWatch) enter(e Entry) bool {
	switch {
	case !w.known:
		w.known, w.stage, w.since = true, max(e.Stage, 0), e.At
		return true
	case e.Stage < 0 || e.Stage == w.stage:
		if e.At.Before(w.since) {
			w.since = e.At
		}
		return true
	case e.At.Before(w.since):
		return false // begun before the current stage: a late entry of the stage before
	}
	w.keepBaseline()
	w.stage, w.since = e.Stage, e.At
	w.a1, w.a2, w.shadow = NewCalls(), NewCalls(), Shadows{}
	return true
}

// SeedBaseline adds Approach 1's calls of op from before the watcher
// started (read back from the ledger, see Baselines) to the baseline a
// stage at 100 % is judged against: without it a gateway restarted at
// 100 % would have no Approach 1 calls to compare with, and could roll
// back only on proven mismatches.
func (r *Rollback) SeedBaseline(op backends.Op, a1 *Calls, since time.Time) {
	if a1 == nil || a1.N == 0 {
		return
	}
	w := r.watch(op)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.baseline == nil {
		w.baseline, w.baselineSince = NewCalls(), since
	}
	w.baseline.Merge(a1)
	if since.Before(w.baselineSince) {
		w.baselineSince = since
	}
}

// Baselines reads Approach 1's calls per operation from src over [since,
// until): the calls the flags routed there, at any stage but a drill's
// (StageDrill), for SeedBaseline.
func Baselines(ctx context.Context, src Source, since, until time.Time) (map[backends.Op]*Calls, error) {
	out := map[backends.Op]*Calls{}
	err := src.Cells(ctx, since, until, func(k Key, c *Cell) error {
		if k.Op == "" || k.Routed != backends.Approach1 || k.Stage == StageDrill || c.Calls == nil {
			return nil
		}
		if out[k.Op] == nil {
			out[k.Op] = NewCalls()
		}
		out[k.Op].Merge(c.Calls)
		return nil
	})
	return out, err
}

// keepBaseline adds the current stage's Approach 1 calls to the baseline.
func (w *stageWatch) keepBaseline() {
	if w.a1.N == 0 {
		return
	}
	if w.baseline == nil {
		w.baseline, w.baselineSince = NewCalls(), w.since
	}
	w.baseline.Merge(w.a1)
}

// input is the judge's view of the stage at now.
func (w *stageWatch) input(op backends.Op, now time.Time) Input {
	in := Input{Op: op, Stage: w.stage, Since: w.since, Now: now, A1: w.a1, A2: w.a2, Shadow: w.shadow, NoForecast: true}
	if w.stage >= 100 && w.a1.N == 0 && w.baseline != nil {
		in.A1 = w.baseline
		in.Baseline = fmt.Sprintf("approach1's calls before the 100%% stage (%s to %s)", w.baselineSince.Format(time.RFC3339), w.since.Format(time.RFC3339))
	}
	return in
}

func (r *Rollback) rollBack(op backends.Op, reason string) {
	defer func() {
		w := r.watch(op)
		w.mu.Lock()
		w.pending = false
		w.mu.Unlock()
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
