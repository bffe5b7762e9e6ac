package canary

import (
	"context"
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
	// were routed; -1 when unknown (old lines, rollbacks, sandboxes).
	Stage int
}

// KeyOf is the cell e belongs to.
func KeyOf(e Entry) Key {
	k := Key{Hour: e.At.UTC().Truncate(time.Hour), Op: e.Op, Routed: e.Routed, Stage: e.Stage}
	switch e.Kind {
	case KindSandbox:
		k.Op, k.Routed, k.Stage = "", e.Backend, -1
	case KindRollback:
		k.Routed, k.Stage = "", -1
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
