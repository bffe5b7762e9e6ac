package main

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/gateway"
)

// TestAgentScopedSandboxes: with sandbox.scope agent, two agents of one
// project get separate sandboxes and cannot see each other's workspaces,
// even under the same workspace name.
func TestAgentScopedSandboxes(t *testing.T) {
	w := newWorld(t)
	w.cfg.Sandbox.Scope = "agent"
	w.cfg.Agents = append(w.cfg.Agents, configs.AgentConfig{Name: "bob", Project: "alpha",
		TokenSHA256: hashOf("gga_e2e_agent_token_bob_0123456789"), AuthorName: "Bob", AuthorEmail: "bob@agents.example"})
	w.startHTTP(t)
	ada, bob := w.httpClient(t, agentToken), w.httpClient(t, "gga_e2e_agent_token_bob_0123456789")
	w.ok(t, ada, "clone", map[string]any{"workspace": "mine", "url": w.repoURL})
	w.fail(t, bob, "status", map[string]any{"workspace": "mine"}, "not_found")
	w.ok(t, bob, "clone", map[string]any{"workspace": "mine", "url": w.repoURL})
	w.ok(t, ada, "write_file", map[string]any{"workspace": "mine", "path": "ada.txt", "content": "ada"})
	if st := w.ok(t, bob, "status", map[string]any{"workspace": "mine"}); st["clean"] != true {
		t.Fatalf("bob sees ada's change: %v", st)
	}
	list := w.ok(t, bob, "list_workspaces", map[string]any{})["workspaces"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["agent"] != "bob" {
		t.Fatalf("bob's workspaces: %v", list)
	}
	if got := w.metric(t, `gitgate_sandboxes_active{provider="local"}`); got != "2" {
		t.Fatalf("active sandboxes %s, want 2 (one per agent)", got)
	}
}

func hashOf(token string) string { return gateway.HashToken(token) }

// metric returns the value of one series from the admin listener.
func (w *world) metric(t *testing.T, series string) string {
	t.Helper()
	_, body := get(t, w.adminURL+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}
