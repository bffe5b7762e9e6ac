package journal

import (
	"context"
	"time"
)

// Store is what the exactly-once layer and crash reconciliation need of a
// journal. *Journal (PostgreSQL) implements it for a fleet; an embedded
// implementation serves a single machine. Every implementation keeps the
// same promises: keys scoped by project and workspace, a reused key with
// another request refused (ErrKeyReused), an identical request still
// running reported (ErrInFlight) or waited for (StartWait), settling fenced
// by the workspace lock grant (ErrFenced), and reconciliation changing only
// entries still started (ErrSettled).
type Store interface {
	// Start records the operation b before it runs; see (*Journal).Start.
	Start(ctx context.Context, b Begin) (Entry, Outcome, error)
	// StartWait is Start that waits while an identical operation runs;
	// see (*Journal).StartWait.
	StartWait(ctx context.Context, b Begin) (Entry, Outcome, error)
	// SetPrepared records what recovery needs on a started entry.
	SetPrepared(ctx context.Context, id, fence int64, prepared []byte) error
	// Settle records the end of the operation run under fence.
	Settle(ctx context.Context, id, fence int64, state State, result []byte, category, message string) error
	// Takeover lets a new holder claim a started entry to retry it.
	Takeover(ctx context.Context, id, newFence int64) error
	// Reconciled settles a started entry after reconciliation.
	Reconciled(ctx context.Context, id int64, state State, result []byte, category, message string) error
	// Get returns the entry with the given id (NotFound wrapping
	// ErrNotFound otherwise).
	Get(ctx context.Context, id int64) (Entry, error)
	// Unsettled lists the entries still started whose last claim is at
	// least olderThan ago, oldest first.
	Unsettled(ctx context.Context, olderThan time.Duration) ([]Entry, error)
}

var _ Store = (*Journal)(nil)
