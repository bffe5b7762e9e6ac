package redislock

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/lock"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// span is one critical section: its fence and its entry and exit positions
// on a logical clock advanced under a mutex.
type span struct {
	fence       int64
	enter, exit int
}

func TestMutualExclusionAndFenceOrder(t *testing.T) {
	c := backendtest.Redis(t)
	l := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: 5 * time.Second, RetryInterval: 5 * time.Millisecond})
	const workers, rounds = 40, 3
	var (
		mu    sync.Mutex
		clock int
		spans []span
		wg    sync.WaitGroup
	)
	tick := func() int { mu.Lock(); defer mu.Unlock(); clock++; return clock }
	errs := make(chan error, workers*rounds)
	for range workers {
		wg.Go(func() {
			for range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				le, err := l.Acquire(ctx, "ws")
				cancel()
				if err != nil {
					errs <- err
					return
				}
				s := span{fence: le.Fence(), enter: tick()}
				time.Sleep(200 * time.Microsecond)
				s.exit = tick()
				mu.Lock()
				spans = append(spans, s)
				mu.Unlock()
				if err := le.Release(context.Background()); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("acquire/release: %v", err)
	}
	checkSpans(t, spans, workers*rounds)
}

// checkSpans asserts n critical sections that never overlap, whose fences
// are exactly 1..n in entry order (a fresh fence key, one INCR per grant).
func checkSpans(t *testing.T, spans []span, n int) {
	t.Helper()
	if len(spans) != n {
		t.Fatalf("%d critical sections, want %d", len(spans), n)
	}
	slices.SortFunc(spans, func(a, b span) int { return a.enter - b.enter })
	for i, s := range spans {
		if s.fence != int64(i+1) {
			t.Fatalf("critical section %d entered with fence %d, want %d (fences must grow with entry order)", i, s.fence, i+1)
		}
		if i > 0 && spans[i-1].exit > s.enter {
			t.Fatalf("critical sections overlap: fence %d [%d,%d] and fence %d [%d,%d]",
				spans[i-1].fence, spans[i-1].enter, spans[i-1].exit, s.fence, s.enter, s.exit)
		}
	}
}

func TestRenewalKeepsLockAndAuditsInOrder(t *testing.T) {
	c := backendtest.Redis(t)
	rec := &recorder{}
	const ttl = 300 * time.Millisecond
	l := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: ttl, Auditor: rec})
	le, err := l.Acquire(t.Context(), "ws")
	if err != nil {
		t.Fatal(err)
	}
	token := asLease(t, le).token
	if closed(le.Lost(), 3*ttl) {
		t.Fatal("Lost closed while the lease was held and renewed")
	}
	if got, err := c.Get(t.Context(), l.lockKey("ws")).Result(); err != nil || got != token {
		t.Fatalf("after 3×TTL the lock holds %q (%v), want our token", got, err)
	}
	if err := le.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkAudit(t, rec.waitFor(t, "release"), token, le.Fence())
}

// checkAudit asserts acquire, at least three renewals, release, all for
// key "ws" and fence, stamped in order, none carrying the token.
func checkAudit(t *testing.T, ev []lock.AuditEvent, token string, fence int64) {
	t.Helper()
	names := make([]string, len(ev))
	for i, e := range ev {
		names[i] = e.Event
		if e.Key != "ws" || e.Fence != fence || e.Holder != holderID(token) || e.At.Location() != time.UTC {
			t.Errorf("event %d = %+v, want key ws, fence %d, holder %s, UTC", i, e, fence, holderID(token))
		}
		if strings.Contains(e.Holder+e.Key+e.Event, token) || len(e.Holder) != 12 {
			t.Errorf("event %d holder %q: want a 12-char id that is not the token", i, e.Holder)
		}
		if i > 0 && e.At.Before(ev[i-1].At) {
			t.Errorf("event %d stamped before event %d", i, i-1)
		}
	}
	if len(ev) < 5 || names[0] != "acquire" || names[len(ev)-1] != "release" {
		t.Fatalf("events %v, want acquire, ≥3 renew, release", names)
	}
	for _, n := range names[1 : len(ev)-1] {
		if n != "renew" {
			t.Fatalf("events %v, want only renewals between acquire and release", names)
		}
	}
}

func TestReleaseIsIdempotentAndCompareAndDelete(t *testing.T) {
	c := backendtest.Redis(t)
	rec := &recorder{}
	l := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), Auditor: rec})
	ctx := t.Context()
	le, err := l.Acquire(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	n, err := releaseScript.Run(ctx, c, []string{l.lockKey("ws")}, "not-the-token").Int64()
	if err != nil || n != 0 {
		t.Fatalf("release with a wrong token = %d, %v; want 0", n, err)
	}
	if got := c.Get(ctx, l.lockKey("ws")).Val(); got != asLease(t, le).token {
		t.Fatalf("lock holds %q after a wrong-token release, want our token", got)
	}
	for i := range 3 {
		if err := le.Release(ctx); err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
	}
	if n := c.Exists(ctx, l.lockKey("ws")).Val(); n != 0 {
		t.Fatalf("lock key exists after release")
	}
	if ev := rec.waitFor(t, "release"); len(ev) != 2 || ev[0].Event != "acquire" {
		t.Fatalf("events %v, want [acquire release]", rec.names())
	}
}

