package sandbox_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
)

const ttl = time.Hour

func TestNewManagerNeedsProviderAndBindings(t *testing.T) {
	if _, err := sandbox.NewManager(sandbox.ManagerConfig{Bindings: sandbox.NewMemoryBindings()}); err == nil {
		t.Error("NewManager without a Provider succeeded")
	}
	if _, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: newProvider(t)}); err == nil {
		t.Error("NewManager without Bindings succeeded")
	}
}

func TestAcquireOnePerOwner(t *testing.T) {
	e := newEnv(t)
	owners := []sandbox.Owner{{Project: "p"}, {Project: "q"}, {Project: "p", Agent: "a"}, {Project: "p", Agent: "b"}}
	ids := map[string]sandbox.Owner{}
	for _, o := range owners {
		first := e.acquire(o)
		second := e.acquire(o)
		if first.ID != second.ID {
			t.Errorf("owner %v: two Acquires gave %s and %s", o, first.ID, second.ID)
		}
		if first.Owner != o {
			t.Errorf("owner %v: sandbox belongs to %v", o, first.Owner)
		}
		if prev, dup := ids[first.ID]; dup {
			t.Errorf("owners %v and %v share sandbox %s", prev, o, first.ID)
		}
		ids[first.ID] = o
		if got, _ := e.p.Find(t.Context(), o); len(got) != 1 {
			t.Errorf("provider has %d sandboxes for %v, want 1", len(got), o)
		}
	}
	if n := e.p.creates.Load(); n != int32(len(owners)) {
		t.Errorf("Create called %d times, want %d", n, len(owners))
	}
	if got := e.metric("gitgate_sandboxes_active", ""); got != float64(len(owners)) {
		t.Errorf("gitgate_sandboxes_active = %v, want %d", got, len(owners))
	}
}

func TestConcurrentAcquireCreatesOne(t *testing.T) {
	e := newEnv(t)
	owner := sandbox.Owner{Project: "p"}
	start := make(chan struct{})
	ids := make(chan string, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			<-start
			info, release, err := e.m.Acquire(t.Context(), owner)
			if err != nil {
				t.Error(err)
				return
			}
			release()
			ids <- info.ID
		})
	}
	close(start)
	wg.Wait()
	close(ids)
	first := ""
	for id := range ids {
		if first == "" {
			first = id
		} else if id != first {
			t.Errorf("concurrent Acquires got different sandboxes %s and %s", first, id)
		}
	}
	if n := e.p.creates.Load(); n != 1 {
		t.Errorf("Create called %d times, want 1", n)
	}
	if got, _ := e.p.Find(t.Context(), owner); len(got) != 1 {
		t.Errorf("provider has %d sandboxes for the owner, want 1", len(got))
	}
}

func TestSlowCreateDoesNotBlockOtherOwners(t *testing.T) {
	e := newEnv(t)
	e.p.gate = make(chan struct{})
	slowDone := make(chan error, 1)
	go func() {
		_, release, err := e.m.Acquire(t.Context(), sandbox.Owner{Project: "slow"})
		if err == nil {
			release()
		}
		slowDone <- err
	}()
	e.acquire(sandbox.Owner{Project: "fast"}) // must not wait for "slow"
	close(e.p.gate)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
}

func TestTTLExtendedAtMostFourTimesPerTTL(t *testing.T) {
	e := newEnv(t)
	info := e.acquire(sandbox.Owner{Project: "p"})
	e.use(info.ID)
	if n := e.p.setTTLs.Load(); n != 0 {
		t.Errorf("SetTTL called %d times right after create, want 0", n)
	}
	e.clock.add(ttl / 4)
	e.use(info.ID)
	e.use(info.ID)
	if n := e.p.setTTLs.Load(); n != 1 {
		t.Errorf("SetTTL called %d times after TTL/4, want 1", n)
	}
}

