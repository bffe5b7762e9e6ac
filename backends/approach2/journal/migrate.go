package journal

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one embedded schema change, named NNNN_description.sql.
type migration struct {
	version int64
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations ordered by version.
func loadMigrations() ([]migration, error) {
	paths, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []migration
	for _, p := range paths {
		m, err := readMigration(p)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(a, b int) bool { return ms[a].version < ms[b].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

func readMigration(path string) (migration, error) {
	name := strings.TrimPrefix(path, "migrations/")
	prefix, _, _ := strings.Cut(name, "_")
	v, err := strconv.ParseInt(prefix, 10, 64)
	if err != nil || v <= 0 {
		return migration{}, fmt.Errorf("migration %s: name must start with a positive version number", name)
	}
	body, err := migrationFiles.ReadFile(path)
	if err != nil {
		return migration{}, fmt.Errorf("read migration %s: %w", name, err)
	}
	return migration{version: v, name: name, sql: string(body)}, nil
}

// migrateLockSQL serialises migrators of the same schema: the advisory lock
// is keyed by a constant and the current schema, and it is a transaction
// lock, so it is released by COMMIT, ROLLBACK or a dropped connection alike.
const migrateLockSQL = `SELECT pg_advisory_xact_lock(hashtext('gitgate.journal.migrate'), hashtext(coalesce(current_schema(), '')))`

const migrationsTableSQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    bigint      PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrationStatementTimeout is the least statement_timeout the migration
// transaction runs under. The configured timeout is for the journal's own
// short statements; DDL on a busy server, and waiting for another starter's
// migration lock, may take longer, and a service must not fail to start for it.
const migrationStatementTimeout = 2 * time.Minute

// migrate applies the missing migrations in one transaction under the
// advisory lock: concurrent starters wait for each other, and the later ones
// find everything applied. DDL is transactional in PostgreSQL, so a failed
// migration leaves no half-applied schema. The transaction's statement
// timeout is the larger of the configured one and migrationStatementTimeout.
func (j *Journal) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return internalError("load the schema migrations", err)
	}
	err = pgx.BeginFunc(ctx, j.pool, func(tx pgx.Tx) error {
		return j.applyMissing(ctx, tx, ms)
	})
	if err != nil {
		return dbError("apply the schema migrations", err)
	}
	return nil
}

func (j *Journal) applyMissing(ctx context.Context, tx pgx.Tx, ms []migration) error {
	timeout := max(j.opts.StatementTimeout, migrationStatementTimeout)
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", timeout.Milliseconds())); err != nil {
		return fmt.Errorf("set the migration statement timeout: %w", err)
	}
	if _, err := tx.Exec(ctx, migrateLockSQL); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, migrationsTableSQL); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.version); err != nil {
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
		j.opts.Logger.InfoContext(ctx, "journal migration applied", "version", m.version, "name", m.name)
	}
	return nil
}

func appliedVersions(ctx context.Context, tx pgx.Tx) (map[int64]bool, error) {
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	applied := make(map[int64]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	return applied, nil
}
