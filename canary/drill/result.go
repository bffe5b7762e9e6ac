package drill

import (
	"time"
)

// Verdict is how a drill ended.
type Verdict string

// The verdicts.
const (
	// Pass: every gateway took the kill switch within the limit, no
	// agent call failed because of it, nothing reached Approach 2 while
	// it was engaged, the forced breaker fell back cleanly and the state
	// afterwards is the state before.
	Pass Verdict = "pass"
	// Fail: the drill ran to its end and a check failed (the reasons say
	// which).
	Fail Verdict = "fail"
	// Aborted: a stop condition ended the drill early (agents' errors
	// above the limit, a gateway stopped answering); the state was put
	// back at once.
	Aborted Verdict = "aborted"
	// Refused: the preflight found a reason not to start (a gateway
	// unreachable or unhealthy, another drill running, the kill switch
	// already on); nothing was changed.
	Refused Verdict = "refused"
	// DryRun: the preflight passed and nothing was changed (--dry-run).
	DryRun Verdict = "dry-run"
	// Recovered: `gitgate drill --recover` put back the state a drill
	// that did not finish had saved before it changed anything.
	Recovered Verdict = "recovered"
)

// Passed reports whether the verdict counts as a passing drill.
func (v Verdict) Passed() bool { return v == Pass }

