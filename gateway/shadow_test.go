package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/prometheus/client_golang/prometheus"
)

type shadowDecider struct{}

func (shadowDecider) Decide(context.Context, string, string) flags.Decision {
	return flags.Decision{Backend: "approach1", ShadowRate: 1}
}

type collected struct {
	mu  sync.Mutex
	obs []canary.Entry
	got chan struct{}
}

func (c *collected) observe(o canary.Entry) {
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
	if cfg.Budget == 0 {
		// Shadows run at the lowest CPU priority: on a loaded machine real
		// git predictions may take long, which only makes a test slower.
		cfg.Budget = time.Minute
	}
	r, err := NewRouter(RouterConfig{Backends: map[backends.Name]backends.Executor{"approach1": a1, "approach2": a2}, Default: "approach1",
		Flags: shadowDecider{}, Shadow: cfg, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

func (c *collected) wait(t *testing.T, n int) []canary.Entry {
	t.Helper()
	for range n {
		select {
		case <-c.got:
		case <-time.After(time.Minute): // generous: a loaded machine only makes it slower
			t.Fatalf("only %d of %d comparisons arrived", len(c.obs), n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]canary.Entry(nil), c.obs...)
}

func TestAAShadowingFindsNoMismatch(t *testing.T) {
	r, c := shadowRouter(t, statusOf(0), statusOf(7), ShadowConfig{Self: true})
	for range 200 {
		if _, err := r.Execute(t.Context(), req(backends.OpStatus)); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range c.wait(t, 200) {
		if o.Outcome != "match" && o.Outcome != "skipped" || o.Backend != "approach1" {
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
	if o.Outcome != "mismatch" || o.Backend != "approach2" || o.Detail != "ahead: primary 0 / shadow 1" {
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

// predicting is a shadow backend that predicts writes with a script.
type predicting struct {
	scripted
	predictions atomic.Int64
	predict     func(backends.Request, backends.Result) (*backends.Prediction, error)
}

func (p *predicting) Predict(_ context.Context, req backends.Request, primary backends.Result) (*backends.Prediction, error) {
	p.predictions.Add(1)
	return p.predict(req, primary)
}

// TestWritesArePredictedNeverRepeated: a shadowed write is never executed
// on the shadow backend, only predicted; the prediction's facts are
// compared with what the primary did (a readable diff when they differ),
// and a stale prediction is recorded as such, not as a mismatch.
func TestWritesArePredictedNeverRepeated(t *testing.T) {
	a2 := &predicting{predict: func(req backends.Request, primary backends.Result) (*backends.Prediction, error) {
		switch req.Op() {
		case backends.OpCommit:
			return &backends.Prediction{Expected: map[string]string{"tree": "t1"}, Found: map[string]string{"tree": "t1"}}, nil
		case backends.OpPush:
			return &backends.Prediction{Expected: map[string]string{"remote_head": "abc"}, Found: map[string]string{"remote_head": "def"}}, nil
		case backends.OpWriteFile:
			return &backends.Prediction{Stale: "the workspace moved on"}, nil
		}
		panic("a shadow bug")
	}}
	r, c := shadowRouter(t, backends.ExecutorFunc(func(_ context.Context, req backends.Request) (backends.Result, error) {
		return backends.NewResult(req.Op()), nil
	}), a2, ShadowConfig{})
	ops := []backends.Op{backends.OpCommit, backends.OpPush, backends.OpWriteFile, backends.OpClone}
	for _, op := range ops {
		if _, err := r.Execute(t.Context(), req(op)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[backends.Op]canary.Entry{}
	for _, o := range c.wait(t, len(ops)) {
		got[o.Op] = o
	}
	if n := a2.calls.Load(); n != 0 {
		t.Fatalf("approach2 executed %d shadow writes", n)
	}
	if n := a2.predictions.Load(); n != int64(len(ops)) {
		t.Fatalf("%d predictions, want %d", n, len(ops))
	}
	want := map[backends.Op][2]string{
		backends.OpCommit:    {"match", ""},
		backends.OpPush:      {"mismatch", "remote_head: primary \"def\" / shadow \"abc\""},
		backends.OpWriteFile: {"stale", "the workspace moved on"},
		backends.OpClone:     {"shadow_error", ""},
	}
	for op, w := range want {
		o := got[op]
		if string(o.Outcome) != w[0] || w[1] != "" && o.Detail != w[1] {
			t.Errorf("%s: %+v, want %v", op, o, w)
		}
	}
}

// TestWritesAreNotShadowedWithoutPredictions: a shadow backend that cannot
// predict is never sent a write.
func TestWritesAreNotShadowedWithoutPredictions(t *testing.T) {
	a2 := &scripted{}
	r, c := shadowRouter(t, statusOf(0), a2, ShadowConfig{})
	for _, op := range []backends.Op{backends.OpPush, backends.OpCommit, backends.OpWriteFile, backends.OpClone} {
		_, _ = r.Execute(t.Context(), req(op))
	}
	time.Sleep(50 * time.Millisecond)
	if n := a2.calls.Load(); n != 0 {
		t.Fatalf("approach2 received %d shadow writes", n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.obs) != 0 {
		t.Fatalf("observations %+v", c.obs)
	}
}
