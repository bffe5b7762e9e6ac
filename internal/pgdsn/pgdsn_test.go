package pgdsn_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/pgdsn"
	"github.com/gitgate/gitgate/internal/pgdsn/pgdsntest"
)

// TestPoolFollowsRotatedUser: a real pool with Follow opens its connections
// after a rotation as the new DSN's user, and keeps those opened before.
func TestPoolFollowsRotatedUser(t *testing.T) {
	dsn := backendtest.PostgresDSN(t)
	role, rotated := pgdsntest.Role(t, dsn)
	cur := pgdsntest.NewDSN(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pgdsn.Apply(cfg, pgdsn.Follow("test", cur.Get, nil))
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pgdsntest.CheckFollows(t, pool, cur, rotated, role)
}

// beforeConnect runs cfg's BeforeConnect on a copy of its connection
// configuration, as pgxpool does, and returns the copy.
func beforeConnect(t *testing.T, cfg *pgxpool.Config) *pgx.ConnConfig {
	t.Helper()
	cc := cfg.ConnConfig.Copy()
	if cfg.BeforeConnect != nil {
		if err := cfg.BeforeConnect(context.Background(), cc); err != nil {
			t.Fatal(err)
		}
	}
	return cc
}

func TestFollow(t *testing.T) {
	const start = "postgres://alice:old@127.0.0.1:5432/test?sslmode=disable&search_path=s1"
	t.Run("nil keeps the DSN of the start", func(t *testing.T) {
		cfg, _ := pgxpool.ParseConfig(start)
		pgdsn.Apply(cfg, pgdsn.Follow("test", nil, nil))
		if cfg.BeforeConnect != nil {
			t.Fatal("Follow(nil) set a BeforeConnect")
		}
	})
	t.Run("only the user and password follow", func(t *testing.T) {
		cfg, _ := pgxpool.ParseConfig(start)
		cur := pgdsntest.NewDSN(start)
		pgdsn.Apply(cfg, pgdsn.Follow("test", cur.Get, nil))
		cur.Set("postgres://bob:new@192.0.2.1:6543/other?search_path=s2")
		cc := beforeConnect(t, cfg)
		if cc.User != "bob" || cc.Password != "new" {
			t.Errorf("credentials %q/%q, want bob/new", cc.User, cc.Password)
		}
		if cc.Host != "127.0.0.1" || cc.Port != 5432 || cc.Database != "test" || cc.RuntimeParams["search_path"] != "s1" {
			t.Errorf("the rest of the DSN changed: %s:%d/%s search_path=%s", cc.Host, cc.Port, cc.Database, cc.RuntimeParams["search_path"])
		}
	})
	t.Run("a DSN that does not parse keeps the start's, logged once without it", func(t *testing.T) {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, nil))
		cfg, _ := pgxpool.ParseConfig(start)
		cur := pgdsntest.NewDSN(start)
		pgdsn.Apply(cfg, pgdsn.Follow("ledger", cur.Get, log))
		cur.Set("host=127.0.0.1 user=carol password=s3cr3t port=notaport")
		for range 3 {
			if cc := beforeConnect(t, cfg); cc.User != "alice" || cc.Password != "old" {
				t.Fatalf("credentials %q/%q, want the start's alice/old", cc.User, cc.Password)
			}
		}
		if n := strings.Count(buf.String(), "does not parse"); n != 1 {
			t.Errorf("%d warnings, want 1: %s", n, buf.String())
		}
		if !strings.Contains(buf.String(), "pool=ledger") || strings.Contains(buf.String(), "s3cr3t") || strings.Contains(buf.String(), "carol") {
			t.Errorf("the warning should name the pool and never the DSN: %s", buf.String())
		}
		cur.Set("postgres://dave:pw@127.0.0.1/test")
		if cc := beforeConnect(t, cfg); cc.User != "dave" {
			t.Errorf("a DSN that parses again: user %q, want dave", cc.User)
		}
	})
	t.Run("a BeforeConnect already set runs first", func(t *testing.T) {
		cfg, _ := pgxpool.ParseConfig(start)
		called := false
		cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
			called = true
			cc.User = "from-the-first"
			return nil
		}
		cur := pgdsntest.NewDSN("postgres://erin@127.0.0.1/test")
		pgdsn.Apply(cfg, pgdsn.Follow("test", cur.Get, nil))
		if cc := beforeConnect(t, cfg); !called || cc.User != "erin" {
			t.Errorf("first called %v, user %q; want true, erin", called, cc.User)
		}
	})
}
