package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fixedDecider string

func (d fixedDecider) Decide(context.Context, string, string) flags.Decision {
	return flags.Decision{Backend: backends.Name(d)}
}

// scripted is a backend whose answer a test sets, counting its calls.
type scripted struct {
	calls atomic.Int64
	err   atomic.Pointer[error]
}

func (s *scripted) Execute(_ context.Context, req backends.Request) (backends.Result, error) {
	s.calls.Add(1)
	if e := s.err.Load(); e != nil {
		return nil, *e
	}
	return backends.NewResult(req.Op()), nil
}

func (s *scripted) fail(err error) { s.err.Store(&err) }

func newCanaryRouter(t *testing.T, a1, a2 *scripted, to string) *Router {
	t.Helper()
	r, err := NewRouter(RouterConfig{Backends: map[backends.Name]backends.Executor{"approach1": a1, "approach2": a2}, Default: "approach1",
		Flags: fixedDecider(to), Breakers: BreakerConfig{ConsecutiveFailures: 3}, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func req(op backends.Op) backends.Request {
	r := backends.NewRequest(op)
	*r.GetScope() = backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a"}, Workspace: "w"}
	return r
}

func TestRouteFollowsTheFlags(t *testing.T) {
	a1, a2 := &scripted{}, &scripted{}
	res, err := newCanaryRouter(t, a1, a2, "approach2").Execute(t.Context(), req(backends.OpStatus))
	if err != nil || res.GetServed().Backend != "approach2" || res.GetServed().FellBack || a2.calls.Load() != 1 {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestFallbackNeverAppliesAWriteTwice: reads fall back on any backend
// failure; writes only when Approach 2 provably never started them.
func TestFallbackNeverAppliesAWriteTwice(t *testing.T) {
	cases := []struct {
		name     string
		op       backends.Op
		err      error
		fallback bool
	}{
		{"read, may have happened", backends.OpStatus, backends.Errorf(backends.Unavailable, "connection reset"), true},
		{"write, never started", backends.OpPush, backends.NotStarted(backends.Errorf(backends.Unavailable, "refused")), true},
		{"write, may have happened", backends.OpPush, backends.Errorf(backends.Timeout, "deadline exceeded"), false},
		{"write, may have happened (unavailable)", backends.OpCommit, backends.Errorf(backends.Unavailable, "stream reset"), false},
		{"client mistake", backends.OpCommit, backends.Errorf(backends.Conflict, "nothing to commit"), false},
	}
	for _, c := range cases {
		a1, a2 := &scripted{}, &scripted{}
		a2.fail(c.err)
		res, err := newCanaryRouter(t, a1, a2, "approach2").Execute(t.Context(), req(c.op))
		if c.fallback {
			if err != nil || !res.GetServed().FellBack || res.GetServed().Backend != "approach1" || a1.calls.Load() != 1 {
				t.Errorf("%s: want a fallback to approach1: %+v %v", c.name, res, err)
			}
			continue
		}
		if err == nil || a1.calls.Load() != 0 || backends.CategoryOf(err) != backends.CategoryOf(c.err) {
			t.Errorf("%s: want approach2's error and no call to approach1: %v (approach1 calls %d)", c.name, err, a1.calls.Load())
		}
	}
}

func TestBreakerOpensAndThenFallsBackWithoutCalling(t *testing.T) {
	a1, a2 := &scripted{}, &scripted{}
	r := newCanaryRouter(t, a1, a2, "approach2")
	a2.fail(backends.Errorf(backends.Unavailable, "down"))
	for range 3 {
		_, _ = r.Execute(t.Context(), req(backends.OpCommit)) // may have happened: no fallback, counts as failure
	}
	if testutil.ToFloat64(r.breakers.state.WithLabelValues("commit")) != 2 {
		t.Fatal("the breaker did not open after 3 failures")
	}
	calls := a2.calls.Load()
	res, err := r.Execute(t.Context(), req(backends.OpCommit))
	if err != nil || !res.GetServed().FellBack || a2.calls.Load() != calls {
		t.Fatalf("with the breaker open a write must fall back without reaching approach2: %+v %v", res, err)
	}
	if testutil.ToFloat64(r.fallback.WithLabelValues("commit", "not_started")) != 1 {
		t.Fatal("fallback not counted")
	}
}

func TestClientMistakesAndCancellationsDoNotTrip(t *testing.T) {
	a1, a2 := &scripted{}, &scripted{}
	r := newCanaryRouter(t, a1, a2, "approach2")
	a2.fail(backends.Errorf(backends.InvalidArgument, "bad branch"))
	for range 10 {
		_, _ = r.Execute(t.Context(), req(backends.OpCheckout))
	}
	a2.fail(backends.Errorf(backends.Unavailable, "cancelled by the caller"))
	for range 10 {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := r.Execute(ctx, req(backends.OpCheckout))
		if err == nil || a1.calls.Load() != 0 {
			t.Fatal("a call whose caller gave up must not fall back")
		}
	}
	if got := testutil.ToFloat64(r.breakers.state.WithLabelValues("checkout")); got != 0 {
		t.Fatalf("breaker state %v after client mistakes and cancellations", got)
	}
}
