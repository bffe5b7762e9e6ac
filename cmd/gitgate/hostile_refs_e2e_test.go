package main

import (
	"strings"
	"testing"
)

// TestHostileRefsThroughMCP replays issue 10's refname and path attacks
// through MCP against a running gateway: a branch that would shadow
// origin/main, case twins, namespaced names and a short commit id are
// refused with invalid_argument and a reason, a hostile path is refused
// naming its character as an escape, a missing branch's error says to pass
// create: true, nothing changed, and log of origin/main still shows the
// remote's commit after the agent commits.
func TestHostileRefsThroughMCP(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	ada := w.httpClient(t, agentToken)
	cl := w.ok(t, ada, "clone", map[string]any{"workspace": "ws", "url": w.repoURL})
	head, _ := cl["head"].(string)
	if len(head) < 7 {
		t.Fatalf("clone result without a head: %v", cl)
	}
	remoteMain := w.remoteGit(t, "rev-parse", "refs/heads/main")
	before := w.ok(t, ada, "branches", map[string]any{"workspace": "ws", "remote": true})

	refuse := func(tool string, args map[string]any, want, says string) {
		t.Helper()
		res := w.call(t, ada, tool, args)
		msg := text(res)
		if !res.IsError || !strings.HasPrefix(msg, want+": ") || !strings.Contains(msg, says) {
			t.Errorf("%s %v: %q; want %s saying %q", tool, args, msg, want, says)
		}
	}
	for name, says := range map[string]string{
		"origin/main": "shadow", "Main": "only in case", "MAIN": "only in case", "refs/heads/main": "ref namespace",
		"heads/main": "ref namespace", head[:7]: "commit id", "FETCH_HEAD": "pseudo-ref",
	} {
		refuse("checkout", map[string]any{"workspace": "ws", "branch": name, "create": true}, "invalid_argument", says)
	}
	refuse("checkout", map[string]any{"workspace": "ws", "branch": "nope"}, "not_found", "pass create: true")
	refuse("write_file", map[string]any{"workspace": "ws", "path": "invoice\u202etxt.exe", "content": "x"}, "invalid_argument", "U+202E (right-to-left override)")
	refuse("read_file", map[string]any{"workspace": "ws", "path": "a\u200bb"}, "invalid_argument", "U+200B (zero width space)")
	refuse("write_file", map[string]any{"workspace": "ws", "path": "red\x1b[31mALERT.txt", "content": "x"}, "invalid_argument", "U+001B")

	after := w.ok(t, ada, "branches", map[string]any{"workspace": "ws", "remote": true})
	if a, b := hostileBranchList(before["branches"]), hostileBranchList(after["branches"]); a != b {
		t.Errorf("refusals changed the branches:\nbefore %s\nafter  %s", a, b)
	}

	w.ok(t, ada, "write_file", map[string]any{"workspace": "ws", "path": "fake.txt", "content": "fake\n"})
	w.ok(t, ada, "commit", map[string]any{"workspace": "ws", "message": "Fake commit"})
	lg := w.ok(t, ada, "log", map[string]any{"workspace": "ws", "ref": "origin/main", "limit": 1})
	commits, _ := lg["commits"].([]any)
	if len(commits) != 1 || commits[0].(map[string]any)["sha"] != remoteMain {
		t.Fatalf("log origin/main = %v, want the remote's main %s", commits, remoteMain)
	}
}

// hostileBranchList renders a branches result's list as "name=head" pairs.
func hostileBranchList(v any) string {
	var b strings.Builder
	for _, x := range v.([]any) {
		m := x.(map[string]any)
		b.WriteString(" " + m["name"].(string) + "=" + m["head"].(string))
	}
	return b.String()
}
