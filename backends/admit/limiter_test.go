package admit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// queued waits until n calls are in l's queue.
func queued(t *testing.T, l *Limiter, n int) {
	t.Helper()
	testkit.EventuallyNil(t, fmt.Sprintf("%d calls are queued", n), func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if got := l.queue.Len(); got != n {
			return fmt.Errorf("%d queued", got)
		}
		return nil
	})
}

// take admits one call at once, failing the test otherwise.
func take(t *testing.T, l *Limiter) func() {
	t.Helper()
	release, err := l.Admit(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return release
}

// admitLater starts Admit in a goroutine; its outcome arrives on the
// returned channel (the release function, or the error).
type outcome struct {
	release func()
	err     error
}

func admitLater(ctx context.Context, l *Limiter) <-chan outcome {
	out := make(chan outcome, 1)
	go func() {
		r, err := l.Admit(ctx)
		out <- outcome{r, err}
	}()
	return out
}

// wantRefused fails unless err is an admission refusal: category want,
// marked not started, saying what it must.
func wantRefused(t *testing.T, err error, want backends.Category, says string) {
	t.Helper()
	if backends.CategoryOf(err) != want || !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), says) {
		t.Fatalf("got %v (category %q, not started %t), want %s marked not started saying %q",
			err, backends.CategoryOf(err), errors.Is(err, backends.ErrNotStarted), want, says)
	}
}

// TestSlotsAreRespected: 3 slots, 12 callers each holding its slot for a
// while: never more than 3 hold one at once, the rest queue, and all are
// admitted in the end.
func TestSlotsAreRespected(t *testing.T) {
	l := New(Options{Slots: 3, MaxQueue: 100})
	var inside, most atomic.Int64
	gate := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for range 12 {
		wg.Go(func() {
			release, err := l.Admit(t.Context())
			if err != nil {
				errs <- err
				return
			}
			defer release()
			n := inside.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-gate
			inside.Add(-1)
		})
	}
	queued(t, l, 9)
	if got := testutil.ToFloat64(l.metrics.running); got != 3 {
		t.Errorf("gitgate_admission_running = %v with every slot taken, want 3", got)
	}
	if got := testutil.ToFloat64(l.metrics.waiting); got != 9 {
		t.Errorf("gitgate_admission_waiting = %v, want 9", got)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a caller was refused: %v", err)
	}
	if most.Load() != 3 {
		t.Errorf("at most %d callers held a slot at once, want 3", most.Load())
	}
	if r, w := testutil.ToFloat64(l.metrics.running), testutil.ToFloat64(l.metrics.waiting); r != 0 || w != 0 {
		t.Errorf("after every call: running %v, waiting %v; want 0 and 0", r, w)
	}
}

// TestFirstComeFirstServed: with one slot, queued callers get it in the
// order they queued, and a newcomer does not jump the queue when the slot
// is handed over.
func TestFirstComeFirstServed(t *testing.T) {
	l := New(Options{Slots: 1, MaxQueue: 10})
	hold := take(t, l)
	var order []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			release, err := l.Admit(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			release()
		})
		queued(t, l, i+1) // the next one queues behind this one
	}
	hold()
	wg.Wait()
	if fmt.Sprint(order) != "[0 1 2 3 4]" {
		t.Fatalf("admitted in the order %v, want the order they queued in", order)
	}
}

