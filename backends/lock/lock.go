// Package lock serialises writes per workspace. Locker is the interface both
// backends take their workspace locks through, so that during a migration
// they serialise against each other; Memory is the in-process
// implementation, enough while one process runs every backend (a Redis one
// comes with Approach 2).
package lock

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// Lease is a held lock.
type Lease interface {
	// Fence is a number that grows with every grant of the same key, so a
	// resource can refuse a stale holder's writes.
	Fence() int64
	// Lost is closed when the lease is known to be lost (its TTL passed
	// without renewal, or another holder took the key); the protected
	// operation must stop. A nil channel means the lease cannot be lost.
	Lost() <-chan struct{}
	// Release gives the lock up; releasing twice is harmless.
	Release(ctx context.Context) error
}

// AuditEvent is one entry of the lock audit trail.
type AuditEvent struct {
	Key    string
	Holder string // an opaque holder id, never the lease's secret token
	Fence  int64
	Event  string // acquire, renew, release, expire, lost
	At     time.Time
}

// Auditor records lock events (in PostgreSQL with Approach 2). Lockers
// call it off the hot path and never fail an operation because of it.
type Auditor interface {
	RecordLockEvent(ctx context.Context, e AuditEvent) error
}

// Locker grants exclusive leases per key.
type Locker interface {
	// Acquire waits until key is free or ctx ends. A wait that ends with ctx
	// returns a timeout (deadline) or unavailable (cancelled) error.
	Acquire(ctx context.Context, key string) (Lease, error)
}

// Memory is an in-process Locker. The zero value is ready to use.
type Memory struct {
	mu    sync.Mutex
	keys  map[string]*memKey
	fence int64 // one counter for all keys: monotonic per key too
}

type memKey struct {
	sem   chan struct{}
	users int // holders plus waiters; the entry is dropped at zero
}

var _ Locker = (*Memory)(nil)

// Acquire waits for key.
func (m *Memory) Acquire(ctx context.Context, key string) (Lease, error) {
	k := m.enter(key)
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		m.leave(key, k)
		return nil, waitError(ctx.Err())
	}
	m.mu.Lock()
	m.fence++
	fence := m.fence
	m.mu.Unlock()
	return &memLease{m: m, key: key, k: k, fence: fence}, nil
}

func (m *Memory) enter(key string) *memKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = map[string]*memKey{}
	}
	k := m.keys[key]
	if k == nil {
		k = &memKey{sem: make(chan struct{}, 1)}
		m.keys[key] = k
	}
	k.users++
	return k
}

// leave drops a user; the key's entry is removed when nobody holds or waits.
func (m *Memory) leave(key string, k *memKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k.users--
	if k.users == 0 && m.keys[key] == k {
		delete(m.keys, key)
	}
}

func waitError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &backends.Error{Category: backends.Timeout, Message: "timed out waiting for the workspace lock (another operation on this workspace is running)", Err: err}
	}
	if errors.Is(err, context.Canceled) { // the caller gave up: not an outage
		return &backends.Error{Category: backends.Canceled, Message: "cancelled while waiting for the workspace lock", Err: err}
	}
	return &backends.Error{Category: backends.Unavailable, Message: "cancelled while waiting for the workspace lock", Err: err}
}

type memLease struct {
	m     *Memory
	key   string
	k     *memKey
	fence int64
	once  sync.Once
}

func (l *memLease) Fence() int64 { return l.fence }

// Lost returns nil: an in-process lease is held until released.
func (l *memLease) Lost() <-chan struct{} { return nil }

func (l *memLease) Release(context.Context) error {
	l.once.Do(func() {
		<-l.k.sem
		l.m.leave(l.key, l.k)
	})
	return nil
}
