package approach2_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/backends/sandbox/redisbind"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// pgTrips counts the journal's round trips to PostgreSQL: one per
// statement, one per batch (whatever it holds).
type pgTrips struct{ n atomic.Int64 }

func (c *pgTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *pgTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *pgTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *pgTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *pgTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// redisTrips counts round trips to Redis: one per command, one per
// pipeline or transaction; not those that set a new connection up.
type redisTrips struct{ n atomic.Int64 }

func (c *redisTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *redisTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *redisTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "client" { // CLIENT SETINFO: a new connection
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// TestRoundTripsPerWrite pins what one write costs the service beside its
// git processes, as TestProcessesPerOperation pins the processes: round
// trips to PostgreSQL (the journal: one statement that starts and plans
// the write, one asynchronous settle; a push records its plan, read under
// the lock, in a third) and to Redis (the workspace lease taken and given
// back, the binding read, and written when the write begins and ends; the
// binding's read resets its sandbox's set in the same round trip).
// The lease's renewals are timed, not per write: the TTL here is long
// enough that none falls inside a write.
func TestRoundTripsPerWrite(t *testing.T) {
	env := backendtest.NewEnv(t)
	rdb := backendtest.Redis(t)
	prefix := backendtest.RedisPrefix(t, rdb)
	var rt redisTrips
	rdb.AddHook(&rt)
	var pt pgTrips
	j, err := journal.Open(t.Context(), backendtest.PostgresDSN(t), journal.Options{Tracer: &pt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	locker := redislock.New(rdb, redislock.Options{Prefix: prefix, TTL: time.Hour})
	engine := backendtest.NewEngine(t, env, lock.Reentrant(locker), redisbind.New(rdb, redisbind.Options{Prefix: prefix, TTL: time.Hour}))
	once, err := approach2.NewOnce(approach2.OnceConfig{Engine: engine, Locker: locker, Journal: j, LockKey: lockKey, RemoteReach: engine.RemoteReach})
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Clone(t, once, env, env.Agent, "trips")
	sc := backends.Scope{Principal: env.Agent, Workspace: "trips"}
	for _, c := range []struct {
		req       backends.Request
		pg, redis int64
	}{
		{&backends.WriteFileRequest{Scope: sc, Path: "a.txt", Content: "a"}, 2, 5},
		{&backends.CommitRequest{Scope: sc, Message: "a"}, 2, 5},
		{&backends.CheckoutRequest{Scope: sc, Branch: "trips", Create: true}, 2, 5},
		// A push's plan, recorded before it runs, reads the branches and
		// the workspace's URL under the lease: two more binding reads, and
		// the project's workspaces listed (SMEMBERS, MGET, PTTL).
		{&backends.PushRequest{Scope: sc, Branch: "trips"}, 3, 10},
	} {
		pg0, r0 := pt.n.Load(), rt.n.Load()
		if _, err := once.Execute(t.Context(), c.req); err != nil {
			t.Fatalf("%s: %v", c.req.Op(), err)
		}
		if pg, r := pt.n.Load()-pg0, rt.n.Load()-r0; pg != c.pg || r != c.redis {
			t.Errorf("%s: %d round trips to PostgreSQL and %d to Redis, want %d and %d", c.req.Op(), pg, r, c.pg, c.redis)
		}
	}
}
