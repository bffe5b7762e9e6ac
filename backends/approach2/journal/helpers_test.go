package journal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gitgate/gitgate/backends"
)

// baseDSN is the PostgreSQL the tests use; GITGATE_TEST_POSTGRES_DSN
// overrides it.
func baseDSN() string {
	if dsn := os.Getenv("GITGATE_TEST_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// newSchema creates a schema of its own for the test and returns a DSN whose
// search_path (a RuntimeParam) selects it. The schema is dropped at cleanup.
// An unreachable PostgreSQL fails the test: these tests need a real one.
func newSchema(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(baseDSN())
	if err != nil {
		t.Fatalf("parse test DSN: %v", err)
	}
	cfg.ConnectTimeout = 3 * time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("PostgreSQL is unreachable at %s:%d (the journal tests need a real PostgreSQL; set GITGATE_TEST_POSTGRES_DSN): %v",
			cfg.Host, cfg.Port, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "j_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { dropSchema(t, cfg, schema) })
	u, err := url.Parse(baseDSN())
	if err != nil {
		t.Fatalf("parse test DSN as URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func dropSchema(t *testing.T, cfg *pgx.ConnConfig, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
	}
}

// newJournal opens a journal on a fresh schema; it is closed at cleanup.
func newJournal(t *testing.T, opts Options) *Journal {
	t.Helper()
	j, err := Open(testCtx(t), newSchema(t), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(j.Close)
	return j
}

// testCtx bounds every call of a test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// begin returns a Begin for key with a fingerprint of request.
func begin(t *testing.T, k Key, op string, request any, fence int64) Begin {
	t.Helper()
	fp, err := Fingerprint(op, request)
	if err != nil {
		t.Fatalf("Fingerprint: %v", err)
	}
	return Begin{Key: k, Op: op, Fingerprint: fp, Fence: fence}
}

// wantErr requires err to be a *backends.Error of category c wrapping target
// (when target is not nil).
func wantErr(t *testing.T, err error, c backends.Category, target error) {
	t.Helper()
	var be *backends.Error
	if !errors.As(err, &be) {
		t.Fatalf("error = %v (%T), want a *backends.Error of category %s", err, err, c)
	}
	if be.Category != c {
		t.Fatalf("error category = %s (%v), want %s", be.Category, err, c)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %v does not wrap %v", err, target)
	}
}

// jsonEqual reports whether a and b hold the same JSON value (jsonb
// normalises spacing and key order).
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("unmarshal %q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("unmarshal %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// count returns the result of a COUNT(*) query.
func count(t *testing.T, j *Journal, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := j.pool.QueryRow(testCtx(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
