package canary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gitgate/gitgate/internal/pgschema"

	"github.com/gitgate/gitgate/backends"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgSourceSQL creates what a PGSource reads and writes, in the DSN's
// schema: the ledger table as PGStore makes it (with the columns added
// since: stage, cost_usd, in_flight, wait_ms, drill), an index on at alone for
// the reads by period, the roll-up and its watermark. It is idempotent.
//
// gitgate_canary_rollup holds the cells of complete hours as JSON (the
// sketches in base64): one row per cell a roll-up run wrote, so a key may
// have several rows (records that arrived after their hour was rolled up
// are rolled up by a later run), which add up. gitgate_canary_rollup_mark
// is its one-row watermark: every ledger row of an hour before hour with
// an id up to last_id is summarised in the roll-up; run numbers the runs.
const pgSourceSQL = ledgerTableSQL + `;
CREATE INDEX IF NOT EXISTS gitgate_canary_ledger_at ON gitgate_canary_ledger (at);
CREATE TABLE IF NOT EXISTS gitgate_canary_rollup (
	hour   timestamptz NOT NULL,
	op     text NOT NULL,
	routed text NOT NULL,
	stage  integer NOT NULL,
	run    bigint NOT NULL,
	part   integer NOT NULL,
	cell   jsonb NOT NULL,
	PRIMARY KEY (hour, op, routed, stage, run, part)
);
CREATE TABLE IF NOT EXISTS gitgate_canary_rollup_mark (
	one     boolean PRIMARY KEY DEFAULT true CHECK (one),
	hour    timestamptz NOT NULL,
	last_id bigint NOT NULL,
	run     bigint NOT NULL
);
INSERT INTO gitgate_canary_rollup_mark (one, hour, last_id, run) VALUES (true, '0001-01-01 00:00:00+00', 0, 0) ON CONFLICT DO NOTHING`

