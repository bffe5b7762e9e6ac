package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
)

// Outcome tells the caller of Start what to do.
type Outcome int

// The outcomes of Start.
const (
	// Proceed: a new entry was recorded in state started; run the
	// operation and Settle it.
	Proceed Outcome = iota + 1
	// Replay: the operation already ran; return the entry's recorded
	// result or error without running anything.
	Replay
	// Reconcile: an identical operation was started but never settled and
	// has been silent longer than the in-flight timeout (a crash or a lost
	// holder). Check the remote, then call Reconciled or Takeover.
	Reconcile
)

const insertSQL = `INSERT INTO op_journal (project, workspace, idem_key, op, fingerprint, fence, prepared)
	VALUES ($1, $2, $3, $4, $5, $6, $7)
	ON CONFLICT (project, workspace, idem_key) DO NOTHING
	RETURNING ` + entryColumns

const selectByKeySQL = `SELECT ` + entryColumns + `, updated_at < now() - $4::bigint * interval '1 microsecond'
	FROM op_journal WHERE project = $1 AND workspace = $2 AND idem_key = $3`

// Start records the operation described by b before it runs. It returns
// (new entry, Proceed); (recorded entry, Replay) for a settled identical
// request; (recorded entry, Reconcile) for a stale unsettled one. An
// identical request still running is a Conflict wrapping ErrInFlight; the
// same key with a different request is an InvalidArgument wrapping
// ErrKeyReused, and records nothing.
func (j *Journal) Start(ctx context.Context, b Begin) (Entry, Outcome, error) {
	if err := b.validate(); err != nil {
		return Entry{}, 0, err
	}
	// The insert and the read are separate statements on purpose: when the
	// insert collides with a row a concurrent transaction is committing, it
	// waits for that commit and then does nothing, and only a statement
	// started afterwards has a snapshot that sees the row. A row pruned in
	// between makes the read find nothing; then the insert is tried again.
	for range 3 {
		e, err := scanEntry(j.pool.QueryRow(ctx, insertSQL, b.Project, b.Workspace,
			b.IdempotencyKey, b.Op, b.Fingerprint, b.Fence, b.Prepared))
		if err == nil {
			return e, Proceed, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Entry{}, 0, dbError("record the operation", err)
		}
		e, stale, err := j.byKey(ctx, b.Key)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return Entry{}, 0, dbError("read the recorded operation", err)
		}
		return judge(e, stale, b)
	}
	return Entry{}, 0, internalError("record the operation",
		errors.New("the entry kept disappearing between insert and read"))
}

// byKey reads the entry of k and whether it is stale.
func (j *Journal) byKey(ctx context.Context, k Key) (Entry, bool, error) {
	var stale bool
	row := j.pool.QueryRow(ctx, selectByKeySQL, k.Project, k.Workspace,
		k.IdempotencyKey, j.opts.InFlightTimeout.Microseconds())
	e, err := scanEntry(row, &stale)
	return e, stale, err
}

// judge decides what a request b does with the existing entry e.
func judge(e Entry, stale bool, b Begin) (Entry, Outcome, error) {
	switch {
	case e.Op != b.Op || !bytes.Equal(e.Fingerprint, b.Fingerprint):
		return Entry{}, 0, &backends.Error{
			Category: backends.InvalidArgument,
			Message:  "this idempotency key was already used for another request; use a new key for a different request",
			Err:      ErrKeyReused,
		}
	case e.State.Settled():
		return e, Replay, nil
	case stale:
		return e, Reconcile, nil
	}
	return Entry{}, 0, &backends.Error{
		Category: backends.Conflict,
		Message:  "an identical operation with this key is still running; retry later to get its result",
		Err:      ErrInFlight,
	}
}

// StartWait is Start, except that while an identical operation is still
// running it polls until that one settles (then Replay) or goes stale (then
// Reconcile), or until ctx ends, when it returns the Conflict. The service
// calls it with a short deadline so that a quick retry gets the first
// request's result instead of an error.
func (j *Journal) StartWait(ctx context.Context, b Begin) (Entry, Outcome, error) {
	return startWait(ctx, j.Start, b, j.opts.PollInterval)
}

// startWait is StartWait for any journal: start is its Start.
func startWait(ctx context.Context, start func(context.Context, Begin) (Entry, Outcome, error), b Begin, poll time.Duration) (Entry, Outcome, error) {
	e, o, err := start(ctx, b)
	if !errors.Is(err, ErrInFlight) {
		return e, o, err
	}
	inFlight := err
	for {
		if !pause.For(ctx, poll) {
			return Entry{}, 0, inFlight
		}
		e, o, err := start(ctx, b)
		switch {
		case err != nil && ctx.Err() != nil:
			return Entry{}, 0, inFlight // the wait ended mid-query
		case !errors.Is(err, ErrInFlight):
			return e, o, err
		}
	}
}

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case Proceed:
		return "proceed"
	case Replay:
		return "replay"
	case Reconcile:
		return "reconcile"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}
