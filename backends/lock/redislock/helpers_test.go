package redislock

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/redis/go-redis/v9"
)

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
	var ev []lock.AuditEvent
	testkit.EventuallyNil(t, fmt.Sprintf("a %q audit event is recorded last", last), func() error {
		r.mu.Lock()
		ev = append([]lock.AuditEvent(nil), r.events...)
		r.mu.Unlock()
		if len(ev) > 0 && ev[len(ev)-1].Event == last {
			return nil
		}
		return fmt.Errorf("recorded %v", r.names())
	})
	return ev
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
	testkit.EventuallyNil(t, fmt.Sprintf("no more than the %d goroutines of before run", base), func() error {
		if n := runtime.NumGoroutine(); n > base {
			return goroutineLeak(n)
		}
		return nil
	})
}

// goroutineLeak is the number of goroutines running; as an error it lists
// their stacks at the time it is reported.
type goroutineLeak int

func (n goroutineLeak) Error() string {
	buf := make([]byte, 1<<20)
	return fmt.Sprintf("goroutine leak: %d running\n%s", int(n), buf[:runtime.Stack(buf, true)])
}

// waitClosed waits until ch is closed (or ready), for as long as
// testkit.Patience.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testkit.Patience):
		t.Fatalf("gave up after %s waiting until %s", testkit.Patience, what)
	}
}

// closed reports whether ch is closed (or ready) within d: an observation
// window, for what must not happen.
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
