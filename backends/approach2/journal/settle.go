package journal

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gitgate/gitgate/backends"
)

const settleSQL = `UPDATE op_journal
	SET state = $3, result = $4, error_category = $5, error_message = $6,
	    settled_at = now(), updated_at = now()
	WHERE id = $1 AND fence = $2 AND state = 'started'`

// asyncCommitSQL makes the transaction it runs in commit without waiting
// for its WAL to reach the disk (synchronous_commit off for that
// transaction only).
const asyncCommitSQL = `SELECT set_config('synchronous_commit', 'off', true)`

// Settle records the end of the operation id run under fence: state
// Succeeded with a result (JSON, optional), or Failed with an error category
// and message (already redacted by the caller). Only the current holder can
// settle: if the entry is no longer started, or a Takeover gave it a newer
// fence, nothing changes and the error (a Conflict) wraps ErrFenced.
//
// The settle is committed asynchronously, in one round trip (a batch is one
// transaction): the caller does not wait for its WAL flush. The operation
// already happened and its caller has the result; what a PostgreSQL crash
// in the next moments (up to three times wal_writer_delay, 600 ms by
// default) can lose is the record of its end, never a later entry's start:
// WAL is flushed in order, so the next synchronous commit (any entry's
// Start) makes the settle durable first. An entry whose settle was lost is
// found started, and recovered like one whose holder died: run again when
// its operation is idempotent, settled from the remote for a push, unknown
// otherwise. A process crash loses nothing: the commit is in PostgreSQL.
func (j *Journal) Settle(ctx context.Context, id, fence int64, state State, result []byte, category, message string) error {
	if err := validSettle(state, []State{Succeeded, Failed}, result); err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(asyncCommitSQL)
	b.Queue(settleSQL, id, fence, string(state), result, category, message)
	br := j.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return dbError("settle the operation", err)
	}
	if tag.RowsAffected() == 0 {
		return fencedError(id, fence)
	}
	return nil
}

const reconciledSQL = `UPDATE op_journal
	SET state = $2, result = $3, error_category = $4, error_message = $5,
	    reconciled = true, settled_at = now(), updated_at = now()
	WHERE id = $1 AND state = 'started'`

// Reconciled settles a started entry after crash reconciliation found its
// outcome (Succeeded, Failed, or Unknown when the remote cannot tell), and
// marks it reconciled. It ignores the fence, but changes only an entry that
// is still started: otherwise the error (a Conflict) wraps ErrSettled.
func (j *Journal) Reconciled(ctx context.Context, id int64, state State, result []byte, category, message string) error {
	if err := validSettle(state, []State{Succeeded, Failed, Unknown}, result); err != nil {
		return err
	}
	tag, err := j.pool.Exec(ctx, reconciledSQL, id, string(state), result, category, message)
	if err != nil {
		return dbError("settle the reconciled operation", err)
	}
	if tag.RowsAffected() == 0 {
		return &backends.Error{Category: backends.Conflict,
			Message: "the journal entry is already settled", Err: ErrSettled}
	}
	return nil
}

const takeoverSQL = `UPDATE op_journal
	SET fence = $2, attempts = attempts + 1, updated_at = now()
	WHERE id = $1 AND fence < $2 AND state = 'started'`

// Takeover lets a new holder, under lock grant newFence, claim a started
// entry to retry it: the entry gets the new fence (so the previous holder
// can no longer settle it), one more attempt, and a fresh claim time (so
// duplicates wait for the retry instead of reconciling it again). If the
// entry is settled or newFence is not newer, the error wraps ErrFenced.
func (j *Journal) Takeover(ctx context.Context, id, newFence int64) error {
	tag, err := j.pool.Exec(ctx, takeoverSQL, id, newFence)
	if err != nil {
		return dbError("take the operation over", err)
	}
	if tag.RowsAffected() == 0 {
		return fencedError(id, newFence)
	}
	return nil
}

const unsettledSQL = `SELECT ` + entryColumns + ` FROM op_journal
	WHERE state = 'started' AND updated_at <= now() - $1::bigint * interval '1 microsecond'
	ORDER BY id`

// Unsettled lists the entries still started whose last claim is at least
// olderThan ago (0 lists them all), oldest first, for crash reconciliation.
func (j *Journal) Unsettled(ctx context.Context, olderThan time.Duration) ([]Entry, error) {
	rows, err := j.pool.Query(ctx, unsettledSQL, olderThan.Microseconds())
	if err != nil {
		return nil, dbError("list unsettled operations", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) { return scanEntry(r) })
	if err != nil {
		return nil, dbError("list unsettled operations", err)
	}
	return es, nil
}

// Get returns the entry with the given id, or a NotFound error wrapping
// ErrNotFound.
func (j *Journal) Get(ctx context.Context, id int64) (Entry, error) {
	e, err := scanEntry(j.pool.QueryRow(ctx, `SELECT `+entryColumns+` FROM op_journal WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Entry{}, &backends.Error{Category: backends.NotFound, Message: "no journal entry has this id", Err: ErrNotFound}
	}
	if err != nil {
		return Entry{}, dbError("read the operation", err)
	}
	return e, nil
}

const setPreparedSQL = `UPDATE op_journal SET prepared = $3, updated_at = now()
	WHERE id = $1 AND fence = $2 AND state = 'started'`

// SetPrepared records what recovery needs (JSON) on a started entry, once
// the holder knows it: only the current holder (fence) can, as with Settle.
func (j *Journal) SetPrepared(ctx context.Context, id, fence int64, prepared []byte) error {
	if err := validJSON("prepared", prepared); err != nil {
		return err
	}
	tag, err := j.pool.Exec(ctx, setPreparedSQL, id, fence, prepared)
	if err != nil {
		return dbError("record the operation's plan", err)
	}
	if tag.RowsAffected() == 0 {
		return fencedError(id, fence)
	}
	return nil
}
