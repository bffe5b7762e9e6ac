// Package journal is the operation journal of the Approach 2 service: every
// write operation is recorded in PostgreSQL before it runs and settled after,
// so that a retry with the same idempotency key returns the recorded result
// instead of applying the operation twice, and so that operations a crash
// left "started" are reconciled (the remote is checked) rather than repeated.
//
// Keys are scoped by project and workspace (threats.md §4.2). Settling is
// fenced: only the holder of the newest workspace lock grant (its fence) can
// settle an entry, so a paused holder whose lock was taken over cannot
// overwrite the outcome of the retry that replaced it. The journal also
// stores the workspace lock audit trail (it implements lock.Auditor).
package journal

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/pgdsn"
)

// Defaults for Options.
const (
	DefaultStatementTimeout = 5 * time.Second
	DefaultInFlightTimeout  = 10 * time.Minute
	DefaultPollInterval     = 50 * time.Millisecond
	DefaultConnectTimeout   = 5 * time.Second
)

// Options configures a Journal. The zero value uses the defaults.
type Options struct {
	// Logger receives migration and reconciliation notes; nil discards them.
	Logger *slog.Logger
	// StatementTimeout is set as statement_timeout on every connection
	// (default 5s), so a stuck query cannot hold an operation forever.
	StatementTimeout time.Duration
	// InFlightTimeout is how long a started entry blocks a duplicate before
	// it counts as stale and must be reconciled (default 10 min). It is
	// measured from the entry's last claim (its start or latest Takeover).
	InFlightTimeout time.Duration
	// PollInterval is how often StartWait re-reads a running entry
	// (default 50ms).
	PollInterval time.Duration
	// ConnectTimeout bounds one connection attempt when the DSN does not set
	// connect_timeout (default 5s).
	ConnectTimeout time.Duration
	// DSN, if set, is called before each new connection: the connection
	// authenticates with the user and password of the DSN it returns (a
	// rotated secret file), the rest of the DSN given to Open still
	// applies. Connections already open keep the session they
	// authenticated (PostgreSQL checks a password only at connect time)
	// until the pool retires them (pgxpool's MaxConnLifetime, an hour by
	// default). A DSN that does not parse keeps the credentials of Open's
	// (logged once, never the DSN). See internal/pgdsn.
	DSN func() string
	// Tracer, if set, hears of every statement and batch the journal sends
	// (pgx.QueryTracer, and pgx.BatchTracer when it implements it).
	Tracer pgx.QueryTracer
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	if o.InFlightTimeout <= 0 {
		o.InFlightTimeout = DefaultInFlightTimeout
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	return o
}

// Journal is the PostgreSQL-backed operation journal. It is safe for
// concurrent use.
type Journal struct {
	pool *pgxpool.Pool
	opts Options
}

// Open connects to PostgreSQL at dsn (a libpq URL or key=value string; extra
// parameters such as search_path become session settings), applies the
// embedded migrations that are missing, and returns the journal. An
// unreachable database yields an Unavailable error.
func Open(ctx context.Context, dsn string, opts Options) (*Journal, error) {
	opts = opts.withDefaults()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, backends.Errorf(backends.InvalidArgument, "the journal DSN is invalid: %w", err)
	}
	conn := cfg.ConnConfig
	conn.RuntimeParams["statement_timeout"] = strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)
	if conn.ConnectTimeout == 0 {
		conn.ConnectTimeout = opts.ConnectTimeout
	}
	if opts.Tracer != nil {
		conn.Tracer = opts.Tracer
	}
	pgdsn.Apply(cfg, pgdsn.Follow("journal", opts.DSN, opts.Logger))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, dbError("open the connection pool", err)
	}
	j := &Journal{pool: pool, opts: opts}
	if err := j.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return j, nil
}

// Close closes the connection pool; in-flight calls finish first.
func (j *Journal) Close() { j.pool.Close() }

// Ping checks that PostgreSQL answers, for readiness probes.
func (j *Journal) Ping(ctx context.Context) error {
	if err := j.pool.Ping(ctx); err != nil {
		return dbError("ping", err)
	}
	return nil
}
