package journal

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gitgate/gitgate/backends/lock"
)

var _ lock.Auditor = (*Journal)(nil)

// RecordLockEvent appends e to the lock audit trail (lock.Auditor). A zero
// e.At is recorded as the database's current time.
func (j *Journal) RecordLockEvent(ctx context.Context, e lock.AuditEvent) error {
	var at *time.Time
	if !e.At.IsZero() {
		at = &e.At
	}
	_, err := j.pool.Exec(ctx, `INSERT INTO lock_audit (key, holder, fence, event, at)
		VALUES ($1, $2, $3, $4, coalesce($5, now()))`, e.Key, e.Holder, e.Fence, e.Event, at)
	if err != nil {
		return dbError("record the lock event", err)
	}
	return nil
}

// LockEvents returns the audit trail of one lock key in the order it was
// recorded, for tests and operators.
func (j *Journal) LockEvents(ctx context.Context, key string) ([]lock.AuditEvent, error) {
	rows, err := j.pool.Query(ctx, `SELECT key, holder, fence, event, at
		FROM lock_audit WHERE key = $1 ORDER BY id`, key)
	if err != nil {
		return nil, dbError("read the lock events", err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (lock.AuditEvent, error) {
		var e lock.AuditEvent
		err := r.Scan(&e.Key, &e.Holder, &e.Fence, &e.Event, &e.At)
		return e, err
	})
	if err != nil {
		return nil, dbError("read the lock events", err)
	}
	return events, nil
}