// TestQueueFullIsRefusedAtOnce: with the slot taken and MaxQueue calls
// queued, the next call is refused as unavailable at once, counted as
// queue_full.
func TestQueueFullIsRefusedAtOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := New(Options{Slots: 1, MaxQueue: 2, Registerer: reg, Name: "approach1"})
	hold := take(t, l)
	a, b := admitLater(t.Context(), l), admitLater(t.Context(), l)
	queued(t, l, 2)
	_, err := l.Admit(t.Context())
	wantRefused(t, err, backends.Unavailable, "at capacity (all 1 operation slots are busy and 2 calls are waiting already); nothing was done; retry in a few seconds")
	if v, _ := testkit.SeriesValue(t, reg, "gitgate_admission_refused_total", map[string]string{"reason": "queue_full", "backend": "approach1"}); v != 1 {
		t.Errorf("refused_total{reason=queue_full} = %v, want 1", v)
	}
	hold()
	for range 2 { // whichever queued first gets the slot first
		var o outcome
		select {
		case o = <-a:
		case o = <-b:
		}
		if o.err != nil {
			t.Fatalf("a queued call was refused: %v", o.err)
		}
		o.release()
	}
}

// TestMaxWaitRefuses: a call that gets no slot within MaxWait leaves the
// queue refused as unavailable, counted as wait.
func TestMaxWaitRefuses(t *testing.T) {
	l := New(Options{Slots: 1, MaxWait: 20 * time.Millisecond})
	hold := take(t, l)
	defer hold()
	_, err := l.Admit(t.Context())
	wantRefused(t, err, backends.Unavailable, "no operation slot of 1 became free within 20ms")
	if v := testutil.ToFloat64(l.metrics.refusedTotal.WithLabelValues("wait")); v != 1 {
		t.Errorf("refused_total{reason=wait} = %v, want 1", v)
	}
	if v := testutil.ToFloat64(l.metrics.refusedTotal.WithLabelValues("queue_full")); v != 0 {
		t.Errorf("refused_total{reason=queue_full} = %v, want 0", v)
	}
	if w := testutil.ToFloat64(l.metrics.waiting); w != 0 {
		t.Errorf("waiting = %v after the refusal, want 0", w)
	}
}

// TestCallerGivingUpLeavesTheQueue: a queued caller whose context is
// cancelled leaves the queue at once with a canceled error (not started);
// one whose deadline passes gets a timeout. Neither takes the slot when
// it is freed, and neither counts as refused.
func TestCallerGivingUpLeavesTheQueue(t *testing.T) {
	l := New(Options{Slots: 1, MaxWait: time.Hour})
	hold := take(t, l)
	ctx, cancel := context.WithCancel(t.Context())
	gone := admitLater(ctx, l)
	queued(t, l, 1)
	cancel()
	o := <-gone
	wantRefused(t, o.err, backends.Canceled, "the caller gave up")
	if !errors.Is(o.err, context.Canceled) {
		t.Errorf("%v: want context.Canceled in the chain", o.err)
	}
	queued(t, l, 0)

	deadline, stop := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer stop()
	o = <-admitLater(deadline, l)
	wantRefused(t, o.err, backends.Timeout, "deadline passed while it waited for an operation slot")
	queued(t, l, 0)

	hold()
	if r := testutil.ToFloat64(l.metrics.running); r != 0 {
		t.Errorf("running = %v after the only holder released, want 0 (the slot went to a caller that had left)", r)
	}
	for _, reason := range []string{"wait", "queue_full"} {
		if v := testutil.ToFloat64(l.metrics.refusedTotal.WithLabelValues(reason)); v != 0 {
			t.Errorf("refused_total{reason=%s} = %v, want 0: the callers gave up", reason, v)
		}
	}
	if _, err := l.Admit(ctx); backends.CategoryOf(err) != backends.Canceled {
		t.Errorf("a caller already gone: %v, want canceled", err)
	}
}