func TestCreateMetrics(t *testing.T) {
	e := newEnv(t)
	e.acquire(sandbox.Owner{Project: "p"})
	if got := e.metric("gitgate_sandbox_create_seconds", "ok"); got != 1 {
		t.Errorf(`create_seconds{outcome="ok"} count = %v, want 1`, got)
	}

	e.p.fail.Store(true)
	_, _, err := e.m.Acquire(t.Context(), sandbox.Owner{Project: "q"})
	if err == nil {
		t.Fatal("Acquire succeeded although the provider failed")
	}
	if c := backends.CategoryOf(err); c != backends.Unavailable {
		t.Errorf("Acquire error category %q, want the provider's %q", c, backends.Unavailable)
	}
	if got := e.metric("gitgate_sandbox_create_seconds", "error"); got != 1 {
		t.Errorf(`create_seconds{outcome="error"} count = %v, want 1`, got)
	}
	if got := e.metric("gitgate_sandboxes_active", ""); got != 1 {
		t.Errorf("gitgate_sandboxes_active = %v after a failed create, want 1", got)
	}

	// A failed create leaves nothing behind: the next Acquire tries again.
	e.p.fail.Store(false)
	e.acquire(sandbox.Owner{Project: "q"})
	if got := e.metric("gitgate_sandbox_create_seconds", "ok"); got != 2 {
		t.Errorf(`create_seconds{outcome="ok"} count = %v, want 2`, got)
	}
}

// --- helpers ---

// clock is a controllable ManagerConfig.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// countingProvider is the local provider, counting calls; Create can be made
// to fail or to wait on gate for owners of project "slow".
type countingProvider struct {
	*local.Provider
	creates, setTTLs atomic.Int32
	fail             atomic.Bool
	gate             chan struct{}
}

func (p *countingProvider) Create(ctx context.Context, opts sandbox.CreateOptions) (sandbox.Info, error) {
	p.creates.Add(1)
	if p.fail.Load() {
		return sandbox.Info{}, backends.Errorf(backends.Unavailable, "provider down")
	}
	if p.gate != nil && opts.Owner.Project == "slow" {
		<-p.gate
	}
	return p.Provider.Create(ctx, opts)
}

func (p *countingProvider) SetTTL(ctx context.Context, id string, d time.Duration) error {
	p.setTTLs.Add(1)
	return p.Provider.SetTTL(ctx, id, d)
}

func newProvider(t *testing.T) *countingProvider {
	t.Helper()
	lp, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &countingProvider{Provider: lp}
}

type env struct {
	t        *testing.T
	p        *countingProvider
	m        *sandbox.Manager
	bindings *sandbox.MemoryBindings
	clock    *clock
	reg      *prometheus.Registry
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, p: newProvider(t), bindings: sandbox.NewMemoryBindings(), reg: prometheus.NewRegistry(),
		clock: &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}}
	m, err := sandbox.NewManager(sandbox.ManagerConfig{
		Provider: e.p, Bindings: e.bindings, IdleTTL: ttl, Registerer: e.reg,
		Logger: slog.New(slog.DiscardHandler), Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	e.m = m
	return e
}

// acquire takes owner's sandbox and releases it at once.
func (e *env) acquire(owner sandbox.Owner) sandbox.Info {
	e.t.Helper()
	info, release, err := e.m.Acquire(e.t.Context(), owner)
	if err != nil {
		e.t.Fatalf("Acquire(%v): %v", owner, err)
	}
	release()
	return info
}

func (e *env) use(id string) {
	e.t.Helper()
	release, ok := e.m.Use(e.t.Context(), id)
	if !ok {
		e.t.Fatalf("Use(%s): sandbox gone", id)
	}
	release()
}

// metric returns a gauge's or counter's value, or a histogram's sample count
// for the given outcome label, with provider="local". It reads the registry
// directly: prometheus/testutil would pull a module (kylelemons/godebug) that
// go.mod does not list.
func (e *env) metric(name, outcome string) float64 {
	e.t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] != "local" || labels["outcome"] != outcome {
				continue
			}
			switch {
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
