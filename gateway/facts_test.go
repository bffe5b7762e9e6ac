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

// stagedDecider routes everything to approach1 at a stage, shadowing every
// call.
type stagedDecider int

func (d stagedDecider) Decide(context.Context, string, string) flags.Decision {
	return flags.Decision{Backend: backends.Approach1, ShadowRate: 1, Stage: int(d)}
}

// workspaceFake is one workspace both backends read: its status shows how
// many writes it had (Ahead), and a read reports the write count it began
// and ended at, as Approach 1 does.
type workspaceFake struct {
	writes atomic.Uint64
}

func (w *workspaceFake) status(ctx context.Context, req backends.Request) (backends.Result, error) {
	from := w.writes.Load()
	res, err := statusOf(int(from))(ctx, req)
	if err != nil {
		return nil, err
	}
	res.GetServed().ReadFrom, res.GetServed().WriteSeq = from, w.writes.Load()
	return res, nil
}

// TestReadShadowAfterAWriteIsStale: a write that lands between the
// primary's read and the shadow's makes the comparison stale, not a
// mismatch; without one the shadow matches; a shadow that cannot tell its
// write count (0) is compared.
func TestReadShadowAfterAWriteIsStale(t *testing.T) {
	ws := &workspaceFake{}
	ws.writes.Store(1)
	var mu sync.Mutex
	gate := make(chan struct{}) // the shadow reads once it is closed
	unknown := false            // the shadow does not report its write count
	shadow := backends.ExecutorFunc(func(ctx context.Context, req backends.Request) (backends.Result, error) {
		mu.Lock()
		g, blind := gate, unknown
		mu.Unlock()
		<-g
		res, err := ws.status(ctx, req)
		if err == nil && blind {
			res.GetServed().ReadFrom, res.GetServed().WriteSeq = 0, 0
		}
		return res, err
	})
	r, c := shadowRouter(t, backends.ExecutorFunc(ws.status), shadow, ShadowConfig{})

	// A write lands after the primary answered, before the shadow looks.
	if _, err := r.Execute(t.Context(), req(backends.OpStatus)); err != nil {
		t.Fatal(err)
	}
	ws.writes.Add(1)
	close(gate)
	if o := c.wait(t, 1)[0]; o.Outcome != canary.OutcomeStale || o.Detail != "the workspace changed between the primary's read and the shadow's" {
		t.Fatalf("read shadow after a write: %+v, want stale", o)
	}

	// Nothing lands: the shadow matches.
	if _, err := r.Execute(t.Context(), req(backends.OpStatus)); err != nil {
		t.Fatal(err)
	}
	if o := c.wait(t, 1)[1]; o.Outcome != canary.OutcomeMatch {
		t.Fatalf("read shadow of an unchanged workspace: %+v, want match", o)
	}

	// The shadow cannot tell: compared, and the write shows as a mismatch.
	mu.Lock()
	gate, unknown = make(chan struct{}), true
	mu.Unlock()
	if _, err := r.Execute(t.Context(), req(backends.OpStatus)); err != nil {
		t.Fatal(err)
	}
	ws.writes.Add(1)
	mu.Lock()
	close(gate)
	mu.Unlock()
	if o := c.wait(t, 1)[2]; o.Outcome != canary.OutcomeMismatch {
		t.Fatalf("read shadow without a write count: %+v, want a mismatch", o)
	}
}

// TestCallEntriesCarryStageCostWaitAndInFlight: a call's ledger entry
// carries the stage that decided it, its result's cost and wait, and the
// calls in flight when it started (itself included); its comparison
// carries the stage too. A failed call has no result: no cost, no wait.
func TestCallEntriesCarryStageCostWaitAndInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	a1 := backends.ExecutorFunc(func(ctx context.Context, req backends.Request) (backends.Result, error) {
		if req.GetScope().Workspace == "slow" {
			close(entered)
			<-release
		}
		if req.GetScope().Workspace == "broken" {
			return nil, backends.Errorf(backends.Unavailable, "down")
		}
		res := backends.NewResult(req.Op())
		res.GetServed().CostUSD, res.GetServed().Wait = 0.002, 3*time.Millisecond
		return res, nil
	})
	var mu sync.Mutex
	var calls []canary.Entry
	c := &collected{got: make(chan struct{}, 100)}
	r, err := NewRouter(RouterConfig{Backends: map[backends.Name]backends.Executor{"approach1": a1, "approach2": a1}, Default: "approach1",
		Flags: stagedDecider(50), Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
		Observe: func(e canary.Entry) { mu.Lock(); calls = append(calls, e); mu.Unlock() },
		Shadow:  ShadowConfig{Observe: c.observe, Budget: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	slow := req(backends.OpStatus)
	slow.GetScope().Workspace = "slow"
	done := make(chan error, 1)
	go func() { _, err := r.Execute(context.WithoutCancel(t.Context()), slow); done <- err }()
	<-entered
	if _, err := r.Execute(t.Context(), req(backends.OpStatus)); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	broken := req(backends.OpStatus)
	broken.GetScope().Workspace = "broken"
	if _, err := r.Execute(t.Context(), broken); err == nil {
		t.Fatal("the broken call succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 3 {
		t.Fatalf("%d call entries, want 3", len(calls))
	}
	second, first, failed := calls[0], calls[1], calls[2]
	if second.InFlight != 2 || first.InFlight != 1 || failed.InFlight != 1 {
		t.Fatalf("in flight: second %d, first %d, failed %d; want 2, 1, 1", second.InFlight, first.InFlight, failed.InFlight)
	}
	for _, e := range []canary.Entry{first, second} {
		if e.Stage != 50 || e.CostUSD != 0.002 || e.Wait != 3*time.Millisecond {
			t.Fatalf("call entry %+v, want stage 50, cost 0.002, wait 3ms", e)
		}
	}
	if failed.Stage != 50 || failed.CostUSD != 0 || failed.Wait != 0 {
		t.Fatalf("failed call's entry %+v", failed)
	}
	for _, o := range c.wait(t, 2) {
		if o.Stage != 50 {
			t.Fatalf("comparison %+v, want stage 50", o)
		}
	}
}
