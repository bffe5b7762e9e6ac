package redislock

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends/lock"
)

// Audit delivery limits: events beyond auditQueueSize waiting are dropped
// (with a log line), and one RecordLockEvent call may take auditTimeout.
const (
	auditQueueSize = 1024
	auditTimeout   = 5 * time.Second
)

// auditQueue hands events to an Auditor in order without making the lock's
// hot path wait: push only appends, and a single drain goroutine, started
// on demand and gone when the queue is empty, calls the Auditor. A nil
// *auditQueue drops everything.
type auditQueue struct {
	auditor lock.Auditor
	log     *slog.Logger

	mu      sync.Mutex
	queue   []lock.AuditEvent
	running bool // a drain goroutine is running
}

func newAuditQueue(a lock.Auditor, log *slog.Logger) *auditQueue {
	if a == nil {
		return nil
	}
	return &auditQueue{auditor: a, log: log}
}

// push queues e, or drops it when the queue is full.
func (q *auditQueue) push(e lock.AuditEvent) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) >= auditQueueSize {
		q.log.Warn("lock audit queue full; dropping event", "key", e.Key, "event", e.Event, "fence", e.Fence)
		return
	}
	q.queue = append(q.queue, e)
	if !q.running {
		q.running = true
		go q.drain()
	}
}

func (q *auditQueue) drain() {
	for {
		e, ok := q.next()
		if !ok {
			return
		}
		q.record(e)
	}
}

// next pops the oldest event; when there is none it marks the drain
// goroutine stopped, under the same lock push takes.
func (q *auditQueue) next() (lock.AuditEvent, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		q.queue = nil
		q.running = false
		return lock.AuditEvent{}, false
	}
	e := q.queue[0]
	q.queue = q.queue[1:]
	return e, true
}

func (q *auditQueue) record(e lock.AuditEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	if err := q.auditor.RecordLockEvent(ctx, e); err != nil {
		q.log.WarnContext(ctx, "lock audit event not recorded", "key", e.Key, "event", e.Event, "fence", e.Fence, "err", err)
	}
}
