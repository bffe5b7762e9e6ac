package mcpserver

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestRefusedInitializeLeavesNoSession: an initialize mcp-go refuses
// before giving out the session the gate opened for it (here: not JSON)
// does not leave that session counting against the agent's cap.
func TestRefusedInitializeLeavesNoSession(t *testing.T) {
	w := newHTTPWorld(t, HTTPConfig{})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, w.url, strings.NewReader(initializeBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", "Bearer "+adaToken)
	resp, body := send(t, req)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Mcp-Session-Id") != "" {
		t.Fatalf("initialize as text/plain: %d, session %q: %s", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), body)
	}
	if n := sessionStoreOf(t, w).count("ada"); n != 0 {
		t.Errorf("%d sessions after a refused initialize, want 0", n)
	}
	w.initialize(t, adaToken)
	if n := sessionStoreOf(t, w).count("ada"); n != 1 {
		t.Errorf("%d sessions after an initialize, want 1", n)
	}
}

// TestInitializeInASessionOpensANewOne: an initialize that carries the
// agent's live session id gets a new session (mcp-go generates one for
// every initialize), and the old one stays usable.
func TestInitializeInASessionOpensANewOne(t *testing.T) {
	w := newHTTPWorld(t, HTTPConfig{})
	old := w.initialize(t, adaToken)
	resp, body := w.do(t, http.MethodPost, adaToken, old, initializeBody)
	id := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || id == "" || id == old {
		t.Fatalf("initialize in session: %d, session %q: %s", resp.StatusCode, id, body)
	}
	for _, s := range []string{old, id} {
		if got := w.status(t, http.MethodPost, adaToken, s); got != http.StatusOK {
			t.Errorf("tools/list in %s: %d", s, got)
		}
	}
}

// TestOneRedisCallPerRequest: with the shared store, a request in a
// session costs one Redis round trip (the guard's check; mcp-go's
// validation reuses it), and so does an initialize.
func TestOneRedisCallPerRequest(t *testing.T) {
	newRedis, prefix := sharedRedis(t)
	var calls atomic.Int64
	f := newReplicaFleet(t, func() redis.UniversalClient {
		rdb := newRedis()
		rdb.AddHook(countHook{&calls})
		return rdb
	}, prefix, 1)
	r := f.replicas[0]
	session := rawInitialize(t, r.url, adaToken)
	if n := calls.Swap(0); n != 1 {
		t.Errorf("initialize: %d Redis round trips, want 1", n)
	}
	for range 3 {
		if code, body := raw(t, r.url, http.MethodPost, adaToken, session, toolsListBody); code != http.StatusOK {
			t.Fatalf("tools/list: %d %s", code, body)
		}
	}
	if n := calls.Swap(0); n != 3 {
		t.Errorf("3 tools/list: %d Redis round trips, want 3", n)
	}
}

// countHook counts the commands a client sends, but for a connection's
// handshake (HELLO, CLIENT SETINFO); a script run whose EVALSHA is
// answered NOSCRIPT counts its EVAL only.
type countHook struct{ n *atomic.Int64 }

func (h countHook) count(cmd redis.Cmder, err error) {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return
	}
	if err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		h.n.Add(1)
	}
}

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count(cmd, err)
		return err
	}
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			h.count(cmd, cmd.Err())
		}
		return err
	}
}
