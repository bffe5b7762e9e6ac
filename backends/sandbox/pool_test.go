package sandbox_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// flakyProvider counts creations and fails the first failures of them.
type flakyProvider struct {
	sandbox.Provider
	creates  atomic.Int64
	failures atomic.Int64
}

func (f *flakyProvider) Create(ctx context.Context, opts sandbox.CreateOptions) (sandbox.Info, error) {
	f.creates.Add(1)
	if f.failures.Add(-1) >= 0 {
		return sandbox.Info{}, errors.New("provider down")
	}
	return f.Provider.Create(ctx, opts)
}

func newPool(t *testing.T, cfg sandbox.PoolConfig, failures int64) (*sandbox.Pool, *flakyProvider) {
	t.Helper()
	lp, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fp := &flakyProvider{Provider: lp}
	fp.failures.Store(failures)
	cfg.Provider = fp
	p, err := sandbox.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p, fp
}

func TestPoolHandsOutWarmSandboxesAndRefills(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, fp := newPool(t, sandbox.PoolConfig{MinIdle: 3, MaxSize: 10, Registerer: reg}, 0)
	testkit.Eventually(t, "the pool is filled", p.Ready)
	before := fp.creates.Load()
	owner := sandbox.Owner{Project: "alpha"}
	info, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: owner})
	if err != nil || info.Owner != owner || info.ID == "" {
		t.Fatalf("create: %+v %v", info, err)
	}
	if warm, cold := acquisitions(t, reg); warm != 1 || cold != 0 {
		t.Fatalf("acquisitions warm %v cold %v: the caller waited for a creation", warm, cold)
	}
	testkit.Eventually(t, "the pool refills to MinIdle", func() bool { return fp.creates.Load() == before+1 && p.Ready() })
	// A handed-out sandbox never goes back to the idle set: destroying it
	// frees room, and later acquisitions get other sandboxes.
	if err := p.Destroy(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for range 5 {
		next, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "beta"}})
		if err != nil {
			t.Fatal(err)
		}
		if next.ID == info.ID || slices.Contains(seen, next.ID) {
			t.Fatalf("sandbox %s handed out twice", next.ID)
		}
		seen = append(seen, next.ID)
	}
}

func TestPoolQueueIsBoundedAndTimesOut(t *testing.T) {
	p, _ := newPool(t, sandbox.PoolConfig{MinIdle: 1, MaxSize: 1, MaxQueue: 1, AcquireTimeout: 300 * time.Millisecond}, 0)
	testkit.Eventually(t, "the pool is filled", p.Ready)
	held, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	waitErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "b"}})
		waitErr <- err
	}()
	testkit.Eventually(t, "one caller queues", func() bool { return queueDepth(p) == 1 })
	_, err = p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "c"}})
	if backends.CategoryOf(err) != backends.ResourceExhausted {
		t.Fatalf("a caller beyond the queue got %v, want resource_exhausted at once", err)
	}
	wg.Wait()
	if err := <-waitErr; backends.CategoryOf(err) != backends.ResourceExhausted {
		t.Fatalf("a caller past the acquire timeout got %v", err)
	}
	// Freed room goes to the next caller.
	go func() { time.Sleep(50 * time.Millisecond); _ = p.Destroy(context.WithoutCancel(t.Context()), held.ID) }()
	if _, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "d"}}); err != nil {
		t.Fatalf("a waiting caller did not get the freed room: %v", err)
	}
}

func TestPoolRefillBacksOffWhileTheProviderFails(t *testing.T) {
	p, fp := newPool(t, sandbox.PoolConfig{MinIdle: 1, MaxSize: 4, RefillBackoff: 20 * time.Millisecond, MaxRefillBackoff: 80 * time.Millisecond}, 5)
	testkit.Eventually(t, "the pool fills once the provider recovers", p.Ready)
	if n := fp.creates.Load(); n != 6 {
		t.Fatalf("%d creation attempts for 5 failures and one success", n)
	}
}

func TestManagerTakesWarmSandboxesFromThePool(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, fp := newPool(t, sandbox.PoolConfig{MinIdle: 2, MaxSize: 4, Registerer: reg}, 0)
	testkit.Eventually(t, "the pool is filled", p.Ready)
	clock := time.Unix(1_800_000_000, 0)
	mgr, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: fp, Creator: p, Bindings: sandbox.NewMemoryBindings(),
		IdleTTL: time.Hour, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	_, release, err := mgr.Acquire(t.Context(), sandbox.Owner{Project: "alpha"})
	if warm, cold := acquisitions(t, reg); err != nil || warm != 1 || cold != 0 {
		t.Fatalf("acquire: %v (warm %v, cold %v)", err, warm, cold)
	}
	release()
	clock = clock.Add(2 * time.Hour)
	if n := mgr.ReapIdle(t.Context()); n != 1 {
		t.Fatalf("reaped %d", n)
	}
	testkit.Eventually(t, "room freed by the reap is refilled", func() bool { return p.Ready() })
}

