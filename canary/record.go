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
func (o Observation) Failed() bool { return o.Category != "" && !o.Category.IsClientMistake() }

// Comparison is one shadow comparison: the shadow of a call on the other
// backend, compared with what the agent was answered.
type Comparison struct {
	At       time.Time
	Op       backends.Op
	Primary  string // the backend that served the agent
	Shadow   string // the backend that ran the shadow
	Outcome  string // match, mismatch, shadow_error, shadow_timeout, skipped, stale
	Diff     string // for mismatches: what differed (not yet redacted)
	Duration time.Duration
}
