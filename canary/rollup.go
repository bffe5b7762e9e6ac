package canary

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// Key names one cell of the ledger's hourly roll-up: an hour of one
// operation's records for the backend the flags chose, at one stage.
type Key struct {
	Hour time.Time // the hour's start, UTC
	// Op is the operation; "" for sandbox lifetimes.
	Op backends.Op
	// Routed is the backend the flags chose (for a comparison, the
	// primary; for a sandbox, the backend that ran it; "" for a rollback).
	Routed backends.Name
	// Stage is the route's share on Approach 2 (per cent) when the calls
	// were routed; -1 when unknown (old lines, rollbacks, sandboxes,
	// drills); StageDrill for the calls and comparisons of a drill.
	Stage int
}

// StageDrill is the Stage of the cells that hold the calls and
// comparisons a kill-switch drill marked (Entry.Drill): a drill engages
// the kill switch and forces breakers open on purpose, so its fallbacks
// are not Approach 2's failures. No stage judgement, baseline or
// automatic rollback ever counts these cells; the report only says how
// many calls they hold.
const StageDrill = -2

// KeyOf is the cell e belongs to.
func KeyOf(e Entry) Key {
	k := Key{Hour: e.At.UTC().Truncate(time.Hour), Op: e.Op, Routed: e.Routed, Stage: e.Stage}
	switch e.Kind {
	case KindSandbox:
		k.Op, k.Routed, k.Stage = "", e.Backend, -1
	case KindRollback:
		k.Routed, k.Stage = "", -1
	case KindDrill:
		k.Op, k.Routed, k.Stage = "", "", -1
	case KindCall, KindComparison:
		if e.Drill != "" {
			k.Stage = StageDrill
		}
	}
	return k
}

// Cell is the summary of a Key's records. Cells are additive: two cells
// of the same key merge into the summary of both, so a source may hand
// the same key more than once.
type Cell struct {
	Calls     *Calls       `json:"calls,omitempty"`
	Shadow    Shadows      `json:"shadow"`
	Sandboxes Sandboxes    `json:"sandboxes"`
	Rollbacks []RolledBack `json:"rollbacks,omitempty"`
	// Drills are the drill windows recorded in the cell's hour (KindDrill:
	// one per drill and gateway).
	Drills []DrillRun `json:"drills,omitempty"`
}

// Sandboxes summarises sandboxes that ended.
type Sandboxes struct {
	N       int64   `json:"n"`
	Seconds float64 `json:"seconds"`
	CostUSD float64 `json:"cost_usd"`
}

// RolledBack is an automatic rollback found in the ledger.
type RolledBack struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// DrillRun is a kill-switch drill's window on one gateway, as the ledger
// recorded it (KindDrill).
type DrillRun struct {
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"-"` // kept as duration_ms, like the ledger
	ID       string        `json:"id"`
	// Detail is the drill's result on the gateway: "pass: …", "fail: …",
	// "aborted: …" or "expired: …".
	Detail string `json:"detail"`
}

// drillRunJSON is a DrillRun as the roll-ups keep it.
type drillRunJSON struct {
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms"`
	ID         string    `json:"id"`
	Detail     string    `json:"detail"`
}

// MarshalJSON writes d with its duration in milliseconds.
func (d DrillRun) MarshalJSON() ([]byte, error) {
	return json.Marshal(drillRunJSON{At: d.At, DurationMS: durationMS(d.Duration), ID: d.ID, Detail: d.Detail})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (d *DrillRun) UnmarshalJSON(b []byte) error {
	var j drillRunJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*d = DrillRun{At: j.At, Duration: fromMS(j.DurationMS), ID: j.ID, Detail: j.Detail}
	return nil
}

// Result is the drill's result on the gateway: Detail up to its first
// colon ("pass", "fail", "aborted", "expired"), or "unknown".
func (d DrillRun) Result() string {
	result, _, found := strings.Cut(d.Detail, ":")
	result = strings.TrimSpace(result)
	if !found || result == "" || strings.ContainsAny(result, " \t\n") {
		return "unknown"
	}
	return result
}

// Add counts e in c.
func (c *Cell) Add(e Entry) {
	switch e.Kind {
	case KindCall:
		if c.Calls == nil {
			c.Calls = NewCalls()
		}
		c.Calls.Add(e)
	case KindComparison:
		c.Shadow.Add(e)
	case KindSandbox:
		c.Sandboxes.N++
		c.Sandboxes.Seconds += e.Duration.Seconds()
		c.Sandboxes.CostUSD += e.CostUSD
	case KindRollback:
		c.Rollbacks = append(c.Rollbacks, RolledBack{At: e.At.UTC(), Reason: e.Detail})
	case KindDrill:
		c.Drills = append(c.Drills, DrillRun{At: e.At.UTC(), Duration: e.Duration, ID: e.Drill, Detail: e.Detail})
	}
}

// Merge adds o to c.
func (c *Cell) Merge(o *Cell) {
	if o == nil {
		return
	}
	if o.Calls != nil {
		if c.Calls == nil {
			c.Calls = NewCalls()
		}
		c.Calls.Merge(o.Calls)
	}
	c.Shadow.Merge(o.Shadow)
	c.Sandboxes.N += o.Sandboxes.N
	c.Sandboxes.Seconds += o.Sandboxes.Seconds
	c.Sandboxes.CostUSD += o.Sandboxes.CostUSD
	c.Rollbacks = append(c.Rollbacks, o.Rollbacks...)
	c.Drills = append(c.Drills, o.Drills...)
}

// Rollup is an in-memory roll-up: cells by key.
type Rollup map[Key]*Cell

// Add counts e in its cell.
func (r Rollup) Add(e Entry) {
	k := KeyOf(e)
	c := r[k]
	if c == nil {
		c = &Cell{}
		r[k] = c
	}
	c.Add(e)
}

// Source is a ledger the report reads: Cells calls fn for the cells of
// every hour in [since, until), in any order; a key may come more than
// once (cells add up).
type Source interface {
	Cells(ctx context.Context, since, until time.Time, fn func(Key, *Cell) error) error
}

// Entries is a Source over records in memory (tests, the ledger
// generator).
type Entries []Entry

// Cells implements Source.
func (es Entries) Cells(ctx context.Context, since, until time.Time, fn func(Key, *Cell) error) error {
	r := Rollup{}
	for _, e := range es {
		if e.At.Before(since) || !e.At.Before(until) {
			continue
		}
		r.Add(e)
	}
	for k, c := range r {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(k, c); err != nil {
			return err
		}
	}
	return nil
}