func TestKeyTakenByAnotherIsLostAndReleaseHarmless(t *testing.T) {
	c := backendtest.Redis(t)
	rec := &recorder{}
	const ttl = 300 * time.Millisecond
	reg := prometheus.NewRegistry()
	l := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: ttl, Auditor: rec, Registerer: reg})
	ctx := t.Context()
	le, err := l.Acquire(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, l.lockKey("ws"), "someone-else", time.Minute)
	waitClosed(t, le.Lost(), "Lost is closed after another holder took the key")
	waitClosed(t, asLease(t, le).done, "the watchdog stops after the loss")
	if err := le.Release(ctx); err != nil {
		t.Fatalf("release after loss: %v", err)
	}
	if got := c.Get(ctx, l.lockKey("ws")).Val(); got != "someone-else" {
		t.Fatalf("release after loss changed the other holder's lock to %q", got)
	}
	if ev := rec.waitFor(t, "lost"); len(ev) != 2 || ev[0].Event != "acquire" {
		t.Fatalf("events %v, want [acquire lost]", rec.names())
	}
	wantLost(t, reg, map[string]float64{eventLost: 1, eventExpire: 0})
}

func TestTransientErrorsExpireLeaseBeforeTTL(t *testing.T) {
	c := backendtest.Redis(t)
	hook := &faultHook{}
	c.AddHook(hook)
	rec := &recorder{}
	const ttl = 600 * time.Millisecond
	reg := prometheus.NewRegistry()
	l := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: ttl, Auditor: rec, Registerer: reg})
	le, err := l.Acquire(t.Context(), "ws")
	if err != nil {
		t.Fatal(err)
	}
	hook.fail.Store(true)
	start := time.Now()
	waitClosed(t, le.Lost(), "Lost is closed while renewals fail")
	// The lease is given up while Redis still holds it (within the TTL):
	// the holder stops before anyone else can be granted the key.
	waited := time.Since(start)
	hook.fail.Store(false)
	if pttl := c.PTTL(t.Context(), l.lockKey("ws")).Val(); pttl <= 0 {
		t.Fatalf("lease given up after %v, but the key had already expired (PTTL %v)", waited, pttl)
	}
	if ev := rec.waitFor(t, "expire"); len(ev) < 2 || ev[0].Event != "acquire" {
		t.Fatalf("events %v, want acquire … expire", rec.names())
	}
	wantLost(t, reg, map[string]float64{eventLost: 0, eventExpire: 1})
	if err := le.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	c := backendtest.Redis(t)
	rec := &recorder{}
	l := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: 300 * time.Millisecond, Auditor: rec})
	ctx := t.Context()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	base := runtime.NumGoroutine()
	for range 5 {
		le, err := l.Acquire(ctx, "ws")
		if err != nil {
			t.Fatal(err)
		}
		rec.waitFor(t, "renew") // a renewal ran
		if err := le.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	le, err := l.Acquire(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	c.Del(ctx, l.lockKey("ws"))
	waitClosed(t, le.Lost(), "Lost is closed after the key vanished")
	settleGoroutines(t, base)
}

func TestAcquireWaitEndsWithContext(t *testing.T) {
	c := backendtest.Redis(t)
	l := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), RetryInterval: 10 * time.Millisecond})
	held, err := l.Acquire(t.Context(), "ws")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(context.Background())

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	le, err := l.Acquire(ctx, "ws")
	checkErr(t, le, err, backends.Timeout, context.DeadlineExceeded)

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	le, err = l.Acquire(ctx, "ws")
	checkErr(t, le, err, backends.Canceled, context.Canceled)
	if got := c.Get(t.Context(), l.lockKey("ws")).Val(); got != asLease(t, held).token {
		t.Fatalf("lock holds %q after the failed waits, want the holder's token", got)
	}
}

func TestRedisUnreachableFailsClosed(t *testing.T) {
	c := backendtest.Redis(t)
	prefix := backendtest.RedisPrefix(t, c)
	l := New(backendtest.UnreachableRedis(t), Options{Prefix: prefix})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	le, err := l.Acquire(ctx, "ws")
	checkErr(t, le, err, backends.Unavailable, nil)
	if !strings.Contains(err.Error(), "the lock service (Redis) is unavailable (unreachable, failing over") {
		t.Fatalf("error %q does not say Redis is unreachable", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Acquire kept retrying until the deadline instead of failing")
	}
}

// checkErr asserts that Acquire failed with a *backends.Error of category
// want wrapping cause (when not nil), and returned no lease.
func checkErr(t *testing.T, le lock.Lease, err error, want backends.Category, cause error) {
	t.Helper()
	var be *backends.Error
	if le != nil || !errors.As(err, &be) || be.Category != want {
		t.Fatalf("Acquire = %v, %v; want no lease and a %s *backends.Error", le, err, want)
	}
	if cause != nil && !errors.Is(err, cause) {
		t.Fatalf("error %v does not wrap %v", err, cause)
	}
}

// wantLost checks gitgate_lock_leases_lost_total by event on reg.
func wantLost(t *testing.T, reg *prometheus.Registry, want map[string]float64) {
	t.Helper()
	for event, n := range want {
		if got, ok := testkit.SeriesValue(t, reg, "gitgate_lock_leases_lost_total", map[string]string{"event": event}); !ok || got != n {
			t.Fatalf("gitgate_lock_leases_lost_total{event=%q} = %v (present %v), want %v", event, got, ok, n)
		}
	}
}
