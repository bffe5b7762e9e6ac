package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
	"github.com/prometheus/client_golang/prometheus"
)

type shadowDecider struct{}

func (shadowDecider) Decide(context.Context, string, string) flags.Decision {
	return flags.Decision{Backend: "approach1", ShadowRate: 1}
}

type collected struct {
	mu  sync.Mutex
	obs []ShadowObservation
	got chan struct{}
}

func (c *collected) observe(o ShadowObservation) {
	c.mu.Lock()
	c.obs = append(c.obs, o)
	c.mu.Unlock()
	c.got <- struct{}{}
}

func statusOf(ahead int) backends.ExecutorFunc {
	return func(context.Context, backends.Request) (backends.Result, error) {
		return &backends.StatusResult{Branch: "main", Ahead: ahead, Entries: []backends.StatusEntry{}}, nil
	}
}

func shadowRouter(t *testing.T, a1, a2 backends.Executor, cfg ShadowConfig) (*Router, *collected) {
	t.Helper()
	c := &collected{got: make(chan struct{}, 1000)}
	cfg.Observe = c.observe
	r, err := NewRouter(RouterConfig{Backends: map[string]backends.Executor{"approach1": a1, "approach2": a2}, Default: "approach1",
		Flags: shadowDecider{}, Shadow: cfg, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

func (c *collected) wait(t *testing.T, n int) []ShadowObservation {
	t.Helper()
	for range n {
		select {
		case <-c.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d comparisons arrived", len(c.obs), n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ShadowObservation(nil), c.obs...)
}

func TestAAShadowingFindsNoMismatch(t *testing.T) {
	r, c := shadowRouter(t, statusOf(0), statusOf(7), ShadowConfig{Self: true})
	for range 200 {
		if _, err := r.Execute(t.Context(), req(backends.OpStatus)); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range c.wait(t, 200) {
		if o.Outcome != "match" && o.Outcome != "skipped" || o.Shadow != "approach1" {
			t.Fatalf("A/A comparison %+v", o)
		}
	}
}

func TestShadowMismatchHasAReadableDiff(t *testing.T) {
	r, c := shadowRouter(t, statusOf(0), statusOf(1), ShadowConfig{})
	if _, err := r.Execute(t.Context(), req(backends.OpStatus)); err != nil {
		t.Fatal(err)
	}
	o := c.wait(t, 1)[0]
	if o.Outcome != "mismatch" || o.Shadow != "approach2" || o.Diff != "ahead: primary 0 / shadow 1" {
		t.Fatalf("comparison %+v", o)
	}
}

// TestShadowNeverDelaysTheAgent: the primary returns while the shadow is
// still blocked; a shadow past its budget is recorded as abandoned.
func TestShadowNeverDelaysTheAgent(t *testing.T) {
	release := make(chan struct{})
	blocked := backends.ExecutorFunc(func(ctx context.Context, req backends.Request) (backends.Result, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return statusOf(0)(ctx, req)
	})
	r, c := shadowRouter(t, statusOf(0), blocked, ShadowConfig{Budget: 100 * time.Millisecond})
	if _, err := r.Execute(t.Context(), req(backends.OpStatus)); err != nil {
		t.Fatal(err)
	}
	// Execute returned although the shadow cannot finish before the budget.
	if o := c.wait(t, 1)[0]; o.Outcome != "shadow_timeout" {
		t.Fatalf("comparison %+v", o)
	}
	close(release)
}

func TestWritesAreNotShadowed(t *testing.T) {
	a2 := &scripted{}
	r, _ := shadowRouter(t, statusOf(0), a2, ShadowConfig{})
	for _, op := range []backends.Op{backends.OpPush, backends.OpCommit, backends.OpWriteFile, backends.OpClone} {
		_, _ = r.Execute(t.Context(), req(op))
	}
	time.Sleep(50 * time.Millisecond)
	if n := a2.calls.Load(); n != 0 {
		t.Fatalf("approach2 received %d shadow writes", n)
	}
}
