// Package admit is admission control: it bounds how many operations one
// process runs at once. A call takes one of a fixed number of slots before
// it does anything — before its workspace lock, its sandbox, its git
// processes — and gives it back when it ends. While every slot is taken it
// waits in a bounded first-come-first-served queue for a bounded time;
// past either bound it is refused as unavailable, having done nothing.
//
// Under overload a process then runs a few operations at full speed, each
// renewing its workspace lease on time, instead of starting all of them
// and starving every one of CPU until leases lapse part-way.
package admit

import (
	"container/list"
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Limiter. Zero values take the documented defaults.
type Options struct {
	// Slots bounds the operations admitted at once. If zero or negative,
	// 4 × GOMAXPROCS.
	Slots int
	// MaxQueue bounds the calls waiting for a slot; a call finding the
	// queue full is refused at once (reason queue_full). If zero or
	// negative, 16 × Slots.
	MaxQueue int
	// MaxWait bounds a call's wait for a slot; past it the call is
	// refused (reason wait). If zero or negative, 30 s.
	MaxWait time.Duration
	// Registerer receives the metrics. If nil, they are not registered.
	Registerer prometheus.Registerer
	// Name, if set, is the value of the metrics' backend label (the
	// backend whose engine is limited, e.g. "approach1"); if empty, the
	// metrics have no such label.
	Name string
}

// DefaultMaxWait is MaxWait's default.
const DefaultMaxWait = 30 * time.Second

// withDefaults fills the zero values.
func (o Options) withDefaults() Options {
	if o.Slots <= 0 {
		o.Slots = 4 * runtime.GOMAXPROCS(0)
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 16 * o.Slots
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	return o
}

// Limiter hands out a fixed number of operation slots, first come first
// served. A nil *Limiter admits everything. It is safe for concurrent use.
type Limiter struct {
	opts    Options
	metrics *metrics

	mu       sync.Mutex
	running  int       // slots taken
	queue    list.List // of *waiter, oldest first
	draining bool      // Drain was called: nothing queues any more
}

// waiter is a call in the queue. A slot is handed to it (granted, ready
// closed) by the call that releases one, under the Limiter's mutex.
type waiter struct {
	ready   chan struct{}
	granted bool
	drained bool // refused by Drain (ready closed, no slot)
}

// New returns a Limiter with o's bounds (defaults filled).
func New(o Options) *Limiter {
	o = o.withDefaults()
	return &Limiter{opts: o, metrics: newMetrics(o.Registerer, o.Name)}
}

// Slots returns how many operations the Limiter admits at once (after
// defaults): 0 for a nil Limiter, which admits everything.
func (l *Limiter) Slots() int {
	if l == nil {
		return 0
	}
	return l.opts.Slots
}

// Admit waits for a slot and returns the function that gives it back
// (call it once the operation ended; later calls do nothing).
//
// A call takes a free slot at once when nobody is queued; otherwise it
// joins the queue, unless the queue holds MaxQueue calls already, and
// waits at most MaxWait. Shadow work (backends.IsShadow) never queues: it
// is admitted only if a slot is free at once, so that it never takes a
// slot a real call is waiting for. A refused call gets an unavailable
// error marked backends.ErrNotStarted; a caller whose context ends while
// it waits leaves the queue at once and gets a canceled (or, for its
// deadline, timeout) error, also marked not started.
func (l *Limiter) Admit(ctx context.Context) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	if ctx.Err() != nil {
		return nil, gaveUp(ctx)
	}
	start := time.Now()
	l.mu.Lock()
	if l.running < l.opts.Slots && l.queue.Len() == 0 {
		l.running++
		l.metrics.set(l.running, l.queue.Len())
		l.mu.Unlock()
		l.metrics.wait.Observe(0)
		return l.releaser(), nil
	}
	if l.draining {
		l.mu.Unlock()
		l.metrics.refused(reasonDraining)
		return nil, stopping()
	}
	if backends.IsShadow(ctx) || l.queue.Len() >= l.opts.MaxQueue {
		waiting := l.queue.Len()
		l.mu.Unlock()
		l.metrics.refused(reasonQueueFull)
		return nil, l.queueFull(backends.IsShadow(ctx), waiting)
	}
	w := &waiter{ready: make(chan struct{})}
	el := l.queue.PushBack(w)
	l.metrics.set(l.running, l.queue.Len())
	l.mu.Unlock()
	return l.wait(ctx, w, el, start)
}

// wait waits in the queue (as el) until a slot is handed to w, ctx ends
// or MaxWait passes. A slot handed over just as the wait ended is kept:
// the call runs.
func (l *Limiter) wait(ctx context.Context, w *waiter, el *list.Element, start time.Time) (func(), error) {
	timer := time.NewTimer(l.opts.MaxWait)
	defer timer.Stop()
	timedOut := false
	select {
	case <-w.ready:
	case <-ctx.Done():
	case <-timer.C:
		timedOut = true
	}
	l.mu.Lock()
	granted := w.granted
	if !granted {
		l.queue.Remove(el)
		l.metrics.set(l.running, l.queue.Len())
	}
	l.mu.Unlock()
	l.metrics.wait.Observe(time.Since(start).Seconds())
	switch {
	case granted:
		return l.releaser(), nil
	case w.drained:
		l.metrics.refused(reasonDraining)
		return nil, stopping()
	case timedOut:
		l.metrics.refused(reasonWait)
		return nil, l.waitedTooLong()
	}
	return nil, gaveUp(ctx)
}

// releaser returns the function that gives the caller's slot back, once.
func (l *Limiter) releaser() func() {
	var once sync.Once
	return func() { once.Do(l.release) }
}

// release hands the slot to the oldest waiter, or frees it.
func (l *Limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if front := l.queue.Front(); front != nil {
		w, _ := l.queue.Remove(front).(*waiter)
		w.granted = true
		close(w.ready)
	} else {
		l.running--
	}
	l.metrics.set(l.running, l.queue.Len())
}

// Drain is for a process that stops (a service after its drain delay,
// when it stops taking calls): every call waiting for a slot is refused at
// once as not started — the gateway then sends it elsewhere instead of it
// waiting for a slot until the stop's deadline cuts it — and so is every
// later call that finds no free slot. Calls running, and later calls that
// find a slot free, are not affected. Draining a nil Limiter does nothing.
func (l *Limiter) Drain() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.draining = true
	for front := l.queue.Front(); front != nil; front = l.queue.Front() {
		w, _ := l.queue.Remove(front).(*waiter)
		w.drained = true
		close(w.ready)
	}
	l.metrics.set(l.running, l.queue.Len())
}

