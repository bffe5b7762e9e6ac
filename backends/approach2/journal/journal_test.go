package journal

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

func TestMigrationsApplyOnceUnderConcurrentOpen(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		t.Fatalf("loadMigrations = %d migrations, %v", len(ms), err)
	}
	var wg sync.WaitGroup
	journals := make([]*Journal, 4)
	errs := make([]error, len(journals))
	for i := range journals {
		wg.Go(func() { journals[i], errs[i] = Open(testCtx(t), dsn, Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		t.Cleanup(journals[i].Close)
	}
	j := journals[0]
	wantVersions(t, j, ms)
	var firstApplied time.Time
	if err := j.pool.QueryRow(testCtx(t), `SELECT min(applied_at) FROM schema_migrations`).Scan(&firstApplied); err != nil {
		t.Fatal(err)
	}

	again, err := Open(testCtx(t), dsn, Options{})
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	defer again.Close()
	wantVersions(t, again, ms)
	var applied time.Time
	if err := j.pool.QueryRow(testCtx(t), `SELECT min(applied_at) FROM schema_migrations`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if !applied.Equal(firstApplied) {
		t.Fatalf("applied_at changed from %v to %v: migrations ran again", firstApplied, applied)
	}
}

// wantVersions requires schema_migrations to hold each version exactly once.
func wantVersions(t *testing.T, j *Journal, ms []migration) {
	t.Helper()
	if n := count(t, j, `SELECT count(*) FROM schema_migrations`); n != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
	for _, m := range ms {
		if n := count(t, j, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.version); n != 1 {
			t.Fatalf("version %d recorded %d times, want 1", m.version, n)
		}
	}
}

func TestOpenUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	j, err := Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", Options{})
	if err == nil {
		j.Close()
		t.Fatal("Open on a closed port succeeded")
	}
	wantErr(t, err, backends.Unavailable, nil)
	if msg := backends.MessageOf(err); !strings.HasPrefix(msg, "the journal (PostgreSQL) is unreachable: ") {
		t.Fatalf("message = %q", msg)
	}
	t.Logf("Open failed after %v (connect_timeout 2 s; the context allowed 20 s)", time.Since(start))
}

func TestOpenInvalidDSN(t *testing.T) {
	t.Parallel()
	_, err := Open(context.Background(), "postgres://[::1", Options{})
	wantErr(t, err, backends.InvalidArgument, nil)
}

func TestPing(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
	if err := j.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestStatementTimeoutIsTimeout(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{StatementTimeout: 100 * time.Millisecond})
	var got string
	if err := j.pool.QueryRow(testCtx(t), `SHOW statement_timeout`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "100ms" {
		t.Fatalf("statement_timeout = %q, want 100ms", got)
	}
	_, err := j.pool.Exec(testCtx(t), `SELECT pg_sleep(2)`)
	wantErr(t, dbError("sleep", err), backends.Timeout, nil)
}

func TestCallerDeadlineIsTimeout(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, _, err := j.Start(ctx, begin(t, Key{"p", "w", "k"}, "push", nil, 1))
	wantErr(t, err, backends.Timeout, context.DeadlineExceeded)
}

// TestSettleCommitsAsynchronouslyWithoutLeaking: Settle turns synchronous
// commit off for its own transaction only. The connection it used (the
// pool has one) must commit the next entry's start synchronously: a start
// is what makes a write exactly-once, and must be on disk before it runs.
func TestSettleCommitsAsynchronouslyWithoutLeaking(t *testing.T) {
	t.Parallel()
	j, err := Open(testCtx(t), newSchema(t)+"&pool_max_conns=1", Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(j.Close)
	ctx := testCtx(t)
	setting := func() string {
		var v string
		if err := j.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := setting()
	if before == "off" {
		t.Skip("this PostgreSQL commits asynchronously by default; nothing to check")
	}
	k := Key{Project: "p", Workspace: "w", IdempotencyKey: "k1"}
	e, _, err := j.Start(ctx, begin(t, k, "commit", "a", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Settle(ctx, e.ID, 1, Succeeded, []byte(`{"ok":true}`), "", ""); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	if got := setting(); got != before {
		t.Fatalf("after Settle the connection's synchronous_commit is %q, want %q: the asynchronous commit leaked", got, before)
	}
	got, err := j.Get(ctx, e.ID)
	if err != nil || got.State != Succeeded {
		t.Fatalf("Get = %+v, %v; want the settled entry", got, err)
	}
	// A fenced settle in the same batch shape still reports ErrFenced.
	e2, _, err := j.Start(ctx, begin(t, Key{Project: "p", Workspace: "w", IdempotencyKey: "k2"}, "commit", "b", 2))
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, j.Settle(ctx, e2.ID, 1, Succeeded, nil, "", ""), backends.Conflict, ErrFenced)
	if got := setting(); got != before {
		t.Fatalf("after a fenced Settle synchronous_commit is %q, want %q", got, before)
	}
}
