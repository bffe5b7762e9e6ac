// Package pgdsntest makes what a test of a rotated PostgreSQL DSN needs.
// The test server trusts loopback connections (any password is accepted),
// so a rotation is shown by the user instead: the DSN is rotated to a new
// role, and a connection's SELECT current_user tells which DSN it used.
package pgdsntest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Role creates a login role of a unique name, dropped when the test ends
// (after the test's own cleanups registered later, such as its pools'),
// and returns its name and dsn (a URL) with the user replaced by it.
func Role(t testing.TB, dsn string) (role, rotated string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		t.Fatalf("the test DSN is not a URL with a user")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	role = "gitgate_rot_" + hex.EncodeToString(b[:])
	admin := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer func() { _ = c.Close(ctx) }()
		_, err = c.Exec(ctx, sql)
		return err
	}
	if err := admin("CREATE ROLE " + role + " LOGIN"); err != nil {
		t.Fatalf("create role: %v", err)
	}
	t.Cleanup(func() {
		if err := admin("DROP OWNED BY " + role + "; DROP ROLE " + role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	u.User = url.User(role)
	return role, u.String()
}

// DSN is a DSN that a test rotates with Set, read with Get (a pool's
// current-DSN function); it is safe for concurrent use.
type DSN struct {
	mu  sync.Mutex
	cur string
}

// NewDSN returns a DSN holding dsn.
func NewDSN(dsn string) *DSN { return &DSN{cur: dsn} }

// Get returns the DSN now.
func (d *DSN) Get() string { d.mu.Lock(); defer d.mu.Unlock(); return d.cur }

// Set rotates the DSN.
func (d *DSN) Set(dsn string) { d.mu.Lock(); d.cur = dsn; d.mu.Unlock() }

// CheckFollows fails the test unless pool follows dsn: it sets dsn to
// rotated (a DSN whose user is role, from Role) while holding a connection
// opened before, then checks that a connection opened after runs as role
// and that the one held still works as the user it had. pool must allow two
// connections; its idle ones are closed first.
func CheckFollows(t testing.TB, pool *pgxpool.Pool, dsn *DSN, rotated, role string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool.Reset() // no idle connection made before the rotation is left
	held, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("a connection before the rotation: %v", err)
	}
	defer held.Release()
	before := currentUser(ctx, t, held.Conn())
	if before == role {
		t.Fatalf("the connection before the rotation already runs as %s", role)
	}
	dsn.Set(rotated)
	fresh, err := pool.Acquire(ctx) // the held one is busy: this one is new
	if err != nil {
		t.Fatalf("a connection after the rotation: %v", err)
	}
	defer fresh.Release()
	if got := currentUser(ctx, t, fresh.Conn()); got != role {
		t.Errorf("a connection opened after the rotation runs as %q, want the rotated DSN's %q", got, role)
	}
	if got := currentUser(ctx, t, held.Conn()); got != before {
		t.Errorf("the connection opened before the rotation runs as %q, want %q still", got, before)
	}
}

func currentUser(ctx context.Context, t testing.TB, c *pgx.Conn) string {
	t.Helper()
	var u string
	if err := c.QueryRow(ctx, "SELECT current_user").Scan(&u); err != nil {
		t.Fatalf("SELECT current_user: %v", err)
	}
	return u
}
