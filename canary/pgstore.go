package canary

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/internal/pgdsn"
	"github.com/gitgate/gitgate/internal/pgschema"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ledgerTableSQL creates the ledger's table in the DSN's schema (search_path).
const ledgerTableSQL = `CREATE TABLE IF NOT EXISTS gitgate_canary_ledger (
	id          bigserial PRIMARY KEY,
	at          timestamptz NOT NULL,
	kind        text NOT NULL,
	op          text NOT NULL,
	routed      text NOT NULL DEFAULT '',
	backend     text NOT NULL DEFAULT '',
	fell_back   boolean NOT NULL DEFAULT false,
	category    text NOT NULL DEFAULT '',
	duration_ms double precision NOT NULL DEFAULT 0,
	outcome     text NOT NULL DEFAULT '',
	detail      text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS gitgate_canary_ledger_op_at ON gitgate_canary_ledger (op, at);
ALTER TABLE gitgate_canary_ledger ADD COLUMN IF NOT EXISTS stage integer NOT NULL DEFAULT -1;
ALTER TABLE gitgate_canary_ledger ADD COLUMN IF NOT EXISTS cost_usd double precision NOT NULL DEFAULT 0;
ALTER TABLE gitgate_canary_ledger ADD COLUMN IF NOT EXISTS in_flight integer NOT NULL DEFAULT 0;
ALTER TABLE gitgate_canary_ledger ADD COLUMN IF NOT EXISTS wait_ms double precision NOT NULL DEFAULT 0;
ALTER TABLE gitgate_canary_ledger ADD COLUMN IF NOT EXISTS drill text NOT NULL DEFAULT ''`

// ledgerColumns are the columns Append writes and Read reads, in this
// order. The last five were added later (ALTER TABLE in ledgerTableSQL
// upgrades an older table; its rows read as stage -1, unknown, and
// outside any drill).
var ledgerColumns = []string{"at", "kind", "op", "routed", "backend", "fell_back", "category", "duration_ms", "outcome", "detail",
	"stage", "cost_usd", "in_flight", "wait_ms", "drill"}

// PGStore is the ledger in PostgreSQL, for gateways that share one
// analysis (several replicas) or keep the ledger off their disks.
type PGStore struct {
	pool  *pgxpool.Pool
	ready atomic.Bool // the table is known to exist
}

// NewPGStore prepares a store on dsn without connecting; the table is
// created by Init or, failing that, by the first Append that reaches the
// database. Errors never carry the DSN (it may hold a password). opts
// change the pool: with pgdsn.Follow, new connections take the user and
// password of a rotated DSN file.
func NewPGStore(dsn string, opts ...pgdsn.Option) (*PGStore, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger: the PostgreSQL DSN does not parse")
	}
	cfg.MaxConns = 2 // one flusher, one reader
	pgdsn.Apply(cfg, opts...)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("ledger: PostgreSQL pool: %w", err)
	}
	return &PGStore{pool: pool}, nil
}

// OpenPGStore is NewPGStore and Init: it fails when the database cannot be
// reached.
func OpenPGStore(ctx context.Context, dsn string, opts ...pgdsn.Option) (*PGStore, error) {
	s, err := NewPGStore(dsn, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.Init(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Init creates the ledger table when missing and adds the columns a table
// made by an older version lacks (its rows read as stage -1, unknown).
func (s *PGStore) Init(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	if err := pgschema.Create(ctx, s.pool, ledgerTableSQL); err != nil {
		return fmt.Errorf("ledger: create its table in PostgreSQL: %w", err)
	}
	s.ready.Store(true)
	return nil
}

// Append copies entries in one round trip.
func (s *PGStore) Append(ctx context.Context, entries []Entry) error {
	if err := s.Init(ctx); err != nil {
		return err
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"gitgate_canary_ledger"}, ledgerColumns,
		pgx.CopyFromSlice(len(entries), func(i int) ([]any, error) {
			e := entries[i]
			stage, _ := e.storedStage()
			return []any{e.At, e.Kind, e.Op, e.Routed, e.Backend, e.FellBack, e.Category, durationMS(e.Duration), e.Outcome, e.Detail,
				stage, e.CostUSD, e.InFlight, durationMS(e.Wait), e.Drill}, nil
		}))
	if err != nil {
		return fmt.Errorf("ledger: append %d entries: %w", len(entries), err)
	}
	return nil
}

// Read returns the entries for op (every operation when op is "") at or
// after since, oldest first.
func (s *PGStore) Read(ctx context.Context, op string, since time.Time) ([]Entry, error) {
	rows, err := s.pool.Query(ctx, `SELECT at, kind, op, routed, backend, fell_back, category, duration_ms, outcome, detail,
		stage, cost_usd, in_flight, wait_ms, drill FROM gitgate_canary_ledger WHERE at >= $1 AND ($2 = '' OR op = $2) ORDER BY at, id`, since, op)
	if err != nil {
		return nil, fmt.Errorf("ledger: read: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		var ms, waitMS float64
		err := r.Scan(&e.At, &e.Kind, &e.Op, &e.Routed, &e.Backend, &e.FellBack, &e.Category, &ms, &e.Outcome, &e.Detail,
			&e.Stage, &e.CostUSD, &e.InFlight, &waitMS, &e.Drill)
		e.At, e.Duration, e.Wait = e.At.UTC(), fromMS(ms), fromMS(waitMS)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: read: %w", err)
	}
	return out, nil
}

// Close releases the connections.
func (s *PGStore) Close() { s.pool.Close() }
