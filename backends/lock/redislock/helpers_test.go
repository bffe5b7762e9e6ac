package redislock

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends/lock"
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
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
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
