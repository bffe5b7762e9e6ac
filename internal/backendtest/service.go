package backendtest

import (
	"net"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"google.golang.org/grpc"
)

// ServiceToken is the bearer token ServeApproach2's service requires.
const ServiceToken = "svc-token-for-tests-0123456789"

// ServeApproach2 serves engine as the Approach 2 service over real gRPC on
// loopback (with the engine as its predictor when it predicts) and returns
// a client connected with cfg (its Token and Insecure are set here); both
// stop when the test ends.
func ServeApproach2(t testing.TB, engine backends.Executor, cfg approach2.ClientConfig) *approach2.Client {
	t.Helper()
	pred, _ := engine.(backends.Predictor)
	srv := approach2.NewServer(approach2.ServerConfig{Engine: engine, Predictor: pred, Token: ServiceToken})
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	cfg.Token, cfg.Insecure = ServiceToken, true
	c, err := approach2.Dial(ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