// rollupLockSQL takes the transaction-scoped advisory lock that makes
// roll-ups (and the schema's creation, and pruning) of one schema's
// ledger one at a time, so two reports never roll up the same hours.
const rollupLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '.gitgate_canary_rollup', 0))`

// rawColumns are the ledger columns a PGSource reads, in scanRaw's order.
const rawColumns = `id, at, kind, op, routed, backend, fell_back, category, duration_ms, outcome, detail, stage, cost_usd, in_flight, wait_ms, drill`

// rollupBatch is how many cells a roll-up writes at a time.
const rollupBatch = 256

// PGSource is a Source over the PostgreSQL ledger (PGStore's table). Each
// read first rolls up the hours completed since the last one (hours that
// ended more than RollupGrace ago) into gitgate_canary_rollup, then
// serves those hours from the roll-up and the rest from the raw rows, so
// a read of four weeks reads four weeks of hourly cells and an hour or so
// of rows. The roll-up streams the rows (never holding more than a few
// hours of cells) under an advisory lock, and writes its cells and the new
// watermark in one transaction: a failed or concurrent roll-up leaves the
// previous one intact.
//
// Raw rows stay unless PruneRawBefore deletes them: the report command
// calls it with its configured raw retention, which must be longer than
// what reads the raw rows themselves (canary advance's stage window, the
// automatic rollback).
type PGSource struct {
	pool *pgxpool.Pool
	// Logger receives the roll-up's progress; slog.Default when nil.
	Logger *slog.Logger
	// Now is the clock that says which hours are complete; time.Now when nil.
	Now func() time.Time

	mu   sync.Mutex
	last PGReadStats
}

// PGReadStats says what a PGSource read did, for tests and logs.
type PGReadStats struct {
	// RolledRows is how many ledger rows the read's roll-up summarised,
	// into RolledCells cells (0 and 0 when nothing was new).
	RolledRows  int64
	RolledCells int
	// RollupCells is how many cells the read served from the roll-up;
	// RawRows how many raw rows it aggregated on the fly.
	RollupCells int
	RawRows     int64
	// MaxOpenCells is the most cells a stream held open at once.
	MaxOpenCells int
	// Watermark is the roll-up's hour after the read.
	Watermark time.Time
}

// OpenPGSource connects to the ledger's database at dsn and creates what
// is missing (the ledger table and its new columns, the roll-up tables).
// Errors never carry the DSN (it may hold a password).
func OpenPGSource(ctx context.Context, dsn string) (*PGSource, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("ledger: the PostgreSQL DSN does not parse")
	}
	cfg.MaxConns = 4 // a roll-up holds two: its transaction and the rows it streams
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ledger: PostgreSQL pool: %w", err)
	}
	s := &PGSource{pool: pool}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, rollupLockSQL); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, pgschema.LockSQL); err != nil { // the ledger's table, as PGStore.Init makes it
			return err
		}
		_, err := tx.Exec(ctx, pgSourceSQL)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("ledger: create the roll-up tables in PostgreSQL: %w", err)
	}
	return s, nil
}

// Close releases the connections.
func (s *PGSource) Close() { s.pool.Close() }

// LastRead is what the most recent read that finished did.
func (s *PGSource) LastRead() PGReadStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *PGSource) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *PGSource) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Cells implements Source: the cells of every hour overlapping [since,
// until). It rolls up the hours completed since the last read first.
func (s *PGSource) Cells(ctx context.Context, since, until time.Time, fn func(Key, *Cell) error) error {
	var st PGReadStats
	if err := s.rollUp(ctx, &st); err != nil {
		return err
	}
	from, to := hourSpan(since, until)
	// One snapshot for the watermark, the roll-up and the raw rows, so
	// that every row is counted once.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var wmHour time.Time
		var wmID int64
		if err := tx.QueryRow(ctx, `SELECT hour, last_id FROM gitgate_canary_rollup_mark`).Scan(&wmHour, &wmID); err != nil {
			return fmt.Errorf("ledger roll-up: its watermark: %w", err)
		}
		st.Watermark = wmHour.UTC()
		rows, err := tx.Query(ctx, `SELECT hour, op, routed, stage, cell FROM gitgate_canary_rollup
			WHERE hour >= $1 AND hour < $2 AND hour < $3`, from, to, wmHour)
		if err != nil {
			return fmt.Errorf("ledger roll-up: read: %w", err)
		}
		var k Key
		var raw []byte
		_, err = pgx.ForEachRow(rows, []any{&k.Hour, &k.Op, &k.Routed, &k.Stage, &raw}, func() error {
			c := &Cell{}
			if err := json.Unmarshal(raw, c); err != nil {
				return fmt.Errorf("a cell of %v: %w", k.Hour, err)
			}
			st.RollupCells++
			k.Hour = k.Hour.UTC()
			return fn(k, c)
		})
		if err != nil {
			return fmt.Errorf("ledger roll-up: read: %w", err)
		}
		// Rows that arrived for rolled-up hours after the roll-up (by id),
		// then the hours not rolled up (by time): two queries, so that
		// each is an index range.
		r := &cellStream{from: from, to: to, fn: fn}
		late, err := streamRows(ctx, tx, r, false, `SELECT `+rawColumns+` FROM gitgate_canary_ledger
			WHERE id > $4 AND at >= $1 AND at < least($2::timestamptz, $3::timestamptz) ORDER BY at`, from, to, wmHour, wmID)
		if err != nil {
			return err
		}
		n, err := streamRows(ctx, tx, r, false, `SELECT `+rawColumns+` FROM gitgate_canary_ledger
			WHERE at >= greatest($1::timestamptz, $3::timestamptz) AND at < $2 ORDER BY at`, from, to, wmHour)
		st.RawRows = late + n
		st.MaxOpenCells = max(st.MaxOpenCells, r.maxOpen)
		return err
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.last = st
	s.mu.Unlock()
	return nil
}

// querier is what streamRows queries: a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// streamRows feeds the rows sql selects (rawColumns) to r one at a time,
// as roll-up records when roll is set, and flushes r at the end. It
// returns how many rows it read.
func streamRows(ctx context.Context, q querier, r *cellStream, roll bool, sql string, args ...any) (int64, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("ledger: read: %w", err)
	}
	defer rows.Close()
	var n int64
	var e Entry
	var id int64
	var ms, waitMS float64
	var kind, op, routed, backend, category, outcome string // plain strings: pgx scans them without reflection
	for rows.Next() {
		e = Entry{}
		if err := rows.Scan(&id, &e.At, &kind, &op, &routed, &backend, &e.FellBack, &category, &ms, &outcome, &e.Detail,
			&e.Stage, &e.CostUSD, &e.InFlight, &waitMS, &e.Drill); err != nil {
			return n, fmt.Errorf("ledger: read: %w", err)
		}
		e.Kind, e.Op, e.Routed, e.Backend, e.Category, e.Outcome = Kind(kind), backends.Op(op), backends.Name(routed), backends.Name(backend),
			backends.Category(category), Outcome(outcome)
		e.At, e.Duration, e.Wait = e.At.UTC(), fromMS(ms), fromMS(waitMS)
		n++
		if err := r.add(e, roll); err != nil {
			return n, err
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("ledger: read: %w", err)
	}
	return n, r.flush(func(time.Time) bool { return true })
}

// rollUp summarises into the roll-up the rows of the hours completed
// since the watermark and the rows that arrived for rolled-up hours since
// the last run, and moves the watermark, in one transaction under the
// advisory lock: a concurrent read waits for it and then finds nothing
// new.
func (s *PGSource) rollUp(ctx context.Context, st *PGReadStats) error {
	complete := completeBefore(s.now())
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, rollupLockSQL); err != nil {
			return err
		}
		var wmHour time.Time
		var wmID, run, maxID int64
		if err := tx.QueryRow(ctx, `SELECT hour, last_id, run FROM gitgate_canary_rollup_mark FOR UPDATE`).Scan(&wmHour, &wmID, &run); err != nil {
			return fmt.Errorf("its watermark: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM gitgate_canary_ledger`).Scan(&maxID); err != nil {
			return err
		}
		wmHour = wmHour.UTC()
		if !complete.After(wmHour) && maxID == wmID {
			return nil // nothing new
		}
		newHour := maxTime(wmHour, complete)
		run++
		var batch [][]any
		part := 0
		write := func() error {
			if len(batch) == 0 {
				return nil
			}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"gitgate_canary_rollup"}, []string{"hour", "op", "routed", "stage", "run", "part", "cell"},
				pgx.CopyFromRows(batch))
			batch = batch[:0]
			return err
		}
		r := &cellStream{fn: func(Key, *Cell) error { return nil }, keep: func(k Key, c *Cell) error {
			b, err := json.Marshal(c)
			if err != nil {
				return err
			}
			part++
			batch = append(batch, []any{k.Hour, string(k.Op), string(k.Routed), k.Stage, run, part, string(b)})
			if len(batch) >= rollupBatch {
				return write()
			}
			return nil
		}}
		// The rows are streamed on another connection (this one writes the
		// cells as they come); the lock keeps other roll-ups out. First the
		// rows that arrived for rolled-up hours since the last run (by id),
		// then the newly complete hours (by time): each an index range.
		late, err := streamRows(ctx, s.pool, r, true, `SELECT `+rawColumns+` FROM gitgate_canary_ledger
			WHERE id > $1 AND id <= $2 AND at < $3 ORDER BY at`, wmID, maxID, wmHour)
		if err != nil {
			return err
		}
		n, err := streamRows(ctx, s.pool, r, true, `SELECT `+rawColumns+` FROM gitgate_canary_ledger
			WHERE at >= $1 AND at < $2 AND id <= $3 ORDER BY at`, wmHour, newHour, maxID)
		if err != nil {
			return err
		}
		n += late
		if err := write(); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE gitgate_canary_rollup_mark SET hour = $1, last_id = $2, run = $3`, newHour, maxID, run); err != nil {
			return err
		}
		st.RolledRows, st.RolledCells, st.MaxOpenCells = n, part, r.maxOpen
		s.logger().Debug("ledger rolled up", "rows", n, "cells", part, "until", newHour, "run", run)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger roll-up: %w", err)
	}
	return nil
}

// RollUp rolls the complete hours after the watermark up, as Cells does
// before it reads: what a gateway runs now and then so that the roll-up
// keeps up without a report being read.
func (s *PGSource) RollUp(ctx context.Context) error {
	var st PGReadStats
	return s.rollUp(ctx, &st)
}

// PruneRawBefore deletes the raw ledger rows older than t that are
// already rolled up (of an hour before the watermark, with an id the
// roll-up has seen), keeping rollbacks (KindRollback), and returns how
// many it deleted. Reads through PGSource are unchanged by it; what reads
// the raw rows itself (PGStore.Read: canary advance, the automatic
// rollback) no longer sees them, so t must be older than their windows.
// The report command calls it with its configured raw retention.
func (s *PGSource) PruneRawBefore(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, rollupLockSQL); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM gitgate_canary_ledger
			WHERE at < least($1::timestamptz, (SELECT hour FROM gitgate_canary_rollup_mark))
			  AND id <= (SELECT last_id FROM gitgate_canary_rollup_mark) AND kind <> $2`, t, string(KindRollback))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: prune raw rows: %w", err)
	}
	return n, nil
}