// Result is one drill run: what `gitgate drill` writes to its history
// directory (<id>.json, and <id>.md for people) and prints. Durations are
// in milliseconds (the fields ending in _ms).
type Result struct {
	// ID names the run: its start time, UTC, as 20261206T031500Z.
	ID      string    `json:"id"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	By      string    `json:"by"`
	Reason  string    `json:"reason"`
	Verdict Verdict   `json:"verdict"`
	// Reasons say why the drill did not pass (empty on a pass).
	Reasons []string `json:"reasons,omitempty"`
	// Notes are what a reader should know that did not fail the drill.
	Notes []string `json:"notes,omitempty"`
	// FlagSource is the flag file the gateways follow (directly or
	// through `gitgate flags serve`) and its revision before the drill.
	FlagSource string `json:"flag_source"`
	Revision   string `json:"flag_revision"`
	// Limits are the settings the drill judged by.
	Limits Limits `json:"limits"`
	// Discovery is the DNS name the gateways were found by (drill.discover);
	// empty when they are configured.
	Discovery string `json:"discovery,omitempty"`
	// Gateways are the per-gateway figures, in the configuration's order
	// (discovered ones: named by their IP, in address order).
	Gateways []GatewayResult `json:"gateways"`
	// Breaker is the forced-breaker check; nil when it did not run.
	Breaker *BreakerCheck `json:"breaker,omitempty"`
	// Restore is whether the state afterwards is the state before.
	Restore RestoreCheck `json:"restore"`
	// Services are the Approach 2 services' own counts of the calls they
	// received while the kill switch was engaged (when configured).
	Services []ServiceResult `json:"services,omitempty"`
	// Phases are when each phase began (the drill's clock); zero for a
	// phase that did not run.
	Phases Phases `json:"phases"`
}

// Phases are the moments a drill changed something.
type Phases struct {
	// Flip: the kill switch was set in the flag source.
	Flip time.Time `json:"flip,omitzero"`
	// Override: the override was set on every gateway.
	Override time.Time `json:"override,omitzero"`
	// Restore: the overrides and the flag source were put back.
	Restore time.Time `json:"restore,omitzero"`
	// Breaker: the breaker was forced open; Released: released.
	Breaker  time.Time `json:"breaker,omitzero"`
	Released time.Time `json:"released,omitzero"`
}

// Limits are what a drill is judged by.
type Limits struct {
	// MaxTimeToEffectMS: a gateway slower than this to stop routing to
	// Approach 2 fails the drill.
	MaxTimeToEffectMS float64 `json:"max_time_to_effect_ms"`
	// HoldMS is how long the kill switch stays engaged once every gateway
	// applies it.
	HoldMS float64 `json:"hold_ms"`
	// MaxErrorRate is the stop condition: agents' calls failing above it
	// (with at least MinCalls calls) abort the drill.
	MaxErrorRate float64 `json:"max_error_rate"`
	MinCalls     int64   `json:"min_calls"`
}

// GatewayResult is one gateway's figures.
type GatewayResult struct {
	Name  string `json:"name"`
	Admin string `json:"admin_url"`
	// Following says whether the gateway applied the flag source's
	// revision before the drill.
	Following bool `json:"following_flag_source"`
	// FlipSourceMS is the time from the flag source's change to the
	// moment this gateway stopped routing to Approach 2 (effective state
	// and its own counters); nil when it did not within the limit.
	FlipSourceMS *float64 `json:"flip_flag_source_ms"`
	// FlipOverrideMS is the same for the admin override, set after.
	FlipOverrideMS *float64 `json:"flip_override_ms"`
	// RestoreMS is the time from the restore to the moment the gateway
	// applied the state before again.
	RestoreMS *float64 `json:"restore_ms"`
	// KilledAt is when the drill knew for sure that the gateway applied
	// the kill switch (its answer saying so had arrived): every call it
	// routed after that, until Phases.Restore, went to Approach 1.
	KilledAt time.Time `json:"killed_at,omitzero"`
	// ProbeMS is when the first of the drill agent's probe calls after
	// the flip was served by Approach 1 (nil without probes).
	ProbeMS *float64 `json:"probe_ms,omitempty"`
	// Calls and FailedCalls are the agents' calls this gateway routed
	// between the flip and the end of the restore, and those that failed
	// for a backend's reason.
	Calls       int64 `json:"calls"`
	FailedCalls int64 `json:"failed_calls"`
	// ResidualCalls are the calls this gateway sent to Approach 2 after
	// it applied the kill switch and before the restore (must be 0).
	ResidualCalls int64 `json:"residual_calls"`
	// Probes and ProbesOnApproach2 count the drill agent's probe calls
	// while the kill switch was engaged, and those Approach 2 served.
	Probes            int `json:"probes"`
	ProbesOnApproach2 int `json:"probes_on_approach2"`
	ProbeFailures     int `json:"probe_failures"`
	// Error says what went wrong with this gateway, if anything.
	Error string `json:"error,omitempty"`
}

// BreakerCheck is the forced-breaker part: one operation's Approach 2
// breaker forced open on every gateway, its calls checked to fall back
// to Approach 1 without errors, and released.
type BreakerCheck struct {
	Op string `json:"op"`
	// ProbeWorkspace is the workspace the probes used, one the flags send
	// to Approach 2 (so that the breaker is consulted); empty when none
	// was found (the operation is at 0 %).
	ProbeWorkspace string `json:"probe_workspace,omitempty"`
	Probes         int    `json:"probes"`
	FellBack       int    `json:"fell_back"`
	Failures       int    `json:"failures"`
	// AgentFailures are the agents' calls that failed on the gateways
	// while the breaker was forced.
	AgentFailures int64 `json:"agent_failures"`
	Released      bool  `json:"released"`
	Passed        bool  `json:"passed"`
}

// RestoreCheck says whether the drill left everything as it found it.
type RestoreCheck struct {
	// FlagSourceIdentical: the flag file's bytes equal the snapshot's.
	FlagSourceIdentical bool `json:"flag_source_identical"`
	// GatewaysRestored: every gateway applies the state it applied
	// before (kill switch, override, routes, local rollbacks, breakers,
	// no drill mark).
	GatewaysRestored bool     `json:"gateways_restored"`
	Differences      []string `json:"differences,omitempty"`
}

// ServiceResult is what one Approach 2 service counted.
type ServiceResult struct {
	Metrics string `json:"metrics_url"`
	// Received is how many operations it received between the moment
	// every gateway applied the kill switch and the restore (must be 0).
	Received int64  `json:"received"`
	Error    string `json:"error,omitempty"`
}
