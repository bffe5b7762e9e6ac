// Package pgdsn lets a long-lived PostgreSQL pool follow a rotated DSN (a
// secret file such as postgres.dsn_file, re-read when it changes): each new
// connection authenticates with the user and password the DSN holds at
// that moment. PostgreSQL checks a password only at connect time, so the
// connections already open keep their session until the pool retires them
// (pgxpool's MaxConnLifetime, an hour by default); a rotation that keeps
// the old password valid until then loses nothing. Only the user and
// password follow: the host, database and session settings stay those the
// pool was made with. The DSN is never logged (it may hold a password).
package pgdsn

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BeforeConnect is a pgxpool BeforeConnect that gives each new connection
// the user and password of the DSN current returns now. A DSN that does not
// parse keeps the credentials already in the connection's configuration
// (those the pool was made with); it is logged on log, naming pool, once
// until a DSN parses again. log nil: slog.Default().
func BeforeConnect(pool string, current func() string, log *slog.Logger) func(context.Context, *pgx.ConnConfig) error {
	if log == nil {
		log = slog.Default()
	}
	var warned atomic.Bool
	return func(_ context.Context, cc *pgx.ConnConfig) error {
		cur, err := pgx.ParseConfig(current())
		if err != nil {
			if warned.CompareAndSwap(false, true) {
				log.Warn("the current PostgreSQL DSN does not parse; new connections use the credentials of the start", "pool", pool)
			}
			return nil
		}
		warned.Store(false)
		cc.User, cc.Password = cur.User, cur.Password
		return nil
	}
}

// Option changes a pool's configuration before the pool is made; the
// PostgreSQL stores' constructors take them.
type Option func(*pgxpool.Config)

// Follow is the Option that makes the pool's new connections take the
// current user and password (BeforeConnect), after any BeforeConnect the
// configuration already had. current nil: the pool keeps the DSN it was
// made with.
func Follow(pool string, current func() string, log *slog.Logger) Option {
	return func(cfg *pgxpool.Config) {
		if current == nil {
			return
		}
		follow := BeforeConnect(pool, current, log)
		prev := cfg.BeforeConnect
		if prev == nil {
			cfg.BeforeConnect = follow
			return
		}
		cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
			if err := prev(ctx, cc); err != nil {
				return err
			}
			return follow(ctx, cc)
		}
	}
}

// Apply applies opts to cfg in order.
func Apply(cfg *pgxpool.Config, opts ...Option) {
	for _, o := range opts {
		o(cfg)
	}
}
