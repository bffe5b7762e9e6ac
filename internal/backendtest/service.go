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

// ServeApproach2 serves engine as the Approach 2 service (StartApproach2)
// and returns a client connected to it with cfg (DialApproach2); both stop
// when the test ends.
func ServeApproach2(t testing.TB, engine backends.Executor, cfg approach2.ClientConfig) *approach2.Client {
	t.Helper()
	return DialApproach2(t, StartApproach2(t, engine), cfg)
}

// StartApproach2 serves engine as the Approach 2 service over real gRPC on
// loopback, with the engine as its predictor when it predicts and
// ServiceToken as its token, and returns its address. It stops when the
// test ends.
func StartApproach2(t testing.TB, engine backends.Executor) string {
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
	return ln.Addr().String()
}

// DialApproach2 connects a client to the service at addr with cfg (its
// Token and Insecure are set here); it closes when the test ends.
func DialApproach2(t testing.TB, addr string, cfg approach2.ClientConfig) *approach2.Client {
	t.Helper()
	cfg.Token, cfg.Insecure = ServiceToken, true
	c, err := approach2.Dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
