package budget

import (
	"context"
	"time"
)

// TotalScope is the scope of the overall budget, beside the projects'
// scopes (their names); it is also the metrics' project label for it.
const TotalScope = "_total"

// Store keeps month-to-date spend and the sandboxes' charge marks. It is
// shared by the processes of a fleet; every method is safe for concurrent
// use by them.
type Store interface {
	// Advance moves sandbox's charge mark to until (never backwards) and
	// returns the mark it had: zero when it had none. With end the
	// sandbox is marked ended: later Advances change nothing and return
	// Ended. A sandbox already ended is not advanced.
	Advance(ctx context.Context, sandbox string, until time.Time, end bool) (Mark, error)
	// Add adds amounts (US dollars by scope) to month's spend; at is when
	// the spend happened, kept as the month's first charge when it is the
	// earliest.
	Add(ctx context.Context, month Month, at time.Time, amounts map[string]float64) error
	// Spent returns month's spend.
	Spent(ctx context.Context, month Month) (Spend, error)
	// Close releases what the store holds (not a shared client it was given).
	Close() error
}

// Mark is how far a sandbox has been charged.
type Mark struct {
	Until time.Time // zero when never charged
	Ended bool      // the sandbox ended: nothing more is charged for it
}

// Spend is a month's spend.
type Spend struct {
	ByScope map[string]float64 // US dollars by scope (TotalScope, project names)
	// Since is the month's first charge (zero when nothing was charged):
	// the forecast extrapolates from it.
	Since time.Time
}

// markTTL is how long a sandbox's mark is kept after its last charge: far
// beyond any sandbox's life without a charge (a process charges its live
// sandboxes every Interval).
const markTTL = 35 * 24 * time.Hour

// spendTTL is how long a month's spend is kept after its last charge.
const spendTTL = 100 * 24 * time.Hour