// TestShadowNeverQueues: shadow work takes a free slot, but is refused at
// once (queue_full) when none is free, even with room in the queue; it
// never gets in front of a queued real call.
func TestShadowNeverQueues(t *testing.T) {
	l := New(Options{Slots: 1, MaxQueue: 10, MaxWait: time.Hour})
	shadow := backends.WithShadow(t.Context())
	release, err := l.Admit(shadow)
	if err != nil {
		t.Fatalf("shadow work with a slot free: %v", err)
	}
	real := admitLater(t.Context(), l)
	queued(t, l, 1)
	_, err = l.Admit(shadow)
	wantRefused(t, err, backends.Unavailable, "shadow work does not wait")
	release()
	o := <-real
	if o.err != nil {
		t.Fatal(o.err)
	}
	if _, err := l.Admit(shadow); backends.CategoryOf(err) != backends.Unavailable {
		t.Errorf("shadow work while the real call holds the slot: %v, want unavailable", err)
	}
	o.release()
	if v := testutil.ToFloat64(l.metrics.refusedTotal.WithLabelValues("queue_full")); v != 2 {
		t.Errorf("refused_total{reason=queue_full} = %v, want 2", v)
	}
}

// TestMetricsAreRegistered: the four families, labelled with the
// backend, and the wait histogram counting admitted and timed-out calls.
func TestMetricsAreRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := New(Options{Slots: 2, MaxWait: 10 * time.Millisecond, Registerer: reg, Name: "approach2"})
	r1, r2 := take(t, l), take(t, l)
	if v, _ := testkit.SeriesValue(t, reg, "gitgate_admission_running", map[string]string{"backend": "approach2"}); v != 2 {
		t.Errorf("gitgate_admission_running = %v, want 2", v)
	}
	if _, err := l.Admit(t.Context()); err == nil {
		t.Fatal("a third call was admitted with 2 slots taken")
	}
	r1()
	r1() // releasing twice frees one slot only
	if v := testutil.ToFloat64(l.metrics.running); v != 1 {
		t.Errorf("running = %v after one holder released (twice), want 1", v)
	}
	r2()
	count, err := testutil.GatherAndCount(reg, "gitgate_admission_running", "gitgate_admission_waiting",
		"gitgate_admission_wait_seconds", "gitgate_admission_refused_total")
	if err != nil || count != 6 { // refused_total has its three reasons from zero
		t.Errorf("%d series (%v), want 6", count, err)
	}
	samples := histogramCount(t, reg, "gitgate_admission_wait_seconds")
	if samples != 3 { // two admitted at once, one refused after waiting
		t.Errorf("wait histogram has %d samples, want 3", samples)
	}
}

func histogramCount(t *testing.T, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

// TestDefaults: 4 × GOMAXPROCS slots, 16 × slots queued, 30 s; a nil
// Limiter admits everything.
func TestDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Slots != 4*runtime.GOMAXPROCS(0) || o.MaxQueue != 16*o.Slots || o.MaxWait != 30*time.Second {
		t.Fatalf("defaults %+v", o)
	}
	var l *Limiter
	release, err := l.Admit(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	release()
	if l.Slots() != 0 {
		t.Errorf("a nil Limiter has %d slots", l.Slots())
	}
}

// TestDrainRefusesTheQueue: Drain refuses every queued call at once as
// not started (reason draining), and every later call that finds no free
// slot; the call running keeps its slot, and a later call that finds one
// free still runs.
func TestDrainRefusesTheQueue(t *testing.T) {
	l := New(Options{Slots: 1, MaxWait: time.Hour})
	hold := take(t, l)
	a, b := admitLater(t.Context(), l), admitLater(t.Context(), l)
	queued(t, l, 2)
	l.Drain()
	for _, ch := range []<-chan outcome{a, b} {
		o := <-ch
		wantRefused(t, o.err, backends.Unavailable, "this gitgate process is stopping and had no operation slot free")
	}
	_, err := l.Admit(t.Context())
	wantRefused(t, err, backends.Unavailable, "stopping")
	if v := testutil.ToFloat64(l.metrics.refusedTotal.WithLabelValues("draining")); v != 3 {
		t.Errorf("refused_total{reason=draining} = %v, want 3", v)
	}
	if w := testutil.ToFloat64(l.metrics.waiting); w != 0 {
		t.Errorf("waiting = %v after the drain, want 0", w)
	}
	hold()
	take(t, l)() // a slot free: admitted although draining
	var nilLimiter *Limiter
	nilLimiter.Drain()
}
