package pgschema_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/pgschema"
	"github.com/jackc/pgx/v5/pgxpool"
)

const ddl = `CREATE TABLE IF NOT EXISTS t_one (id bigint PRIMARY KEY, doc jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS t_two (id text PRIMARY KEY);
CREATE INDEX IF NOT EXISTS t_one_doc ON t_one ((doc->>'k'))`

// schemaPools makes a schema of its own and n pools whose connections use it,
// as n processes starting at once would.
func schemaPools(t *testing.T, n int) []*pgxpool.Pool {
	t.Helper()
	ctx := t.Context()
	dsn := backendtest.PostgresDSN(t)
	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "pgschema_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE") })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	pools := make([]*pgxpool.Pool, n)
	for i := range pools {
		if pools[i], err = pgxpool.New(ctx, u.String()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pools[i].Close)
	}
	return pools
}

// TestCreateConcurrently starts eight creators of the same tables at once,
// each on its own pool, over several fresh schemas: every one succeeds and
// the tables exist. (Without the lock, concurrent CREATE TABLE IF NOT EXISTS
// fails now and then on pg_type_typname_nsp_index: three gateways starting
// together lost one of them to it.)
func TestCreateConcurrently(t *testing.T) {
	for round := range 5 {
		pools := schemaPools(t, 8)
		var wg sync.WaitGroup
		errs := make([]error, len(pools))
		start := make(chan struct{})
		for i, p := range pools {
			wg.Go(func() {
				<-start
				errs[i] = pgschema.Create(t.Context(), p, ddl)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, creator %d: %v", round, i, err)
			}
		}
		var n int
		if err := pools[0].QueryRow(t.Context(),
			`SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename IN ('t_one', 't_two')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("round %d: %d of the 2 tables exist", round, n)
		}
	}
}
