package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
)

// TestAgentDeletesItsBranch: through the gateway (MCP over HTTP, Approach
// 1), an agent deletes the branch it pushed with delete_branch (remote by
// default): gone from its workspace and from the remote, recorded with
// reason agent, and `gitgate branches restore` puts it back from the
// record; a retry with the call's idempotency key gets the first answer.
// A protected branch and one gitgate did not push are refused with
// forbidden and stay as they were, locally and on the remote. About 7 s
// under -race.
func TestAgentDeletesItsBranch(t *testing.T) {
	w := newWorld(t)
	human, err := w.remote.CommitFile(t.Context(), "demo", "feature/human", "human.txt", "a person's work\n", "")
	if err != nil {
		t.Fatal(err)
	}
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	ws := func(extra ...any) map[string]any {
		m := map[string]any{"workspace": "work"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	w.ok(t, c, "clone", ws("url", w.repoURL))
	main := w.remoteGit(t, "rev-parse", "refs/heads/main")
	w.ok(t, c, "checkout", ws("branch", "feature/human")) // a local branch tracking the person's
	w.ok(t, c, "checkout", ws("branch", "agent/ada/x", "create", true))
	w.ok(t, c, "write_file", ws("path", "x.txt", "content", "x\n"))
	w.ok(t, c, "commit", ws("message", "x"))
	head := w.ok(t, c, "push", ws())["head"].(string)
	w.ok(t, c, "checkout", ws("branch", "main"))

	for _, branch := range []string{"main", "feature/human"} {
		res := w.call(t, c, "delete_branch", ws("branch", branch))
		if msg := text(res); !res.IsError || !strings.HasPrefix(msg, "forbidden: ") || !strings.Contains(msg, branch) {
			t.Errorf("delete_branch %s: %q, want forbidden naming the branch", branch, msg)
		}
	}
	if got := w.remoteGit(t, "rev-parse", "refs/heads/main", "refs/heads/feature/human"); got != main+"\n"+human {
		t.Fatalf("refused deletions changed the remote: %s", got)
	}
	if got := localBranches(t, w, c); !slices.Equal(got, []string{"agent/ada/x", "feature/human", "main"}) {
		t.Fatalf("local branches after the refusals: %v", got)
	}

	res := w.call(t, c, "delete_branch", ws("branch", "agent/ada/x", "idempotency_key", "del-x-1"))
	if res.IsError {
		t.Fatalf("delete_branch: %s", text(res))
	}
	out, _ := res.StructuredContent.(map[string]any)
	id, _ := out["restore_id"].(string)
	if out["local"] != true || out["remote"] != true || out["head"] != head || id == "" || !strings.Contains(text(res), id) {
		t.Fatalf("delete_branch result %v, text %q", out, text(res))
	}
	// A retry of the call (a lost answer) gets the same answer back.
	if again := w.ok(t, c, "delete_branch", ws("branch", "agent/ada/x", "idempotency_key", "del-x-1")); again["restore_id"] != id || again["local"] != true || again["head"] != head {
		t.Fatalf("retried delete_branch: %v, want the first answer %v", again, out)
	}
	if got := localBranches(t, w, c); !slices.Equal(got, []string{"feature/human", "main"}) {
		t.Fatalf("local branches after the deletion: %v", got)
	}
	if got := w.remoteGit(t, "for-each-ref", "--format=%(refname)", "refs/heads/agent/"); got != "" {
		t.Fatalf("the branch is still on the remote: %s", got)
	}
	if got := w.metric(t, `gitgate_branches_deleted_total{reason="agent"}`); got != "1" {
		t.Errorf("gitgate_branches_deleted_total{reason=agent} = %q, want 1", got)
	}

	// The operator restores it from the record, with the gateway's
	// configuration (its state directory holds the branch records).
	cfgPath := filepath.Join(t.TempDir(), "gitgate.yaml")
	yaml := w.configYAML(strings.TrimSuffix(w.cfg.StateDir, ".state"))
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_GIT_TOKEN", gitToken)
	t.Setenv("E2E_GIT_READ_TOKEN", gitReadToken)
	listed, err := runCLI(t, "--config", cfgPath, "branches", "list", "--deleted")
	if err != nil || !strings.Contains(listed, id) || !strings.Contains(listed, "agent") {
		t.Fatalf("branches list --deleted: %v\n%s", err, listed)
	}
	if got, err := runCLI(t, "--config", cfgPath, "branches", "restore", id); err != nil || !strings.Contains(got, "restored agent/ada/x") {
		t.Fatalf("branches restore: %v\n%s", err, got)
	}
	if got := w.remoteGit(t, "rev-parse", "refs/heads/agent/ada/x"); got != head {
		t.Fatalf("restored at %s, want %s", got, head)
	}
}

// localBranches lists the workspace's local branches through the branches
// tool, sorted.
func localBranches(t *testing.T, w *world, c *client.Client) []string {
	t.Helper()
	var names []string
	for _, b := range w.ok(t, c, "branches", map[string]any{"workspace": "work"})["branches"].([]any) {
		names = append(names, b.(map[string]any)["name"].(string))
	}
	slices.Sort(names)
	return names
}
