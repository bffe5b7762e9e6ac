// Package pgschema creates gitgate's PostgreSQL tables when several
// processes start at once. `CREATE TABLE IF NOT EXISTS` is not safe against
// itself: two sessions that both find the table missing both create it, and
// the second fails on the catalog's unique index (pg_type_typname_nsp_index).
// A fleet's gateways open the same ledger, budget and branch tables at the
// same moment, so every such statement runs in a transaction under one
// advisory lock per schema: the later starters wait, then find the tables.
package pgschema

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LockSQL takes the transaction-scoped advisory lock that serialises
// gitgate's schema changes in the current schema. It is released by COMMIT,
// ROLLBACK or a dropped connection alike.
const LockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('gitgate.schema.' || coalesce(current_schema(), ''), 0))`

// Create runs ddl (one or more statements, each idempotent) in one
// transaction under LockSQL's lock.
func Create(ctx context.Context, pool *pgxpool.Pool, ddl string) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, LockSQL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, ddl)
		return err
	})
}
