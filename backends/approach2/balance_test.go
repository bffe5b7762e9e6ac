package approach2_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// replica is one Approach 2 service of several: a real gRPC server on
// loopback with the GitService and the standard health service, whose
// engine counts the calls it serves and can hold them.
type replica struct {
	addr   string
	g      *grpc.Server
	health *health.Server
	served atomic.Int64
	hold   atomic.Pointer[chan struct{}] // when set, calls wait for it to close
	held   chan struct{}                 // one value per call that waits
}

func startReplica(t *testing.T) *replica {
	t.Helper()
	r := &replica{held: make(chan struct{}, 16)}
	engine := backends.ExecutorFunc(func(ctx context.Context, _ backends.Request) (backends.Result, error) {
		if h := r.hold.Load(); h != nil {
			r.held <- struct{}{}
			<-*h
		}
		r.served.Add(1)
		return &backends.StatusResult{}, nil
	})
	srv := approach2.NewServer(approach2.ServerConfig{Engine: engine, Token: backendtest.ServiceToken})
	r.g = grpc.NewServer(srv.ServerOptions()...)
	srv.Register(r.g)
	r.health = health.NewServer()
	r.health.SetServingStatus(approach2.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(r.g, r.health)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go func() { _ = r.g.Serve(ln) }()
	t.Cleanup(r.g.Stop)
	return r
}

func (r *replica) setServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	r.health.SetServingStatus(approach2.ServiceName, st)
}

