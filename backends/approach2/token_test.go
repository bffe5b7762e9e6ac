package approach2_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"google.golang.org/grpc"
)

// tokenPair is a rotating token as a test drives it: current and previous
// (the previous one "" once its grace window is over).
type tokenPair struct {
	mu        sync.Mutex
	cur, prev string
}

func (p *tokenPair) set(cur, prev string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur, p.prev = cur, prev
}

func (p *tokenPair) tokens() (string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur, p.prev
}

// TestTokenRotationEitherSideFirst: during a rotation's grace window a
// call succeeds whether the gateway or the service saw the new token
// first; after it, a client holding only the old token is refused before
// anything starts, and one holding the new token is served.
func TestTokenRotationEitherSideFirst(t *testing.T) {
	const oldTok, newTok = "rotation-old-token-1f2e", "rotation-new-token-9a8b"
	var server, client tokenPair
	server.set(oldTok, "")
	client.set(oldTok, "")
	var ran atomic.Int32
	engine := backends.ExecutorFunc(func(context.Context, backends.Request) (backends.Result, error) {
		ran.Add(1)
		return &backends.StatusResult{Branch: "main"}, nil
	})
	srv := approach2.NewServer(approach2.ServerConfig{Engine: engine, Tokens: server.tokens})
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	c, err := approach2.Dial(ln.Addr().String(), approach2.ClientConfig{Tokens: client.tokens, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	steps := []struct {
		what                 string
		srvCur, srvPrev      string
		clientCur, clientOld string
		ok                   bool
	}{
		{"before the rotation", oldTok, "", oldTok, "", true},
		{"the gateway saw the new file first", oldTok, "", newTok, oldTok, true},
		{"both saw it, both in their grace", newTok, oldTok, newTok, oldTok, true},
		{"the service saw it first, the gateway not yet", newTok, oldTok, oldTok, "", true},
		{"a stale gateway after the service's grace", newTok, "", oldTok, "", false},
		{"after the rotation", newTok, "", newTok, "", true},
		{"an unknown token", newTok, oldTok, "rotation-other-token-0000", "", false},
	}
	for _, s := range steps {
		server.set(s.srvCur, s.srvPrev)
		client.set(s.clientCur, s.clientOld)
		before := ran.Load()
		_, err := c.Execute(t.Context(), statusReq())
		switch {
		case s.ok && err != nil:
			t.Errorf("%s: %v", s.what, err)
		case !s.ok:
			if backends.CategoryOf(err) != backends.Unauthenticated || ran.Load() != before {
				t.Errorf("%s: error %v, engine ran %d times; want unauthenticated before anything runs", s.what, err, ran.Load()-before)
			}
		}
	}
}
