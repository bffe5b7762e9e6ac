package canary

import (
	"time"

	"github.com/gitgate/gitgate/backends"
)

// Observation is one routed call: the record the router hands to the
// canary machinery (the ledger, the automatic rollback) for every call.
type Observation struct {
	At       time.Time
	Op       backends.Op
	Routed   string // the backend the flags chose
	Backend  string // the backend that served (Approach 1 after a fallback)
	FellBack bool
	Category backends.Category // "" on success
	Duration time.Duration
}

// Failed reports whether the call failed for a reason of the backends'
// (a client's mistake is not a failure).
func (o Observation) Failed() bool { return o.Category.IsBackendFailure() }

// Kind is what a ledger entry records.
type Kind string

// The kinds of ledger entries.
const (
	KindCall       Kind = "call"       // a routed call (Observation)
	KindComparison Kind = "comparison" // a shadow comparison (Comparison)
	KindRollback   Kind = "rollback"   // an automatic rollback
)

func (k Kind) String() string { return string(k) }

// Outcome is how a shadow comparison ended.
type Outcome string

// The outcomes of a shadow comparison.
const (
	OutcomeMatch         Outcome = "match"          // the shadow answered the same
	OutcomeMismatch      Outcome = "mismatch"       // it answered differently (Comparison.Diff says how)
	OutcomeShadowError   Outcome = "shadow_error"   // the shadow failed
	OutcomeShadowTimeout Outcome = "shadow_timeout" // the shadow ran out of its budget
	OutcomeSkipped       Outcome = "skipped"        // no shadow ran (no slot free)
	OutcomeStale         Outcome = "stale"          // the workspace moved on before a write's prediction: not compared
)

func (o Outcome) String() string { return string(o) }

// Comparison is one shadow comparison: the shadow of a call on the other
// backend, compared with what the agent was answered.
type Comparison struct {
	At       time.Time
	Op       backends.Op
	Primary  string // the backend that served the agent
	Shadow   string // the backend that ran the shadow
	Outcome  Outcome
	Diff     string // for mismatches: what differed (not yet redacted)
	Duration time.Duration
}
