package approach2_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"google.golang.org/grpc"
)

// countingListener counts the connections a server accepted.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// TestMaxConnectionAgeReconnectsWithoutFailingCalls: a service with
// MaxConnectionAge sends its gateway connection away, the gateway dials
// again (where a dns:/// target is resolved anew), and no call fails on
// the way — not even one that runs across the GOAWAY.
func TestMaxConnectionAgeReconnectsWithoutFailingCalls(t *testing.T) {
	release := make(chan struct{})
	var hold atomic.Bool
	held := make(chan struct{}, 1)
	engine := backends.ExecutorFunc(func(ctx context.Context, _ backends.Request) (backends.Result, error) {
		if hold.CompareAndSwap(true, false) {
			held <- struct{}{}
			<-release
		}
		return &backends.StatusResult{}, nil
	})
	srv := approach2.NewServer(approach2.ServerConfig{Engine: engine, Token: backendtest.ServiceToken, MaxConnectionAge: time.Second})
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: inner}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	c := backendtest.DialApproach2(t, ln.Addr().String(), approach2.ClientConfig{})

	// A call held on the first connection past its age.
	hold.Store(true)
	heldErr := make(chan error, 1)
	go func() {
		_, err := c.Execute(context.WithoutCancel(t.Context()), statusReq())
		heldErr <- err
	}()
	<-held
	// Calls keep succeeding while the connection is replaced.
	testkit.EventuallyNil(t, "the service's connection is replaced after its maximum age", func() error {
		if _, err := c.Execute(t.Context(), statusReq()); err != nil {
			t.Fatalf("a call failed while the connection aged out: %v", err)
		}
		if n := ln.accepted.Load(); n < 2 {
			return fmt.Errorf("%d connection accepted", n)
		}
		return nil
	})
	close(release)
	if err := <-heldErr; err != nil {
		t.Fatalf("the call running across the GOAWAY failed: %v", err)
	}
}
