package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/mark3labs/mcp-go/client"
)

// crossWorld is a gateway serving MCP through Approach 1 and a gitgate
// backend child (Approach 2), sharing Redis (locks, bindings) and the local
// sandbox directory: two processes acting on the same workspaces.
type crossWorld struct {
	*world
	mcp *client.Client
	a2  *approach2.Client
	ada backends.Principal
}

func newCrossWorld(t *testing.T) *crossWorld {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	w.sharedSandboxes = t.TempDir()
	w.cfg = w.config(t) // with the shared directory
	addr, _ := w.startBackend(t)
	w.cfg.Redis.Addr, w.cfg.Redis.Prefix = "127.0.0.1:6379", w.redisPrefix
	w.startHTTP(t)
	a2, err := approach2.Dial(addr, approach2.ClientConfig{Token: serviceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a2.Close() })
	return &crossWorld{world: w, mcp: w.httpClient(t, agentToken), a2: a2,
		ada: backends.Principal{Project: "alpha", Agent: "ada", AuthorName: "Ada Agent", AuthorEmail: "ada@agents.example"}}
}

func (cw *crossWorld) scope(ws string) backends.Scope {
	return backends.Scope{Principal: cw.ada, Workspace: ws}
}

// TestWorkspaceMovesBetweenBackends: cloned through Approach 1, changed and
// pushed through Approach 2; cloned through Approach 2, changed and pushed
// through Approach 1 (design.md §1: the binding is shared state).
func TestWorkspaceMovesBetweenBackends(t *testing.T) {
	cw := newCrossWorld(t)
	cw.ok(t, cw.mcp, "clone", map[string]any{"workspace": "one", "url": cw.repoURL})
	backendtest.Do[*backends.CheckoutResult](t, cw.a2, cw.ada, &backends.CheckoutRequest{Scope: cw.scope("one"), Branch: "via-a2", Create: true})
	backendtest.Do[*backends.WriteFileResult](t, cw.a2, cw.ada, &backends.WriteFileRequest{Scope: cw.scope("one"), Path: "a2.txt", Content: "from approach2"})
	c := backendtest.Do[*backends.CommitResult](t, cw.a2, cw.ada, &backends.CommitRequest{Scope: cw.scope("one"), Message: "through approach2"})
	if p := backendtest.Do[*backends.PushResult](t, cw.a2, cw.ada, &backends.PushRequest{Scope: cw.scope("one")}); p.Head != c.SHA {
		t.Fatalf("push through approach2: %+v", p)
	}
	if st := cw.ok(t, cw.mcp, "status", map[string]any{"workspace": "one"}); st["head"] != c.SHA || st["branch"] != "via-a2" {
		t.Fatalf("approach1 sees %v, want approach2's commit %s", st, c.SHA)
	}

	backendtest.Do[*backends.CloneResult](t, cw.a2, cw.ada, &backends.CloneRequest{Scope: cw.scope("two"), URL: cw.repoURL})
	cw.ok(t, cw.mcp, "checkout", map[string]any{"workspace": "two", "branch": "via-a1", "create": true})
	cw.ok(t, cw.mcp, "write_file", map[string]any{"workspace": "two", "path": "a1.txt", "content": "from approach1"})
	commit := cw.ok(t, cw.mcp, "commit", map[string]any{"workspace": "two", "message": "through approach1"})
	if push := cw.ok(t, cw.mcp, "push", map[string]any{"workspace": "two"}); push["head"] != commit["sha"] {
		t.Fatalf("push through approach1: %v", push)
	}
	for ref, want := range map[string]string{"refs/heads/via-a2": c.SHA, "refs/heads/via-a1": commit["sha"].(string)} {
		if got, _ := cw.remote.Ref(t.Context(), "demo", ref); got != want {
			t.Errorf("remote %s at %q, want %s", ref, got, want)
		}
	}
}

// TestBackendsSerialiseOnOneWorkspace: agents commit to one workspace
// through both backends at once; the shared Redis lock serialises them, so
// every commit lands and none meets another's index.lock.
func TestBackendsSerialiseOnOneWorkspace(t *testing.T) {
	cw := newCrossWorld(t)
	cw.ok(t, cw.mcp, "clone", map[string]any{"workspace": "busy", "url": cw.repoURL})
	const each = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for i := range each {
		wg.Add(2)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("a1-%02d.txt", i)
			c := cw.httpClient(t, agentToken)
			for _, call := range []struct {
				tool string
				args map[string]any
			}{{"write_file", map[string]any{"workspace": "busy", "path": path, "content": path}},
				{"commit", map[string]any{"workspace": "busy", "message": path, "paths": []any{path}}}} {
				if res := cw.call(t, c, call.tool, call.args); res.IsError {
					errs <- fmt.Errorf("approach1 %s: %s", call.tool, text(res))
				}
			}
		}()
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("a2-%02d.txt", i)
			for _, req := range []backends.Request{
				&backends.WriteFileRequest{Scope: cw.scope("busy"), Path: path, Content: path},
				&backends.CommitRequest{Scope: cw.scope("busy"), Message: path, Paths: []string{path}},
			} {
				if _, err := cw.a2.Execute(t.Context(), req); err != nil {
					errs <- fmt.Errorf("approach2 %s: %w", req.Op(), err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
		if strings.Contains(err.Error(), "index.lock") {
			t.Error("the backends did not serialise: index.lock")
		}
	}
	lg := backendtest.Do[*backends.LogResult](t, cw.a2, cw.ada, &backends.LogRequest{Scope: cw.scope("busy"), Limit: 50})
	if len(lg.Commits) != 2*each+1 {
		t.Fatalf("%d commits, want %d", len(lg.Commits), 2*each+1)
	}
}

// TestKeyHonouredAcrossBackendsThroughTheGateway: a commit made through
// Approach 2 with a key, retried with that key through the gateway (whose
// Approach 1 shares the service's journal), is answered with the first
// result and not applied again; the key with another request is refused.
func TestKeyHonouredAcrossBackendsThroughTheGateway(t *testing.T) {
	cw := newCrossWorld(t)
	cw.ok(t, cw.mcp, "clone", map[string]any{"workspace": "keyed", "url": cw.repoURL})
	cw.ok(t, cw.mcp, "write_file", map[string]any{"workspace": "keyed", "path": "k.txt", "content": "once\n"})
	s := cw.scope("keyed")
	s.IdempotencyKey = "commit-k-1"
	first := backendtest.Do[*backends.CommitResult](t, cw.a2, cw.ada, &backends.CommitRequest{Scope: s, Message: "exactly once"})
	retry := cw.ok(t, cw.mcp, "commit", map[string]any{"workspace": "keyed", "message": "exactly once", "idempotency_key": "commit-k-1"})
	if retry["sha"] != first.SHA || retry["backend"] != "approach1" {
		t.Errorf("the retry through the gateway answered %v, want approach2's commit %s replayed", retry, first.SHA)
	}
	cw.fail(t, cw.mcp, "commit", map[string]any{"workspace": "keyed", "message": "another request", "idempotency_key": "commit-k-1"}, "invalid_argument")
	lg := cw.ok(t, cw.mcp, "log", map[string]any{"workspace": "keyed", "limit": 5})
	if n := strings.Count(toJSON(lg["commits"]), "exactly once"); n != 1 {
		t.Errorf("%d commits named %q, want 1", n, "exactly once")
	}
}
