package branches

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gitgate/gitgate/internal/pgdsn"
	"github.com/gitgate/gitgate/internal/pgschema"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PGStore is a Store in PostgreSQL, shared by a fleet: two tables of JSON
// documents, created on open in the connection's search_path.
type PGStore struct {
	pool *pgxpool.Pool
}

var _ Store = (*PGStore)(nil)

const pgSchema = `
CREATE TABLE IF NOT EXISTS gitgate_branch_pushes (key text PRIMARY KEY, project text NOT NULL, doc jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS gitgate_branch_deletions (id text PRIMARY KEY, doc jsonb NOT NULL);`

// OpenPGStore connects to dsn and creates the tables when missing. Errors
// never carry the DSN (it may hold a password). opts change the pool: with
// pgdsn.Follow, new connections take the user and password of a rotated
// DSN file.
func OpenPGStore(ctx context.Context, dsn string, opts ...pgdsn.Option) (*PGStore, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("branches: postgres: the DSN does not parse")
	}
	pgdsn.Apply(cfg, opts...)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("branches: postgres: %w", err)
	}
	if err := pgschema.Create(ctx, pool, pgSchema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("branches: postgres: create tables: %w", err)
	}
	return &PGStore{pool: pool}, nil
}

// Close closes the connections.
func (s *PGStore) Close() { s.pool.Close() }

// RecordPush implements Store.
func (s *PGStore) RecordPush(ctx context.Context, p Pushed) error {
	return s.exec(ctx, `INSERT INTO gitgate_branch_pushes (key, project, doc) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc`, p.Key(), p.Project, p)
}

// Pushed implements Store.
func (s *PGStore) Pushed(ctx context.Context, project string) ([]Pushed, error) {
	return query[Pushed](ctx, s.pool, `SELECT doc FROM gitgate_branch_pushes WHERE $1 = '' OR project = $1 ORDER BY key`, project)
}

// Forget implements Store.
func (s *PGStore) Forget(ctx context.Context, key string) error {
	return s.exec(ctx, `DELETE FROM gitgate_branch_pushes WHERE key = $1`, key)
}

// RecordDeletion implements Store.
func (s *PGStore) RecordDeletion(ctx context.Context, d Deletion) error {
	return s.exec(ctx, `INSERT INTO gitgate_branch_deletions (id, doc) VALUES ($1, $2)`, d.ID, d)
}

// Deletions implements Store.
func (s *PGStore) Deletions(ctx context.Context) ([]Deletion, error) {
	return query[Deletion](ctx, s.pool, `SELECT doc FROM gitgate_branch_deletions ORDER BY id`)
}

// MarkRestored implements Store.
func (s *PGStore) MarkRestored(ctx context.Context, id string, at time.Time) error {
	ts, err := json.Marshal(at)
	if err != nil {
		return fmt.Errorf("branches: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE gitgate_branch_deletions SET doc = jsonb_set(doc, '{restored_at}', $2::jsonb) WHERE id = $1`, id, string(ts))
	if err != nil {
		return fmt.Errorf("branches: postgres: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("branches: no deletion %q", id)
	}
	return nil
}

// exec runs sql with args, the last of which is a document stored as JSON.
func (s *PGStore) exec(ctx context.Context, sql string, args ...any) error {
	if n := len(args); n > 0 {
		if _, isString := args[n-1].(string); !isString {
			b, err := json.Marshal(args[n-1])
			if err != nil {
				return fmt.Errorf("branches: %w", err)
			}
			args[n-1] = b
		}
	}
	if _, err := s.pool.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("branches: postgres: %w", err)
	}
	return nil
}

// query decodes the doc column of every row.
func query[T any](ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) ([]T, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("branches: postgres: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("branches: postgres: %w", err)
		}
		var x T
		if err := json.Unmarshal(b, &x); err != nil {
			return nil, fmt.Errorf("branches: postgres: %w", err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("branches: postgres: %w", err)
	}
	return out, nil
}