func dialAll(t *testing.T, rs ...*replica) *approach2.Client {
	t.Helper()
	var addrs []string
	for _, r := range rs {
		addrs = append(addrs, r.addr)
	}
	c, err := approach2.DialAll(addrs, approach2.ClientConfig{Token: backendtest.ServiceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// calls makes n status calls, each of which must succeed, and returns how
// many each replica served meanwhile.
func calls(t *testing.T, c *approach2.Client, n int, rs ...*replica) []int64 {
	t.Helper()
	before := make([]int64, len(rs))
	for i, r := range rs {
		before[i] = r.served.Load()
	}
	for i := range n {
		if _, err := c.Execute(t.Context(), statusReq()); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.served.Load() - before[i]
	}
	return out
}

// waitBothServe waits until both replicas have served a call: until then
// the client may be connected to one only.
func waitBothServe(t *testing.T, c *approach2.Client, a, b *replica) {
	t.Helper()
	testkit.Eventually(t, "both services serve calls", func() bool {
		calls(t, c, 2, a, b)
		return a.served.Load() > 0 && b.served.Load() > 0
	})
}

// TestCallsAreBalancedOverServices: a client of two services sends calls
// to both, round robin, and a gRPC target URI (dns:///host:port) dials like
// host:port.
func TestCallsAreBalancedOverServices(t *testing.T) {
	a, b := startReplica(t), startReplica(t)
	c := dialAll(t, a, b)
	if got := c.Target(); got != "gitgate-services:///"+a.addr+","+b.addr {
		t.Errorf("target %q", got)
	}
	waitBothServe(t, c, a, b)
	got := calls(t, c, 40, a, b)
	if got[0] != 20 || got[1] != 20 {
		t.Fatalf("40 calls with both serving went %d and %d, want 20 each (round robin)", got[0], got[1])
	}

	u, err := approach2.Dial("dns:///"+a.addr, approach2.ClientConfig{Token: backendtest.ServiceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if got := calls(t, u, 3, a, b); got[0] != 3 {
		t.Fatalf("dns:///%s: served %v", a.addr, got)
	}
}

// TestNotServingGetsNoNewCalls: a service whose health turns NOT_SERVING
// (draining) gets no new call, while the call it had finishes; serving
// again, it gets calls again. With no service serving, a call fails at
// once as unavailable and never started (a fallback may take it).
func TestNotServingGetsNoNewCalls(t *testing.T) {
	a, b := startReplica(t), startReplica(t)
	c := dialAll(t, a, b)
	waitBothServe(t, c, a, b)

	// A call in flight on a when it starts draining.
	release := make(chan struct{})
	a.hold.Store(&release)
	done := make(chan error, 1)
	go func() { // calls until one lands on a: only these calls reach a until it drains
		for {
			before := a.served.Load()
			_, err := c.Execute(context.WithoutCancel(t.Context()), statusReq())
			if err != nil || a.served.Load() > before {
				done <- err
				return
			}
		}
	}()
	<-a.held
	a.hold.Store(nil)
	a.setServing(false)
	testkit.Eventually(t, "new calls go to the serving service only", func() bool {
		got := calls(t, c, 4, a, b)
		return got[0] == 0 && got[1] == 4
	})
	if got := calls(t, c, 30, a, b); got[0] != 0 || got[1] != 30 {
		t.Fatalf("30 calls with one service NOT_SERVING went %d to it and %d to the other", got[0], got[1])
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the call in flight on the draining service: %v", err)
	}

	a.setServing(true)
	testkit.Eventually(t, "calls go to the service serving again", func() bool {
		return calls(t, c, 4, a, b)[0] > 0
	})

	a.setServing(false)
	b.setServing(false)
	testkit.EventuallyNil(t, "a call with no service serving fails as unavailable, never started", func() error {
		_, err := c.Execute(t.Context(), statusReq())
		if backends.CategoryOf(err) != backends.Unavailable || !errors.Is(err, backends.ErrNotStarted) {
			return fmt.Errorf("call: %w", err)
		}
		return nil
	})
}

// TestGracefulStopLosesNoCall: a service that stops gracefully while calls
// keep coming fails none of them, whether it first reports NOT_SERVING (as
// `gitgate backend` does on SIGTERM: the balancer moves new calls away
// before the stop) or not (a call that meets its GOAWAY never reached it,
// and gRPC's transparent retry sends it to the other service).
func TestGracefulStopLosesNoCall(t *testing.T) {
	for _, drainFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("not_serving_first=%v", drainFirst), func(t *testing.T) {
			a, b := startReplica(t), startReplica(t)
			c := dialAll(t, a, b)
			waitBothServe(t, c, a, b)
			load := startLoad(t, c, 4)
			testkit.Eventually(t, "calls flow", func() bool { return load.made.Load() > 50 })
			if drainFirst {
				a.health.Shutdown()
				testkit.Eventually(t, "calls stop reaching the draining service", func() bool {
					before, n := a.served.Load(), load.made.Load()
					testkit.Eventually(t, "more calls", func() bool { return load.made.Load() > n+20 })
					return a.served.Load() == before
				})
			}
			a.g.GracefulStop()
			n := load.made.Load()
			testkit.Eventually(t, "calls flow after the stop", func() bool { return load.made.Load() > n+50 })
			if made, failed := load.stop(); failed != 0 || b.served.Load() == 0 {
				t.Fatalf("%d of %d calls failed; the other service served %d", failed, made, b.served.Load())
			}
		})
	}
}

// load is calls made in a loop by several workers until stop.
type load struct {
	made, failed atomic.Int64
	quit         chan struct{}
	done         chan struct{}
	workers      int
}

func startLoad(t *testing.T, c *approach2.Client, workers int) *load {
	l := &load{quit: make(chan struct{}), done: make(chan struct{}, workers), workers: workers}
	for range workers {
		go func() {
			defer func() { l.done <- struct{}{} }()
			for {
				select {
				case <-l.quit:
					return
				default:
				}
				if _, err := c.Execute(context.WithoutCancel(t.Context()), statusReq()); err != nil {
					l.failed.Add(1)
					t.Errorf("call: %v", err)
				}
				l.made.Add(1)
			}
		}()
	}
	return l
}

// stop ends the load and returns how many calls were made and failed.
func (l *load) stop() (made, failed int64) {
	close(l.quit)
	for range l.workers {
		<-l.done
	}
	return l.made.Load(), l.failed.Load()
}