// The agent-facing refusals. Each says the call was not started, so that
// the caller (and the gateway's fallback) knows a retry cannot apply it
// twice.
const retryHint = "nothing was done; retry in a few seconds"

func (l *Limiter) queueFull(shadow bool, waiting int) error {
	if shadow {
		return backends.NotStarted(backends.Errorf(backends.Unavailable,
			"this gitgate process is at capacity (all %d operation slots are busy, and shadow work does not wait for one); %s",
			l.opts.Slots, retryHint))
	}
	return backends.NotStarted(backends.Errorf(backends.Unavailable,
		"this gitgate process is at capacity (all %d operation slots are busy and %d calls are waiting already); %s",
		l.opts.Slots, waiting, retryHint))
}

func stopping() error {
	return backends.NotStarted(backends.Errorf(backends.Unavailable,
		"this gitgate process is stopping and had no operation slot free; %s", retryHint))
}

func (l *Limiter) waitedTooLong() error {
	return backends.NotStarted(backends.Errorf(backends.Unavailable,
		"this gitgate process is at capacity (no operation slot of %d became free within %s); %s",
		l.opts.Slots, l.opts.MaxWait, retryHint))
}

// gaveUp is the error of a caller whose context ended before it got a
// slot: canceled (backends.CallerGaveUp) or, past its own deadline,
// timeout.
func gaveUp(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return backends.NotStarted(&backends.Error{Category: backends.Timeout, Err: ctx.Err(),
			Message: "the call's deadline passed while it waited for an operation slot (this gitgate process is at capacity); nothing was done"})
	}
	return backends.CallerGaveUp(ctx, backends.NotStarted(backends.Errorf(backends.Unavailable,
		"the call was waiting for an operation slot: %w", ctx.Err())))
}
