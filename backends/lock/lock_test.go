package lock

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/testkit"
)

func TestMutualExclusionAndFences(t *testing.T) {
	var m Memory // the zero value is ready to use
	const n = 50
	var (
		inside  atomic.Bool
		counter int     // guarded by the lock under test
		fences  []int64 // guarded by the lock under test
		wg      sync.WaitGroup
		errs    = make(chan error, n)
	)
	for range n {
		wg.Go(func() {
			lease, err := m.Acquire(t.Context(), "ws")
			if err != nil {
				errs <- err
				return
			}
			if inside.Swap(true) {
				errs <- errors.New("two holders inside the critical section at once")
			}
			counter++
			fences = append(fences, lease.Fence())
			runtime.Gosched() // give others a chance to barge in
			inside.Store(false)
			if err := lease.Release(t.Context()); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if counter != n {
		t.Errorf("counter = %d, want %d", counter, n)
	}
	if len(fences) != n {
		t.Fatalf("recorded %d fences, want %d", len(fences), n)
	}
	for i := 1; i < len(fences); i++ {
		if fences[i] <= fences[i-1] {
			t.Fatalf("fences not strictly increasing in acquisition order: %v", fences)
		}
	}
	assertNoKeys(t, &m)
}

func TestDifferentKeysDoNotBlock(t *testing.T) {
	var m Memory
	a := acquire(t, &m, "a")
	defer a.Release(t.Context())
	ctx, cancel := context.WithTimeout(t.Context(), testkit.Patience)
	defer cancel()
	b, err := m.Acquire(ctx, "b")
	if err != nil {
		t.Fatalf("Acquire(b) while a is held: %v", err)
	}
	if b.Fence() <= a.Fence() {
		t.Errorf("fence of later grant %d <= earlier %d", b.Fence(), a.Fence())
	}
	b.Release(t.Context())
}

func TestWaiterDeadline(t *testing.T) {
	var m Memory
	held := acquire(t, &m, "k")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	lease, err := m.Acquire(ctx, "k")
	if err == nil {
		lease.Release(t.Context())
		t.Fatal("Acquire of a held key succeeded; want a timeout")
	}
	if c := backends.CategoryOf(err); c != backends.Timeout {
		t.Errorf("category = %q, want %q (err %v)", c, backends.Timeout, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v does not wrap context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > testkit.Patience {
		t.Errorf("timed-out wait took %v", d)
	}
	// The waiter left; only the holder remains, and releasing frees the key.
	if u := users(&m, "k"); u != 1 {
		t.Errorf("users of k after the waiter gave up = %d, want 1", u)
	}
	held.Release(t.Context())
	acquire(t, &m, "k").Release(t.Context())
	assertNoKeys(t, &m)
}

func TestWaiterCancelled(t *testing.T) {
	var m Memory
	held := acquire(t, &m, "k")

	// Already cancelled: the key is held, so only ctx.Done is ready.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := m.Acquire(ctx, "k"); backends.CategoryOf(err) != backends.Canceled {
		t.Errorf("pre-cancelled Acquire: err %v, category %q, want %q", err, backends.CategoryOf(err), backends.Canceled)
	}

	// Cancelled while waiting.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		l, err := m.Acquire(ctx, "k")
		if err == nil {
			l.Release(context.Background())
		}
		done <- err
	}()
	waitUsers(t, &m, "k", 2) // the goroutine is now waiting
	cancel()
	select {
	case err := <-done:
		if c := backends.CategoryOf(err); c != backends.Canceled {
			t.Errorf("cancelled waiter: err %v, category %q, want %q", err, c, backends.Canceled)
		}
	case <-time.After(testkit.Patience):
		t.Fatal("cancelled waiter did not return")
	}

	held.Release(t.Context())
	acquire(t, &m, "k").Release(t.Context())
	assertNoKeys(t, &m)
}

func TestWaiterGetsLockOnRelease(t *testing.T) {
	var m Memory
	held := acquire(t, &m, "k")
	got := make(chan Lease, 1)
	go func() {
		l, err := m.Acquire(t.Context(), "k")
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
		got <- l
	}()
	waitUsers(t, &m, "k", 2)
	held.Release(t.Context())
	select {
	case l := <-got:
		if l != nil {
			if l.Fence() <= held.Fence() {
				t.Errorf("waiter fence %d <= previous holder's %d", l.Fence(), held.Fence())
			}
			l.Release(t.Context())
		}
	case <-time.After(testkit.Patience):
		t.Fatal("waiter not granted the lock after release")
	}
	assertNoKeys(t, &m)
}

func TestDoubleReleaseIsHarmless(t *testing.T) {
	var m Memory
	first := acquire(t, &m, "k")
	release(t, first)
	second := acquire(t, &m, "k")
	// A stale second Release of the first lease must neither block nor free
	// the key held by the second lease.
	release(t, first)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if l, err := m.Acquire(ctx, "k"); err == nil {
		l.Release(t.Context())
		t.Fatal("stale double Release freed a key held by someone else")
	}
	release(t, second)
	release(t, second)
	acquire(t, &m, "k").Release(t.Context())
	assertNoKeys(t, &m)
}

func TestKeysMapDoesNotGrow(t *testing.T) {
	var m Memory
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := fmt.Sprintf("key-%d-%d", g, i)
				l, err := m.Acquire(t.Context(), key)
				if err != nil {
					t.Error(err)
					return
				}
				l.Release(t.Context())
			}
		})
	}
	// Contended key with waiters that give up.
	for range 8 {
		wg.Go(func() {
			for range 50 {
				ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
				if l, err := m.Acquire(ctx, "shared"); err == nil {
					l.Release(t.Context())
				}
				cancel()
			}
		})
	}
	wg.Wait()
	assertNoKeys(t, &m)
}

// acquire takes key or fails the test; it never waits longer than
// testkit.Patience.
func acquire(t *testing.T, m *Memory, key string) Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testkit.Patience)
	defer cancel()
	l, err := m.Acquire(ctx, key)
	if err != nil {
		t.Fatalf("Acquire(%q): %v", key, err)
	}
	return l
}

// release releases l, failing the test rather than hanging should Release
// block.
func release(t *testing.T, l Lease) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- l.Release(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Release: %v", err)
		}
	case <-time.After(testkit.Patience):
		t.Fatal("Release blocked")
	}
}

func users(m *Memory, key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := m.keys[key]; k != nil {
		return k.users
	}
	return 0
}

// waitUsers polls until key has n holders plus waiters: there is no channel
// that tells when a goroutine has started waiting.
func waitUsers(t *testing.T, m *Memory, key string, n int) {
	t.Helper()
	testkit.EventuallyNil(t, fmt.Sprintf("%q has %d holders and waiters", key, n), func() error {
		if u := users(m, key); u != n {
			return fmt.Errorf("%q has %d", key, u)
		}
		return nil
	})
}

func assertNoKeys(t *testing.T, m *Memory) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.keys) != 0 {
		t.Errorf("keys map has %d entries after every lease was released, want 0", len(m.keys))
	}
}
