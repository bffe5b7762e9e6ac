package budget

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/internal/pgdsn"
	"github.com/gitgate/gitgate/internal/pgschema"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PGStore keeps spend in PostgreSQL, shared by a fleet and durable: a row
// per month and scope (gitgate_budget_spend, added to by upsert), a row
// per month for its first charge (gitgate_budget_months) and a row per
// sandbox for its charge mark (gitgate_budget_marks). The tables are made
// in the DSN's search_path when missing.
type PGStore struct {
	pool  *pgxpool.Pool
	swept atomic.Int64 // when marks past their retention were last deleted (Unix seconds)
}

const pgSchema = `
CREATE TABLE IF NOT EXISTS gitgate_budget_spend (
	month text NOT NULL, scope text NOT NULL, usd double precision NOT NULL DEFAULT 0,
	PRIMARY KEY (month, scope));
CREATE TABLE IF NOT EXISTS gitgate_budget_months (
	month text PRIMARY KEY, since timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS gitgate_budget_marks (
	sandbox text PRIMARY KEY, until timestamptz, ended boolean NOT NULL DEFAULT false,
	updated timestamptz NOT NULL DEFAULT now());`

// OpenPGStore connects to dsn and creates the tables when missing. Errors
// never carry the DSN (it may hold a password). opts change the pool: with
// pgdsn.Follow, new connections take the user and password of a rotated
// DSN file.
func OpenPGStore(ctx context.Context, dsn string, opts ...pgdsn.Option) (*PGStore, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("budget store (postgres): the DSN does not parse")
	}
	cfg.MaxConns = 4
	pgdsn.Apply(cfg, opts...)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("budget store (postgres): %w", err)
	}
	if err := pgschema.Create(ctx, pool, pgSchema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("budget store (postgres): create tables: %w", err)
	}
	return &PGStore{pool: pool}, nil
}

// Advance implements Store, in a transaction that locks the sandbox's row.
func (s *PGStore) Advance(ctx context.Context, sandbox string, until time.Time, end bool) (Mark, error) {
	var prev Mark
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO gitgate_budget_marks (sandbox) VALUES ($1) ON CONFLICT DO NOTHING`, sandbox); err != nil {
			return err
		}
		var u *time.Time
		if err := tx.QueryRow(ctx, `SELECT until, ended FROM gitgate_budget_marks WHERE sandbox = $1 FOR UPDATE`, sandbox).Scan(&u, &prev.Ended); err != nil {
			return err
		}
		if u != nil {
			prev.Until = u.UTC()
		}
		if prev.Ended {
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE gitgate_budget_marks SET until = GREATEST(until, $2), ended = $3, updated = now() WHERE sandbox = $1`,
			sandbox, until, end)
		return err
	})
	if err != nil {
		return Mark{}, fmt.Errorf("budget store (postgres): %w", err)
	}
	return prev, nil
}

// Add implements Store, and at most hourly deletes marks and months past
// their retention.
func (s *PGStore) Add(ctx context.Context, month Month, at time.Time, amounts map[string]float64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Rows are locked in one order (the scopes sorted) by every
		// process: two charges of the same scopes in map order deadlock.
		for _, scope := range slices.Sorted(maps.Keys(amounts)) {
			usd := amounts[scope]
			if _, err := tx.Exec(ctx, `INSERT INTO gitgate_budget_spend (month, scope, usd) VALUES ($1, $2, $3)
				ON CONFLICT (month, scope) DO UPDATE SET usd = gitgate_budget_spend.usd + EXCLUDED.usd`, string(month), scope, usd); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO gitgate_budget_months (month, since) VALUES ($1, $2)
			ON CONFLICT (month) DO UPDATE SET since = LEAST(gitgate_budget_months.since, EXCLUDED.since)`, string(month), at)
		return err
	})
	if err != nil {
		return fmt.Errorf("budget store (postgres): %w", err)
	}
	if last := s.swept.Load(); time.Since(time.Unix(last, 0)) > time.Hour && s.swept.CompareAndSwap(last, time.Now().Unix()) {
		_, _ = s.pool.Exec(ctx, `DELETE FROM gitgate_budget_marks WHERE updated < now() - make_interval(secs => $1)`, markTTL.Seconds())
		_, _ = s.pool.Exec(ctx, `DELETE FROM gitgate_budget_spend WHERE month < $1`, string(MonthOf(month.Start().Add(-spendTTL))))
	}
	return nil
}

// Spent implements Store.
func (s *PGStore) Spent(ctx context.Context, month Month) (Spend, error) {
	out := Spend{ByScope: map[string]float64{}}
	rows, err := s.pool.Query(ctx, `SELECT scope, usd FROM gitgate_budget_spend WHERE month = $1`, string(month))
	if err != nil {
		return Spend{}, fmt.Errorf("budget store (postgres): %w", err)
	}
	for rows.Next() {
		var scope string
		var usd float64
		if err := rows.Scan(&scope, &usd); err != nil {
			rows.Close()
			return Spend{}, fmt.Errorf("budget store (postgres): %w", err)
		}
		out.ByScope[scope] = usd
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Spend{}, fmt.Errorf("budget store (postgres): %w", err)
	}
	err = s.pool.QueryRow(ctx, `SELECT since FROM gitgate_budget_months WHERE month = $1`, string(month)).Scan(&out.Since)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Spend{}, fmt.Errorf("budget store (postgres): %w", err)
	}
	out.Since = out.Since.UTC()
	if errors.Is(err, pgx.ErrNoRows) {
		out.Since = time.Time{}
	}
	return out, nil
}

// Close implements Store.
func (s *PGStore) Close() error {
	s.pool.Close()
	return nil
}