// acquisitions reads the pool's warm and cold acquisition counters.
func acquisitions(t *testing.T, reg *prometheus.Registry) (warm, cold float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gitgate_pool_acquisitions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				switch {
				case l.GetName() == "source" && l.GetValue() == "warm":
					warm = m.GetCounter().GetValue()
				case l.GetName() == "source" && l.GetValue() == "cold":
					cold = m.GetCounter().GetValue()
				}
			}
		}
	}
	return warm, cold
}

func queueDepth(p *sandbox.Pool) int {
	return p.QueueDepth()
}

// BenchmarkPoolAcquisition compares taking a warm sandbox from the pool with
// creating one cold, in the same run, and reports the ratio.
func BenchmarkPoolAcquisition(b *testing.B) {
	lp, err := local.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	p, err := sandbox.NewPool(sandbox.PoolConfig{Provider: lp, MinIdle: 64, MaxSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	go p.Run(ctx)
	var warm, cold time.Duration
	for b.Loop() {
		for !p.Ready() {
			time.Sleep(time.Millisecond)
		}
		t0 := time.Now()
		info, err := p.Create(ctx, sandbox.CreateOptions{Owner: sandbox.Owner{Project: "a"}})
		t1 := time.Now()
		coldInfo, err2 := lp.Create(ctx, sandbox.CreateOptions{Owner: sandbox.Owner{Project: "a"}})
		t2 := time.Now()
		if err != nil || err2 != nil {
			b.Fatal(err, err2)
		}
		warm, cold = warm+t1.Sub(t0), cold+t2.Sub(t1)
		_ = p.Destroy(ctx, info.ID)
		_ = lp.Destroy(ctx, coldInfo.ID)
	}
	b.ReportMetric(float64(warm.Nanoseconds())/float64(b.N), "warm-ns/op")
	b.ReportMetric(float64(cold.Nanoseconds())/float64(b.N), "cold-ns/op")
	b.ReportMetric(float64(cold)/float64(warm), "cold/warm")
}

// TestPoolWithoutWarmSandboxes: MinIdle 0 keeps none ready (on E2B each
// idle sandbox is billed); sandboxes are then created on demand.
func TestPoolWithoutWarmSandboxes(t *testing.T) {
	p, fp := newPool(t, sandbox.PoolConfig{MinIdle: 0, MaxSize: 4}, 0)
	time.Sleep(100 * time.Millisecond)
	if n := fp.creates.Load(); n != 0 || !p.Ready() {
		t.Fatalf("%d sandboxes created ahead of need (ready %v), want none", n, p.Ready())
	}
	if _, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "p"}}); err != nil {
		t.Fatal(err)
	}
	if n := fp.creates.Load(); n != 1 {
		t.Fatalf("%d creates for one demand", n)
	}
}

// TestPoolPreparesIdleSandboxes: every sandbox the pool keeps idle is
// prepared before it counts as ready, and handed out as Prepare returned
// it; one Prepare fails on is destroyed and counts as a failed refill
// (the pool backs off and tries a new one).
func TestPoolPreparesIdleSandboxes(t *testing.T) {
	var mu sync.Mutex
	prepared := map[string]bool{}
	failures := 1
	prepare := func(ctx context.Context, info sandbox.Info) (sandbox.Info, error) {
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			return sandbox.Info{}, errors.New("seed unreachable")
		}
		prepared[info.ID] = true
		info.Root += "/prepared"
		return info, nil
	}
	p, fp := newPool(t, sandbox.PoolConfig{MinIdle: 1, MaxSize: 2, Prepare: prepare, RefillBackoff: 10 * time.Millisecond}, 0)
	testkit.Eventually(t, "the pool is filled", p.Ready)
	if n := fp.creates.Load(); n != 2 {
		t.Fatalf("%d sandboxes created, want 2: one Prepare failed on, one ready", n)
	}
	live, err := fp.Provider.(sandbox.Lister).List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 {
		t.Fatalf("%d sandboxes live, want only the prepared one: the one Prepare failed on is destroyed", len(live))
	}
	warm, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	ok := prepared[warm.ID]
	mu.Unlock()
	if !ok || !strings.HasSuffix(warm.Root, "/prepared") {
		t.Fatalf("warm sandbox %+v was not handed out as Prepare returned it", warm)
	}
}

// TestPoolDoesNotPrepareColdSandboxes: a caller that finds no sandbox
// idle gets one created for it, unprepared.
func TestPoolDoesNotPrepareColdSandboxes(t *testing.T) {
	var calls atomic.Int64
	prepare := func(ctx context.Context, info sandbox.Info) (sandbox.Info, error) {
		calls.Add(1)
		return info, nil
	}
	p, _ := newPool(t, sandbox.PoolConfig{MinIdle: 0, MaxSize: 2, Prepare: prepare}, 0)
	if _, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "p"}}); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("Prepare ran %d times for a sandbox created cold", n)
	}
}
