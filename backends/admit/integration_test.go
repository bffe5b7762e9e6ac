package admit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/admit"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// peak counts how many are inside now and the most ever inside at once.
type peak struct{ now, most atomic.Int64 }

func (p *peak) enter() {
	n := p.now.Add(1)
	for m := p.most.Load(); n > m && !p.most.CompareAndSwap(m, n); m = p.most.Load() {
	}
}

func (p *peak) leave() { p.now.Add(-1) }

// countingLocker counts the callers acquiring or holding a workspace
// lock, from the moment they ask for it until they release it.
type countingLocker struct {
	lock.Locker
	inLock *peak
}

func (c countingLocker) Acquire(ctx context.Context, key string) (lock.Lease, error) {
	c.inLock.enter()
	l, err := c.Locker.Acquire(ctx, key)
	if err != nil {
		c.inLock.leave()
		return nil, err
	}
	return &countedLease{Lease: l, p: c.inLock}, nil
}

type countedLease struct {
	lock.Lease
	p    *peak
	once sync.Once
}

func (l *countedLease) Release(ctx context.Context) error {
	l.once.Do(l.p.leave)
	return l.Lease.Release(ctx)
}

// gated holds every call it admits until open is closed, counting the
// calls inside.
type gated struct {
	inner  backends.Executor
	open   chan struct{}
	inside *peak
}

func (g gated) Execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	g.inside.enter()
	defer g.inside.leave()
	<-g.open
	return g.inner.Execute(ctx, req)
}

// TestConcurrentWritesWithTwoSlots runs 24 writes at once on two
// workspaces through Approach 1 as the gateway runs it (the engine behind
// the exactly-once layer, workspace locks in Redis), behind a Limiter of 2
// slots and a queue of 3: the first two are held running until every
// other call has been queued or refused. Never more than 2 calls run, nor
// ask for or hold a workspace lock; the 19 refused calls are unavailable,
// marked not started, and wrote nothing; the 5 others succeeded and wrote
// their file.
func TestConcurrentWritesWithTwoSlots(t *testing.T) {
	const calls, slots, maxQueue = 24, 2, 3
	env := backendtest.NewEnv(t)
	rdb := backendtest.Redis(t)
	var inLock, inside peak
	locker := countingLocker{Locker: redislock.New(rdb, redislock.Options{Prefix: backendtest.RedisPrefix(t, rdb)}), inLock: &inLock}
	engine := backendtest.NewEngine(t, env, lock.Reentrant(locker), nil)
	once := backendtest.WithOnce(t, engine, locker, backendtest.NewDirJournal(t))
	for _, ws := range []string{"ws-a", "ws-b"} {
		backendtest.Clone(t, once, env, env.Agent, ws)
	}
	reg := prometheus.NewRegistry()
	l := admit.New(admit.Options{Slots: slots, MaxQueue: maxQueue, MaxWait: testkit.Patience, Registerer: reg, Name: "approach1"})
	open := make(chan struct{})
	ex := admit.Executor(gated{inner: once, open: open, inside: &inside}, l)

	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			req := &backends.WriteFileRequest{Scope: backends.Scope{Workspace: []string{"ws-a", "ws-b"}[i%2],
				IdempotencyKey: fmt.Sprintf("k-%d", i)}, Path: fmt.Sprintf("f-%02d.txt", i), Content: "x\n"}
			req.Principal = env.Agent
			_, errs[i] = ex.Execute(backendtest.Ctx(t), req)
		})
	}
	testkit.EventuallyNil(t, "every call beyond the slots and the queue is refused", func() error {
		refused, _ := testkit.SeriesValue(t, reg, "gitgate_admission_refused_total", map[string]string{"reason": "queue_full"})
		waiting, _ := testkit.SeriesValue(t, reg, "gitgate_admission_waiting", nil)
		running, _ := testkit.SeriesValue(t, reg, "gitgate_admission_running", nil)
		if refused != calls-slots-maxQueue || waiting != maxQueue || running != slots {
			return fmt.Errorf("refused %v, waiting %v, running %v", refused, waiting, running)
		}
		return nil
	})
	close(open)
	wg.Wait()

	succeeded := 0
	for i, err := range errs {
		ws, path := []string{"ws-a", "ws-b"}[i%2], fmt.Sprintf("f-%02d.txt", i)
		read := &backends.ReadFileRequest{Scope: backends.Scope{Workspace: ws}, Path: path}
		read.Principal = env.Agent
		_, readErr := once.Execute(backendtest.Ctx(t), read)
		switch {
		case err == nil:
			succeeded++
			if readErr != nil {
				t.Errorf("call %d succeeded but %s/%s cannot be read: %v", i, ws, path, readErr)
			}
		case backends.CategoryOf(err) != backends.Unavailable || !errors.Is(err, backends.ErrNotStarted):
			t.Errorf("call %d: %v, want success or unavailable marked not started", i, err)
		case backends.CategoryOf(readErr) != backends.NotFound:
			t.Errorf("call %d was refused (%v) but %s/%s exists (read: %v)", i, err, ws, path, readErr)
		}
	}
	if succeeded != slots+maxQueue {
		t.Errorf("%d calls succeeded, want %d (the slots and the queue)", succeeded, slots+maxQueue)
	}
	if m := inside.most.Load(); m > slots {
		t.Errorf("%d calls ran at once with %d slots", m, slots)
	}
	if m := inLock.most.Load(); m > slots {
		t.Errorf("%d calls asked for or held a workspace lock at once with %d slots", m, slots)
	}
	if inside.most.Load() != slots {
		t.Errorf("at most %d calls ran at once: the test did not fill the slots", inside.most.Load())
	}
}
