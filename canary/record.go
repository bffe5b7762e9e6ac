package canary

import (
	"time"

	"github.com/gitgate/gitgate/backends"
)

// Entry is the one record of the canary machinery: the gateway's router
// builds it for every routed call (KindCall) and shadow comparison
// (KindComparison) and hands it to the Recorder, which writes it to the
// ledger and gives calls and comparisons to the automatic rollback; the
// rollback adds its own (KindRollback). The rollback watcher, `gitgate
// canary advance` and the report judge these same records (Judge), the
// ones in memory and the ones read back from the ledger (ReadFile,
// PGStore.Read).
type Entry struct {
	At   time.Time
	Kind Kind
	Op   backends.Op
	// Routed is the backend the flags chose; for a comparison, the
	// primary, which served the agent.
	Routed backends.Name
	// Backend is the backend that served the call (Approach 1 after a
	// fallback); for a comparison, the one that ran the shadow.
	Backend  backends.Name
	FellBack bool
	Category backends.Category // the call's error category; "" on success
	// Duration is the call's or the shadow's; the ledger keeps it in
	// milliseconds, to the microsecond.
	Duration time.Duration
	Outcome  Outcome // comparisons only
	// Stage is the share (per cent) of the operation's workspaces routed
	// to Approach 2 when the call was routed; -1 when unknown (a line
	// written before stages were recorded).
	Stage int
	// CostUSD is what the call's sandbox commands cost (backends.Served);
	// for a KindSandbox entry, what the sandbox cost over its life.
	CostUSD float64
	// InFlight is how many calls this gateway had in flight when the call
	// started, itself included (the decision framework's concurrency).
	InFlight int
	// Wait is how long the call queued for its workspace lock or a pooled
	// sandbox (backends.Served.Wait).
	Wait time.Duration
	// Detail is a comparison's diff, a rollback's reason or a drill's
	// result. The Recorder redacts it before it is written.
	Detail string
	// Drill is the id of the kill-switch drill (`gitgate drill`) that
	// marked the gateway when the call was routed, "" outside drills; on
	// a KindDrill entry, the drill's own id. Calls made during a drill are
	// the drill's (a kill switch engaged on purpose, a breaker forced
	// open): they are never judged against Approach 2.
	Drill string
}

// Failed reports whether the call counts against the backend it was
// routed to: it fell back, or failed for a reason of the backends' (a
// client's mistake is not a failure).
func (e Entry) Failed() bool { return e.FellBack || e.Category.IsBackendFailure() }

// Kind is what a ledger entry records.
type Kind string

// The kinds of ledger entries.
const (
	KindCall       Kind = "call"       // a routed call
	KindComparison Kind = "comparison" // a shadow comparison
	KindRollback   Kind = "rollback"   // an automatic rollback
	// KindSandbox is a sandbox that ended: Backend is the one that ran it,
	// Duration its life and CostUSD what that life cost.
	KindSandbox Kind = "sandbox"
	// KindDrill is a kill-switch drill's window on one gateway: At its
	// start, Duration its length, Drill its id, Detail its result.
	KindDrill Kind = "drill"
)

func (k Kind) String() string { return string(k) }

// Outcome is how a shadow comparison ended.
type Outcome string

// The outcomes of a shadow comparison.
const (
	OutcomeMatch         Outcome = "match"          // the shadow answered the same
	OutcomeMismatch      Outcome = "mismatch"       // it answered differently (Entry.Detail says how)
	OutcomeShadowError   Outcome = "shadow_error"   // the shadow failed
	OutcomeShadowTimeout Outcome = "shadow_timeout" // the shadow ran out of its budget
	OutcomeSkipped       Outcome = "skipped"        // no shadow ran (no slot free)
	OutcomeStale         Outcome = "stale"          // the workspace moved on before a write's prediction: not compared
)

func (o Outcome) String() string { return string(o) }
