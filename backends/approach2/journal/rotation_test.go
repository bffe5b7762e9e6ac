package journal

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestNewConnectionsTakeTheCurrentCredentials: with Options.DSN, a new
// connection authenticates as the DSN returned at that moment says, and
// connections already open keep their session. The test's PostgreSQL
// trusts any existing role, so the rotation is shown by the user name: a
// role that does not exist fails the next new connection, and its
// return to a valid DSN makes new connections work again.
func TestNewConnectionsTakeTheCurrentCredentials(t *testing.T) {
	dsn := newSchema(t)
	var mu sync.Mutex
	current := dsn
	set := func(d string) { mu.Lock(); current = d; mu.Unlock() }
	j, err := Open(t.Context(), dsn, Options{DSN: func() string { mu.Lock(); defer mu.Unlock(); return current }})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	j.pool.Reset()                           // no idle connection left from the migrations
	held, err := j.pool.Acquire(t.Context()) // an open connection, kept across the rotation
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()

	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	rotated := strings.Replace(dsn, "://"+cfg.User+"@", "://gitgate_no_such_role_7c1@", 1)
	if rotated == dsn {
		t.Fatalf("the test DSN names no user to replace")
	}
	set(rotated)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	fresh, err := j.pool.Acquire(ctx) // the held one is busy: this one is new
	if err == nil {
		fresh.Release()
		t.Fatal("a new connection after the rotation did not use the rotated DSN's user")
	}
	if !strings.Contains(err.Error(), "gitgate_no_such_role_7c1") {
		t.Fatalf("the new connection failed otherwise than by the rotated user: %v", err)
	}
	var one int
	if err := held.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("the connection open before the rotation: %v", err)
	}
	set(dsn)
	fresh, err = j.pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("a new connection with the valid DSN back: %v", err)
	}
	fresh.Release()
}
