package sandbox_test

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
)

// billedProvider bills its sandboxes by the second, like E2B.
type billedProvider struct {
	*countingProvider
	perSecond float64
}

func (p billedProvider) CostPerSecond(string) float64 { return p.perSecond }

type sandboxEnd struct {
	id   string
	life time.Duration
	cost float64
}

// TestOnEndReportsLifeAndCost: the manager reports every sandbox it ends —
// reaped idle, destroyed at Close, forgotten as gone — with its life by the
// manager's clock and that life at the provider's price.
func TestOnEndReportsLifeAndCost(t *testing.T) {
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	var ends []sandboxEnd
	m, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: billedProvider{newProvider(t), 0.01}, Bindings: sandbox.NewMemoryBindings(),
		IdleTTL: ttl, Logger: slog.New(slog.DiscardHandler), Now: clk.Now,
		OnEnd: func(id string, life time.Duration, cost float64) {
			mu.Lock()
			ends = append(ends, sandboxEnd{id, life, cost})
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	acquire := func(agent string) sandbox.Info {
		info, release, err := m.Acquire(t.Context(), sandbox.Owner{Project: "p", Agent: agent})
		if err != nil {
			t.Fatal(err)
		}
		release()
		return info
	}
	last := func() sandboxEnd {
		mu.Lock()
		defer mu.Unlock()
		if len(ends) == 0 {
			t.Fatal("no sandbox end reported")
		}
		return ends[len(ends)-1]
	}
	same := func(got sandboxEnd, id string, life time.Duration) {
		t.Helper()
		if got.id != id || got.life != life || math.Abs(got.cost-life.Seconds()*0.01) > 1e-9 {
			t.Fatalf("end %+v, want %s after %v costing %v", got, id, life, life.Seconds()*0.01)
		}
	}

	a := acquire("a")
	clk.add(2 * ttl)
	if n := m.ReapIdle(t.Context()); n != 1 {
		t.Fatalf("reaped %d", n)
	}
	same(last(), a.ID, 2*ttl)

	b := acquire("b")
	clk.add(10 * time.Minute)
	m.Forget(t.Context(), b.ID)
	same(last(), b.ID, 10*time.Minute)

	c := acquire("c")
	clk.add(90 * time.Second)
	m.Close(context.WithoutCancel(t.Context()))
	same(last(), c.ID, 90*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(ends) != 3 {
		t.Fatalf("%d ends reported, want 3: %+v", len(ends), ends)
	}
}
