package redislock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends/lock"
)

// redisAddr is the Redis these tests use: a real Redis 7, never a fake.
func redisAddr() string {
	if a := os.Getenv("GITGATE_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// newClient connects to the test Redis and fails the test when it is not
// reachable: these tests never skip.
func newClient(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		t.Fatalf("Redis is not reachable at %s: these tests need a real Redis 7 there (or set GITGATE_TEST_REDIS_ADDR): %v", redisAddr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testPrefix returns a key prefix unique to this test run and deletes every
// key under it when the test ends.
func testPrefix(t *testing.T, c *redis.Client) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "gitgate-test:" + t.Name() + ":" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() { deleteKeys(t, c, prefix) })
	return prefix
}

func deleteKeys(t *testing.T, c *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := c.Keys(ctx, globEscape(prefix)+"*").Result()
	if err == nil && len(keys) > 0 {
		err = c.Del(ctx, keys...).Err()
	}
	if err != nil {
		t.Errorf("cleaning up %s*: %v", prefix, err)
	}
}

func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace(s)
}

// unreachableClient returns a client for a loopback port nothing listens on.
func unreachableClient(t *testing.T) *redis.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// recorder is an Auditor that keeps the events it is given.
type recorder struct {
	mu     sync.Mutex
	events []lock.AuditEvent
}

func (r *recorder) RecordLockEvent(_ context.Context, e lock.AuditEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// waitFor returns the recorded events once the last one is named last.
func (r *recorder) waitFor(t *testing.T, last string) []lock.AuditEvent {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		ev := append([]lock.AuditEvent(nil), r.events...)
		r.mu.Unlock()
		if len(ev) > 0 && ev[len(ev)-1].Event == last {
			return ev
		}
	}
	t.Fatalf("no %q audit event recorded; got %v", last, r.names())
	return nil
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Event)
	}
	return out
}

// faultHook makes every command of its client fail while fail is set: a
// transient Redis outage seen from one client, with Redis itself up.
type faultHook struct{ fail atomic.Bool }

var errInjected = errors.New("injected network failure")

func (h *faultHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *faultHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.fail.Load() {
			cmd.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, cmd)
	}
}

func (h *faultHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// settleGoroutines waits until no more goroutines run than base.
func settleGoroutines(t *testing.T, base int) {
	t.Helper()
	n := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n = runtime.NumGoroutine(); n <= base {
			return
		}
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("goroutine leak: %d running, %d before\n%s", n, base, buf[:runtime.Stack(buf, true)])
}

// closed reports whether ch is closed (or ready) within d.
func closed(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// asLease returns the implementation behind l, for the test hooks.
func asLease(t *testing.T, l lock.Lease) *lease {
	t.Helper()
	le, ok := l.(*lease)
	if !ok {
		t.Fatalf("lease is %T, want *lease", l)
	}
	return le
}
