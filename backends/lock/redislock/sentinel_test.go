package redislock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// sentinelLocker returns a Locker on its own failover client of s (as a
// separate process has), waiting for one replica on every grant and
// renewal.
func sentinelLocker(t *testing.T, s *backendtest.Sentinel, wait int, ttl time.Duration) *Locker {
	t.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs})
	t.Cleanup(func() { _ = c.Close() })
	return New(c, Options{Prefix: "gitgate-test:", TTL: ttl, RetryInterval: 10 * time.Millisecond, WaitReplicas: wait, WaitTimeout: 300 * time.Millisecond})
}

// nodeGet reads key on the data node at addr directly (not through the
// sentinels).
func nodeGet(t *testing.T, addr, key string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = c.Close() }()
	v, err := c.Get(t.Context(), key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("GET %s on %s: %v", key, addr, err)
	}
	return v
}

// TestSentinelLeaseAcrossFailover: a lease granted before a failover is
// either kept by its holder (its grant was acknowledged by the replica
// Sentinel promotes, and its watchdog renews on the new master, so nobody
// else gets the key) or known lost by its holder before anyone else gets
// the key; never both held. Every later grant's fence is greater than
// every earlier one, across two failovers.
func TestSentinelLeaseAcrossFailover(t *testing.T) {
	t.Parallel() // on a Sentinel set of its own; its time is mostly failovers and leases running out
	s := backendtest.StartSentinel(t)
	const ttl = 10 * time.Second
	a, b := sentinelLocker(t, s, 1, ttl), sentinelLocker(t, s, 1, ttl)
	ctx := t.Context()
	held, err := a.Acquire(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	fences := []int64{held.Fence()}
	start := time.Now()
	if _, err := s.Failover(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("the failover took %s", time.Since(start).Round(time.Millisecond))
	// Longer than the TTL: only renewals on the new master keep the key.
	wctx, cancel := context.WithTimeout(ctx, ttl+3*time.Second)
	le, err := b.Acquire(wctx, "ws")
	cancel()
	if err == nil {
		if !closed(held.Lost(), 0) {
			t.Fatal("a second holder got the key while the first still counts its lease as held")
		}
		t.Log("the lease was lost across the failover (its holder knew before the key passed on)")
		fences = append(fences, le.Fence())
		held = le
	} else {
		checkErr(t, le, err, backends.Timeout, context.DeadlineExceeded)
		if closed(held.Lost(), 0) {
			t.Fatal("the lease was lost, yet nobody else could take the key")
		}
		t.Log("the lease was kept across the failover")
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	for i, l := range []*Locker{b, a} {
		// Just after a failover the replica (the old master, resynced) may
		// not acknowledge within the WAIT timeout on a busy machine: the
		// grant then fails as unavailable, given back, and a retry gets it.
		var le lock.Lease
		testkit.EventuallyNil(t, fmt.Sprintf("grant %d after the failover", i+1), func() error {
			var err error
			if le, err = l.Acquire(ctx, "ws"); err != nil && backends.CategoryOf(err) != backends.Unavailable {
				t.Fatalf("grant %d after the failover: %v", i+1, err)
			}
			return err
		})
		fences = append(fences, le.Fence())
		if err := le.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := s.Failover(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 1; i < len(fences); i++ {
		if fences[i] <= fences[i-1] {
			t.Fatalf("fences %v do not strictly increase across the failovers", fences)
		}
	}
	t.Logf("fences across two failovers: %v", fences)
}

// TestSentinelUnreplicatedGrantFailsClosed: while the replica cannot
// acknowledge (it hangs), a grant is given back and Acquire fails as
// unavailable, leaving the key free; once the replica answers again, grants
// succeed.
func TestSentinelUnreplicatedGrantFailsClosed(t *testing.T) {
	t.Parallel() // on a Sentinel set of its own; its time is mostly failovers and leases running out
	s := backendtest.StartSentinel(t)
	l := sentinelLocker(t, s, 1, 2*time.Second)
	ctx := t.Context()
	master, err := s.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resume := s.Pause(s.Nodes()[1])
	le, err := l.Acquire(ctx, "ws")
	checkErr(t, le, err, backends.Unavailable, nil)
	var nr *notReplicatedError
	if !errors.As(err, &nr) {
		t.Fatalf("error %v does not say the grant was not replicated", err)
	}
	if got := nodeGet(t, master, l.lockKey("ws")); got != "" {
		t.Fatalf("the unacknowledged grant was left on the master (%q)", got)
	}
	resume()
	testkit.EventuallyNil(t, "a grant succeeds once the replica answers", func() error {
		le, err := l.Acquire(ctx, "ws")
		if err != nil {
			return err
		}
		return le.Release(ctx)
	})
}

// TestSentinelWithoutWaitRepeatsFence shows what WaitReplicas prevents: a
// grant the replica never received is lost when the master dies and the
// replica is promoted, and the next holder gets the same fence while the
// first still holds its lease, so that both would pass a fence check. Its
// first half is TestSentinelUnreplicatedGrantFailsClosed's situation,
// without the wait.
func TestSentinelWithoutWaitRepeatsFence(t *testing.T) {
	t.Parallel() // on a Sentinel set of its own; its time is mostly failovers and leases running out
	s := backendtest.StartSentinel(t)
	a, b := sentinelLocker(t, s, 0, 5*time.Second), sentinelLocker(t, s, 0, 5*time.Second)
	ctx := t.Context()
	master, replica := s.Nodes()[0], s.Nodes()[1]
	resumeReplica := s.Pause(replica)
	// Cut the replication link while the replica hangs (it cannot
	// reconnect): the grant below reaches no replica at all.
	mc := redis.NewClient(&redis.Options{Addr: master})
	err := mc.ClientKillByFilter(ctx, "TYPE", "replica").Err()
	_ = mc.Close()
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.Acquire(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	s.Pause(master) // the master hangs for good: the sentinels fail over
	resumeReplica()
	testkit.EventuallyNil(t, "the sentinels promote the replica", func() error {
		m, err := s.Master(ctx)
		if err == nil && m != replica {
			err = fmt.Errorf("master is still %s", m)
		}
		return err
	})
	second, err := b.Acquire(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	if second.Fence() != first.Fence() {
		t.Fatalf("fences %d then %d: the unreplicated grant was not lost as this test expects", first.Fence(), second.Fence())
	}
	t.Logf("without WAIT, two holders got fence %d across the failover", first.Fence())
	waitClosed(t, first.Lost(), "the first holder learns it lost the lease")
	_ = second.Release(ctx)
	_ = first.Release(ctx)
}

// TestSentinelFailoverErrorsAreUnavailable: lock calls racing two
// failovers fail, if at all, as unavailable (never internal), and succeed
// again by themselves afterwards. The clients do not retry (MaxRetries -1),
// so that the failover's errors reach the locker instead of being hidden.
func TestSentinelFailoverErrorsAreUnavailable(t *testing.T) {
	t.Parallel() // on a Sentinel set of its own; its time is mostly failovers and leases running out
	s := backendtest.StartSentinel(t)
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	l := New(c, Options{Prefix: "gitgate-test:", TTL: time.Second, RetryInterval: 5 * time.Millisecond, WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond})
	stop := make(chan struct{})
	var (
		mu         sync.Mutex
		byCategory = map[backends.Category]int{}
		samples    = map[backends.Category]error{}
		ok         int
		wg         sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				le, err := l.Acquire(actx, fmt.Sprintf("ws%d", w))
				cancel()
				if err == nil {
					err = le.Release(context.Background())
				}
				mu.Lock()
				if err == nil {
					ok++
				} else {
					byCategory[backends.CategoryOf(err)]++
					samples[backends.CategoryOf(err)] = err
				}
				mu.Unlock()
			}
		})
	}
	for range 2 {
		if _, err := s.Failover(t.Context()); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
	}
	mu.Lock()
	before := ok
	mu.Unlock()
	testkit.Eventually(t, "lock calls succeed again after the failovers", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ok > before+20
	})
	close(stop)
	wg.Wait()
	t.Logf("calls: %d succeeded; failed by category: %v", ok, byCategory)
	for cat, err := range samples {
		if cat != backends.Unavailable {
			t.Errorf("a lock call during the failover failed as %s, want unavailable: %v", cat, err)
		}
	}
}
