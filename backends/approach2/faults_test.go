package approach2_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"google.golang.org/grpc"
)

func statusReq() *backends.StatusRequest {
	return &backends.StatusRequest{Scope: backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a"}, Workspace: "w"}}
}

// slowEngine blocks every operation until its context ends, after telling
// started that it began.
func slowEngine(started chan<- struct{}) backends.ExecutorFunc {
	return func(ctx context.Context, _ backends.Request) (backends.Result, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
}

func wantErr(t *testing.T, err error, cat backends.Category, notStarted bool) {
	t.Helper()
	if backends.CategoryOf(err) != cat || errors.Is(err, backends.ErrNotStarted) != notStarted {
		t.Fatalf("error %v: category %s not-started %v, want %s %v", err, backends.CategoryOf(err),
			errors.Is(err, backends.ErrNotStarted), cat, notStarted)
	}
}

// refusingEngine fails the test if anything reaches it.
type refusingEngine struct{ t *testing.T }

func (e refusingEngine) Execute(context.Context, backends.Request) (backends.Result, error) {
	e.t.Error("the engine ran for an unauthenticated call")
	return nil, nil
}

func (e refusingEngine) Predict(context.Context, backends.Request, backends.Result) (*backends.Prediction, error) {
	e.t.Error("the engine predicted for an unauthenticated call")
	return nil, nil
}

func TestWrongServiceTokenIsRefusedBeforeStarting(t *testing.T) {
	c := startService(t, refusingEngine{t})
	addr := c.Target()
	bad, err := approach2.Dial(addr, approach2.ClientConfig{Token: "wrong", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.Execute(t.Context(), statusReq())
	wantErr(t, err, backends.Unauthenticated, true)
	commit := &backends.CommitRequest{Scope: backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a"}, Workspace: "w"}, Message: "m"}
	_, err = bad.Predict(t.Context(), commit, &backends.CommitResult{SHA: strings.Repeat("a", 40)})
	if backends.CategoryOf(err) != backends.Unauthenticated {
		t.Fatalf("Predict with the wrong token: %v", err)
	}
}

func TestNothingListeningIsUnavailableAndNotStarted(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c, err := approach2.Dial(addr, approach2.ClientConfig{Token: "x", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = c.Execute(ctx, statusReq())
	wantErr(t, err, backends.Unavailable, true)
}

// TestServiceStoppedMidOperation: the operation had started, so the error
// must not claim otherwise (a push may have happened).
func TestServiceStoppedMidOperation(t *testing.T) {
	started := make(chan struct{}, 1)
	srv := approach2.NewServer(approach2.ServerConfig{Engine: slowEngine(started), Token: serviceToken})
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = g.Serve(ln) }()
	c, err := approach2.Dial(ln.Addr().String(), approach2.ClientConfig{Token: serviceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { <-started; g.Stop() }()
	_, err = c.Execute(t.Context(), statusReq())
	wantErr(t, err, backends.Unavailable, false)
}

func TestDeadlineShorterThanTheOperation(t *testing.T) {
	started := make(chan struct{}, 1)
	c := startService(t, slowEngine(started))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Execute(ctx, statusReq()) // returns at all only by its deadline: the engine never answers
	wantErr(t, err, backends.Timeout, false)
}

// TestShadowCallsReachTheEngineMarked: a call the gateway makes as shadow
// work arrives at the service's engine marked as such (so its git runs at
// the lowest priority); other calls do not.
func TestShadowCallsReachTheEngineMarked(t *testing.T) {
	var seen []bool
	c := startService(t, backends.ExecutorFunc(func(ctx context.Context, req backends.Request) (backends.Result, error) {
		seen = append(seen, backends.IsShadow(ctx))
		return &backends.StatusResult{}, nil
	}))
	for _, ctx := range []context.Context{t.Context(), backends.WithShadow(t.Context())} {
		if _, err := c.Execute(ctx, statusReq()); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 2 || seen[0] || !seen[1] {
		t.Fatalf("shadow marks seen by the engine: %v, want [false true]", seen)
	}
}
