package gateway

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
)

// service is the Approach 2 gRPC service on a fixed loopback address, which
// a test can stop (as a crash would) and start again.
type service struct {
	t    *testing.T
	addr string
	srv  *approach2.Server
	mu   sync.Mutex
	g    *grpc.Server
}

const breakerServiceToken = "svc-token-breaker-test-0123456789"

func startService(t *testing.T, engine backends.Executor) *service {
	t.Helper()
	pred, _ := engine.(backends.Predictor)
	s := &service{t: t, srv: approach2.NewServer(approach2.ServerConfig{Engine: engine, Predictor: pred, Token: breakerServiceToken,
		Logger: slog.New(slog.DiscardHandler)})}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start serves on the service's address (a new one the first time).
func (s *service) start() {
	s.t.Helper()
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	// The port was ours a moment ago; binding it again may race with the
	// kernel releasing it.
	testkit.Eventually(s.t, "the service's port can be bound again", func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	s.addr = ln.Addr().String()
	g := grpc.NewServer(s.srv.ServerOptions()...)
	s.srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	s.mu.Lock()
	s.g = g
	s.mu.Unlock()
}

// stop closes the listener and every connection at once.
func (s *service) stop() {
	s.mu.Lock()
	g := s.g
	s.g = nil
	s.mu.Unlock()
	if g != nil {
		g.Stop()
	}
}

// gate holds the calls that reach it while closed, so that a test can look
// at the breaker while its probe is in flight.
type gate struct {
	backends.Executor
	calls   atomic.Int64
	armed   atomic.Bool
	arrived chan struct{}
	release chan struct{}
}

func (g *gate) Execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	g.calls.Add(1)
	if g.armed.CompareAndSwap(true, false) {
		close(g.arrived)
		<-g.release
	}
	return g.Executor.Execute(ctx, req)
}

// TestBreakerClosesAgainOnceApproach2Recovers: Approach 2 is a real gRPC
// service on loopback. It goes away: its breaker opens after the
// configured consecutive failures, and calls fall back to Approach 1
// without reaching it. It comes back: once the open period is over the
// breaker goes half-open and lets one probe through (other calls still fall
// back meanwhile); the probe succeeds, the breaker closes, and calls reach
// Approach 2 again. gitgate_breaker_state shows 2, then 1, then 0.
func TestBreakerClosesAgainOnceApproach2Recovers(t *testing.T) {
	env := backendtest.NewEnv(t)
	engine := backendtest.NewApproach1(t, env) // both backends act on the same workspaces
	svc := startService(t, engine)
	client, err := approach2.Dial(svc.addr, approach2.ClientConfig{Token: breakerServiceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	a2 := &gate{Executor: client}
	var logs testkit.SyncBuffer
	const openFor = time.Second
	r, err := NewRouter(RouterConfig{Backends: map[backends.Name]backends.Executor{"approach1": engine, "approach2": a2}, Default: "approach1",
		Flags: fixedDecider("approach2"), Breakers: BreakerConfig{ConsecutiveFailures: 3, OpenFor: openFor},
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	state := func() float64 { return testutil.ToFloat64(r.breakers.state.WithLabelValues("status")) }
	status := func() *backends.StatusResult {
		t.Helper()
		res, err := r.Execute(backendtest.Ctx(t), &backends.StatusRequest{Scope: backends.Scope{Principal: env.Agent, Workspace: "w"}})
		if err != nil {
			t.Fatalf("status: %v", err) // a read never fails while Approach 1 can serve it
		}
		return res.(*backends.StatusResult)
	}
	if res, err := r.Execute(backendtest.Ctx(t), &backends.CloneRequest{Scope: backends.Scope{Principal: env.Agent, Workspace: "w"}, URL: env.RepoURL}); err != nil || res.GetServed().Backend != "approach2" {
		t.Fatalf("clone: %+v %v", res, err)
	}
	if s := status().Served; s.Backend != "approach2" || s.FellBack || state() != 0 {
		t.Fatalf("with the service up status was served by %+v, breaker state %v", s, state())
	}

	// Down: three failures open the breaker; then calls fall back without
	// reaching Approach 2.
	svc.stop()
	for i := range 3 {
		if s := status().Served; s.Backend != "approach1" || !s.FellBack {
			t.Fatalf("call %d with the service down: served %+v", i, s)
		}
	}
	if state() != 2 {
		t.Fatalf("breaker state %v after 3 failures, want 2 (open)", state())
	}
	// A call while it is open is refused without reaching Approach 2. On a
	// slow machine the open period may be over before the call: then it was
	// the half-open breaker's probe, which fails and opens it again; try
	// again.
	refused := false
	for range 20 {
		reached := a2.calls.Load()
		if s := status().Served; s.Backend != "approach1" || !s.FellBack {
			t.Fatalf("with the breaker open status was served by %+v, want a fallback", s)
		}
		if a2.calls.Load() == reached {
			refused = true
			break
		}
		if state() != 2 {
			t.Fatalf("breaker state %v after a failed probe, want 2 (open)", state())
		}
	}
	if !refused {
		t.Fatal("every call reached the dead approach2: the open breaker never refused one")
	}

	// Up again, on the same address. The client reconnects on its own
	// schedule; wait until it reaches the service directly.
	svc.start()
	testkit.Eventually(t, "the client reaches the restarted service", func() bool {
		_, err := client.Execute(backendtest.Ctx(t), &backends.StatusRequest{Scope: backends.Scope{Principal: env.Agent, Workspace: "w"}})
		return err == nil
	})

	// Hold the first call the breaker lets through: it is the half-open
	// breaker's probe.
	a2.arrived, a2.release = make(chan struct{}), make(chan struct{})
	a2.armed.Store(true)
	probe := make(chan *backends.StatusResult, 1)
	go func() {
		defer close(probe)
		for {
			select {
			case <-a2.arrived: // the probe is this call, or another's
				return
			default:
			}
			res, err := r.Execute(backendtest.Ctx(t), &backends.StatusRequest{Scope: backends.Scope{Principal: env.Agent, Workspace: "w"}})
			if err != nil {
				t.Errorf("status while the breaker is open: %v", err)
				return
			}
			if s := res.GetServed(); s.Backend == "approach2" {
				probe <- res.(*backends.StatusResult)
				return
			}
			time.Sleep(10 * time.Millisecond) // refused by the open breaker: poll
		}
	}()
	select {
	case <-a2.arrived:
	case <-time.After(time.Minute):
		t.Fatalf("no probe reached approach2 a minute after the service came back (breaker state %v)", state())
	}
	if state() != 1 {
		t.Fatalf("breaker state %v while its probe is in flight, want 1 (half-open)", state())
	}
	if s := status().Served; s.Backend != "approach1" || !s.FellBack {
		t.Fatalf("a second call while the probe is in flight: served %+v, want a fallback", s)
	}
	close(a2.release)
	if res, ok := <-probe; ok && (res == nil || res.Served.Backend != "approach2") {
		t.Fatalf("the probe: %+v", res)
	}
	testkit.Eventually(t, "the breaker closes", func() bool { return state() == 0 })
	for i := range 5 {
		if s := status().Served; s.Backend != "approach2" || s.FellBack {
			t.Fatalf("call %d after the breaker closed: served %+v", i, s)
		}
	}
	if state() != 0 {
		t.Fatalf("breaker state %v after successful calls, want 0", state())
	}
	var transitions []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "circuit breaker changed state") && strings.Contains(line, "breaker=approach2/status") {
			from, _, _ := strings.Cut(line[strings.Index(line, "from=")+len("from="):], " ")
			to, _, _ := strings.Cut(line[strings.Index(line, "to=")+len("to="):], " ")
			transitions = append(transitions, from+"→"+to)
		}
	}
	got := strings.Join(transitions, ", ")
	if !strings.HasPrefix(got, "closed→open") || !strings.HasSuffix(got, "open→half-open, half-open→closed") {
		t.Fatalf("breaker transitions: %s", got)
	}
	t.Logf("breaker transitions: %s", got)
}
