package approach2_test

import (
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/backends/sandbox/redisbind"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

const serviceToken = "svc-token-for-tests-0123456789"

// startService serves engine over real gRPC on loopback and returns a
// connected client.
func startService(t testing.TB, engine backends.Executor) *approach2.Client {
	t.Helper()
	return backendtest.ServeApproach2(t, engine, approach2.ClientConfig{})
}

// TestConformance runs the core of the suite through the gRPC client and
// service with the embedded journal and in-process locks (what a single
// service without Redis and PostgreSQL runs). The rest of the suite (the
// engine's tables of refused input, limits, predictions, concurrency)
// crosses the same client and service in
// TestConformanceWithRedisAndPostgres, and the embedded journal runs it
// whole behind Approach 1 (package approach1).
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) backends.Executor {
		locker := &lock.Memory{}
		engine := backendtest.NewEngine(t, env, lock.Reentrant(locker), nil)
		return startService(t, backendtest.WithOnce(t, engine, locker, backendtest.NewDirJournal(t)))
	}, backendtest.Core())
}

// TestConformanceWithRedisAndPostgres runs the whole suite through the
// service as it runs in production: gRPC on loopback, writes journaled in
// PostgreSQL under Redis workspace locks with fencing, workspace bindings
// in Redis. The engine's long tables and concurrent parts are sampled
// (backendtest.Sampled): package approach1 runs them whole on the same
// engine.
func TestConformanceWithRedisAndPostgres(t *testing.T) {
	// The package's longest test, a chain of round trips (gRPC, Redis,
	// PostgreSQL, git) that leaves a core idle: run beside the other long
	// ones (TestConformanceOnE2B) and the keepalive tests, which only wait.
	// It shares nothing with them (its own remote, Redis prefix and
	// PostgreSQL schema).
	t.Parallel()
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) backends.Executor {
		rdb := backendtest.Redis(t)
		prefix := backendtest.RedisPrefix(t, rdb)
		locker := redislock.New(rdb, redislock.Options{Prefix: prefix})
		bindings := redisbind.New(rdb, redisbind.Options{Prefix: prefix, TTL: time.Hour})
		c, _ := newOnceService(t, env, locker, bindings, 0)
		return c
	}, backendtest.Sampled())
}

// TestConformanceOnE2B runs the whole suite through the gRPC service whose
// engine runs on E2B sandboxes (the local E2B, commands run for real):
// the core of the suite (the engine on E2B runs the rest in package e2b,
// the service on local sandboxes in TestConformance).
func TestConformanceOnE2B(t *testing.T) {
	t.Parallel() // round trips to the local E2B: it overlaps the keepalive tests, which wait
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) backends.Executor {
		once, _ := backendtest.NewE2BOnce(t, env, e2bfake.Config{MaxConcurrent: 100})
		return startService(t, once)
	}, backendtest.Core())
}
