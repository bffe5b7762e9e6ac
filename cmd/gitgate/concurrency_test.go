package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentAgents: 12 agents (each its own MCP session) commit to one
// workspace at once; all succeed, in some order, with no lost commit and no
// index.lock error. Meanwhile 12 workspaces are cloned and used in parallel.
// Twelve writers still queue on the one workspace's lock, and twelve clones
// still outnumber the pool's sandboxes (max_size 8); twenty, as before,
// cost two thirds more under -race and prove nothing twelve does not.
func TestConcurrentAgents(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	setup := w.httpClient(t, agentToken)
	w.ok(t, setup, "clone", map[string]any{"workspace": "shared", "url": w.repoURL})
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan string, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			c := w.httpClient(t, agentToken)
			path := fmt.Sprintf("agents/%02d.txt", i)
			for _, step := range []struct {
				tool string
				args map[string]any
			}{
				{"write_file", map[string]any{"workspace": "shared", "path": path, "content": path}},
				{"commit", map[string]any{"workspace": "shared", "message": fmt.Sprintf("agent %02d", i), "paths": []any{path}}},
			} {
				if res := w.call(t, c, step.tool, step.args); res.IsError {
					errs <- fmt.Sprintf("agent %d %s: %s", i, step.tool, text(res))
				}
			}
		}()
		go func() {
			defer wg.Done()
			c := w.httpClient(t, agentToken)
			ws := fmt.Sprintf("own-%02d", i)
			for _, tool := range []string{"clone", "status"} {
				if res := w.call(t, c, tool, map[string]any{"workspace": ws, "url": w.repoURL}); res.IsError && tool == "clone" {
					errs <- fmt.Sprintf("workspace %s %s: %s", ws, tool, text(res))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
		if strings.Contains(e, "index.lock") {
			t.Error("index.lock error: the workspace lock did not serialise writers")
		}
	}
	log := w.ok(t, setup, "log", map[string]any{"workspace": "shared", "limit": 50})
	commits := log["commits"].([]any)
	seen := map[string]bool{}
	for _, c := range commits {
		seen[c.(map[string]any)["subject"].(string)] = true
	}
	for i := range n {
		if !seen[fmt.Sprintf("agent %02d", i)] {
			t.Errorf("commit of agent %02d is lost", i)
		}
	}
	if len(commits) != n+1 {
		t.Errorf("%d commits in history, want %d", len(commits), n+1)
	}
}
