package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentAnswersThroughMCP: a real MCP client session. A new file is part
// of the agent's change, so diff shows it; the three common mistakes
// (commit with nothing to commit, checkout of a branch that does not exist,
// pull of a branch that diverged) get a sentence with the next step and
// none of git's raw output; no text shows the gateway's sandbox paths.
func TestAgentAnswersThroughMCP(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	ws := func(extra map[string]any) map[string]any {
		args := map[string]any{"workspace": "ans"}
		for k, v := range extra {
			args[k] = v
		}
		return args
	}
	w.ok(t, c, "clone", ws(map[string]any{"url": w.repoURL}))
	w.ok(t, c, "write_file", ws(map[string]any{"path": "brand-new.txt", "content": "hello, new file\n"}))
	diff := w.call(t, c, "diff", ws(nil))
	if got := text(diff); diff.IsError || !strings.Contains(got, "brand-new.txt") || !strings.Contains(got, "+hello, new file") {
		t.Fatalf("diff right after writing a new file: %.500s; want the new file's diff", got)
	}

	w.ok(t, c, "commit", ws(map[string]any{"message": "Add a new file"}))
	answers := []struct {
		tool     string
		args     map[string]any
		category string
		next     string // the next step the answer must name
	}{
		{"commit", ws(map[string]any{"message": "Nothing"}), "conflict", "write or delete files first"},
		{"checkout", ws(map[string]any{"branch": "no-such-branch"}), "not_found", "pass create: true"},
	}
	// The remote's main moves on while the workspace has its own commit:
	// the branches diverge.
	if _, err := w.remote.CommitFile(t.Context(), "demo", "main", "elsewhere.txt", "theirs\n", "Meanwhile on the remote"); err != nil {
		t.Fatal(err)
	}
	answers = append(answers, struct {
		tool     string
		args     map[string]any
		category string
		next     string
	}{"pull", ws(nil), "conflict", "mode: merge"})
	for _, a := range answers {
		res := w.call(t, c, a.tool, a.args)
		got := text(res)
		if !res.IsError || !strings.Contains(got, a.category) || !strings.Contains(got, a.next) {
			t.Errorf("%s: %.400s; want %s with the next step %q", a.tool, got, a.category, a.next)
		}
		for _, raw := range []string{"On branch", "hint:", "fatal:", "Your branch", "\n\n"} {
			if strings.Contains(got, raw) {
				t.Errorf("%s: the answer quotes git's raw output (%q): %.400s", a.tool, raw, got)
			}
		}
	}
	merged := w.ok(t, c, "pull", ws(map[string]any{"mode": "merge"}))
	if merged["merged"] != true {
		t.Fatalf("pull with mode: merge, as the answer suggested: %v", merged)
	}

	w.mu.Lock()
	transcript := strings.Join(w.transcript, "\n")
	w.mu.Unlock()
	for _, dir := range []string{w.cfg.Sandbox.Local.Dir, w.cfg.StateDir} {
		if dir != "" && strings.Contains(transcript, dir) {
			t.Errorf("an agent-visible text shows the gateway's path %s", dir)
		}
	}
}

// TestUnknownKeyStopsTheProcess: gitgate serve with a misspelt key in its
// configuration file does not start, and says which key and what was meant.
func TestUnknownKeyStopsTheProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gitgate.yaml")
	if err := os.WriteFile(path, []byte("sandbox: {tll: 30m}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(testCtx(t), gitgateBinary(t), "serve", "--config", path)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("gitgate serve with sandbox.tll started: %s", out)
	}
	if !strings.Contains(string(out), "unknown configuration key sandbox.tll (did you mean sandbox.ttl?)") {
		t.Fatalf("gitgate serve with sandbox.tll: %v: %s; want the key and the closest valid one", err, out)
	}
}
