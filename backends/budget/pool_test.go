package budget

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestPoolSandboxes: the service's warm pool fills through the decorator;
// a warm sandbox handed out to a project whose budget is spent is not a
// creation (the workspace gets it), and from then on its running time is
// charged to that project, before only to the total.
func TestPoolSandboxes(t *testing.T) {
	c := &clock{time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	store := fileStore(t)
	b, _ := newTestBudget(t, c, store, nil) // $10 overall, alpha $4
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return c.t }
	b.cfg.Now = now
	p, err := NewProvider(&fakeProvider{live: map[string]sandbox.Info{}}, b, ProviderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sandbox.NewPool(sandbox.PoolConfig{Provider: p.Sandbox(), MinIdle: 1, MaxSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	m, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: p.Sandbox(), Creator: pool, Bindings: sandbox.NewMemoryBindings()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { pool.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); m.Close(context.Background()) })
	testkit.Eventually(t, "the pool filled", pool.Ready)
	if err := store.Add(t.Context(), MonthOf(c.t), c.t, map[string]float64{"alpha": 4}); err != nil {
		t.Fatal(err)
	}
	info, release, err := m.Acquire(t.Context(), sandbox.Owner{Project: "alpha"})
	if err != nil {
		t.Fatalf("a warm sandbox for alpha with its budget spent: %v", err)
	}
	release()
	testkit.Eventually(t, "the pool refilled", pool.Ready) // the refill is created before the clock moves
	mu.Lock()
	c.t = c.t.Add(3 * time.Second)
	mu.Unlock()
	p.Accrue(t.Context())
	sp, err := store.Spent(t.Context(), MonthOf(now()))
	if err != nil {
		t.Fatal(err)
	}
	// alpha: its $4 and 3 s of its sandbox; the total: both sandboxes the
	// pool made (the one handed out and its refill), 3 s each.
	p.mu.Lock()
	live := len(p.live)
	_, tracked := p.live[info.ID]
	p.mu.Unlock()
	if !tracked || live != 2 || sp.ByScope["alpha"] != 7 || sp.ByScope[TotalScope] != 6 {
		t.Fatalf("alpha $%v (want $7), total $%v for %d live sandboxes", sp.ByScope["alpha"], sp.ByScope[TotalScope], live)
	}
}
