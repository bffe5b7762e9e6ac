package redislock

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/internal/backendtest"
)

// resourceScript is a fence-checking resource, standing in for the
// PostgreSQL journal: it stores the highest fence it has seen and refuses
// writes that carry a lower one. KEYS[1] is a hash (fence, value); ARGV[1]
// is the writer's fence, ARGV[2] the value. It returns 1 when written.
var resourceScript = redis.NewScript(`
local seen = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
if tonumber(ARGV[1]) < seen then
  return 0
end
redis.call('HSET', KEYS[1], 'fence', ARGV[1], 'value', ARGV[2])
return 1
`)

func writeResource(t *testing.T, c *redis.Client, key string, fence int64, value string) bool {
	t.Helper()
	n, err := resourceScript.Run(context.Background(), c, []string{key}, fence, value).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestPausedHolderIsFencedOut plays Kleppmann's scenario. Holder A pauses
// past its TTL (simulated with the lease's paused hook, which freezes its
// watchdog as a stopped process would be; a SIGSTOPped helper process
// would add nothing the hook does not show and cost a second process), B is
// granted the key with a higher fence, A wakes up and tries to write: the
// resource refuses A's stale fence, A's watchdog reports the loss on its
// next turn, and A's release leaves B's lock alone.
func TestPausedHolderIsFencedOut(t *testing.T) {
	c := backendtest.Redis(t)
	prefix := backendtest.RedisPrefix(t, c)
	const ttl = 600 * time.Millisecond
	l := New(c, Options{Prefix: prefix, TTL: ttl, RetryInterval: 10 * time.Millisecond})
	ctx := t.Context()
	res := prefix + "resource"

	a, err := l.Acquire(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	granted := time.Now()
	asLease(t, a).paused.Store(true)
	if !writeResource(t, c, res, a.Fence(), "a1") {
		t.Fatal("resource refused the current holder")
	}

	b, err := l.Acquire(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(context.Background())
	if waited := time.Since(granted); waited < ttl-50*time.Millisecond {
		t.Fatalf("B was granted the key %v after A, before A's TTL of %v", waited, ttl)
	}
	if b.Fence() != a.Fence()+1 {
		t.Fatalf("B's fence = %d, want %d", b.Fence(), a.Fence()+1)
	}
	select {
	case <-a.Lost():
		t.Fatal("A observed its loss while paused; a paused holder cannot")
	default:
	}
	checkFencedWrites(t, c, res, a.Fence(), b.Fence())

	asLease(t, a).paused.Store(false)
	waitClosed(t, a.Lost(), "A's Lost is closed after its watchdog resumed")
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.Get(ctx, l.lockKey("ws")).Val(); got != asLease(t, b).token {
		t.Fatalf("after A's release the lock holds %q, want B's token", got)
	}
	if closed(b.Lost(), 0) {
		t.Fatal("B lost its lease")
	}
}

// checkFencedWrites asserts that the resource takes the new holder's write
// and refuses the stale one's, in either order.
func checkFencedWrites(t *testing.T, c *redis.Client, res string, stale, current int64) {
	t.Helper()
	if !writeResource(t, c, res, current, "b") {
		t.Fatal("resource refused the new holder's write")
	}
	if writeResource(t, c, res, stale, "a2") {
		t.Fatal("resource accepted the stale holder's write")
	}
	if got := c.HGet(context.Background(), res, "value").Val(); got != "b" {
		t.Fatalf("resource holds %q, want b", got)
	}
}
