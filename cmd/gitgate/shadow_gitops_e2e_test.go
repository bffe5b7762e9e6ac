package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/client"
)

// The operations of issue 16, which canary shadowing must cover through
// the gateway: reads mirrored on the other backend, writes predicted by
// it.
var gitOpsShadowed = []backends.Op{
	backends.OpFetch, backends.OpShow, backends.OpBlame, backends.OpTags, backends.OpReflog, backends.OpStashes,
	backends.OpMerge, backends.OpRebase, backends.OpCherryPick, backends.OpRevert, backends.OpReset, backends.OpRestore,
	backends.OpStash, backends.OpTag, backends.OpMarkResolved, backends.OpContinue, backends.OpAbort, backends.OpForkWorkspace,
}

// shadowSession is an MCP client of a world where every operation is
// shadowed, whose calls each wait for their shadow comparison before the
// next call: no write can then be stale because of a later one, and no
// read compared on a workspace written since.
type shadowSession struct {
	t     *testing.T
	w     *world
	c     *client.Client
	calls int
	tools []string // the tools called, in order
}

// call calls tool, which must succeed on Approach 1 (the primary, no
// fallback), waits for its shadow comparison and decodes the result into
// out when it is not nil.
func (s *shadowSession) call(tool string, args map[string]any, out any) {
	s.t.Helper()
	m := s.w.ok(s.t, s.c, tool, args)
	if m["backend"] != backends.Approach1.String() || m["fell_back"] == true {
		s.t.Fatalf("%s served by %v (fell back: %v), want approach1", tool, m["backend"], m["fell_back"])
	}
	s.calls++
	s.tools = append(s.tools, tool)
	testkit.Eventually(s.t, fmt.Sprintf("the shadow comparison of call %d (%s)", s.calls, tool), func() bool {
		return s.w.shadowComparisons(s.t) >= s.calls
	})
	if out != nil {
		raw, _ := json.Marshal(m)
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s: decode %s: %v", tool, raw, err)
		}
	}
}

// gitOpsArgs builds the arguments of a call on workspace "gops".
func gitOpsArgs(kv ...any) map[string]any {
	m := map[string]any{"workspace": "gops"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// TestShadowedGitOpsMatch: every operation shadowed at 100 %, Approach 1
// the primary and the Approach 2 service (same sandboxes, real git) the
// shadow; a real MCP client works a session using every operation of
// issue 16 — fetch, show, blame, tags, reflog, stashes, a clean merge and
// one stopping on conflicts (then mark_resolved and continue), rebase,
// cherry_pick, revert, reset, restore, stash push and pop, tag (light and
// annotated), push with tags, abort of a second conflicting merge and
// fork_workspace — each call waiting for its shadow. The ledger holds one
// comparison per call, and every one is a match: no mismatch, no stale,
// no shadow error, timeout or skip (A/A on real git).
func TestShadowedGitOpsMatch(t *testing.T) {
	f := flags.NewFile(backends.OpNames())
	for _, op := range backends.OpNames() {
		_ = f.SetShadow(op, 1)
	}
	w, flagPath, _ := newCanaryWorld(t, f)
	s := &shadowSession{t: t, w: w, c: w.httpClient(t, agentToken)}
	const branch = "agent/ada/gitops"
	upstream := "origin/" + branch

	s.call("clone", gitOpsArgs("url", w.repoURL), nil)
	s.call("checkout", gitOpsArgs("branch", branch, "create", true), nil)
	s.call("push", gitOpsArgs(), nil)

	// Another actor pushes an unrelated change; the agent fetches and
	// looks at it.
	theirs, err := w.remote.CommitFile(t.Context(), "demo", branch, "theirs.txt", theirsNote, "Add their note")
	if err != nil {
		t.Fatal(err)
	}
	var fetched backends.FetchResult
	s.call("fetch", gitOpsArgs(), &fetched)
	if i := slices.IndexFunc(fetched.Updated, func(u backends.RefUpdate) bool { return u.Ref == upstream }); i < 0 || fetched.Updated[i].After != theirs {
		t.Fatalf("fetch updated %+v, want %s at %s", fetched.Updated, upstream, theirs)
	}
	var shown backends.ShowResult
	s.call("show", gitOpsArgs("rev", upstream), &shown)
	if shown.SHA != theirs || !strings.Contains(shown.Diff, "theirs.txt") {
		t.Fatalf("show %s: %s, diff %q", upstream, shown.SHA, shown.Diff)
	}
	s.call("show", gitOpsArgs("rev", upstream, "path", "theirs.txt"), &shown)
	if shown.Content != theirsNote {
		t.Fatalf("show %s:theirs.txt: %q", upstream, shown.Content)
	}

	// A clean merge: the agent's commit and theirs touch different files.
	s.call("write_file", gitOpsArgs("path", "ours.txt", "content", oursNote), nil)
	s.call("commit", gitOpsArgs("message", "Add our note"), nil)
	var merged backends.MergeResult
	s.call("merge", gitOpsArgs("branch", upstream), &merged)
	if !merged.Merged || merged.InProgress != "" {
		t.Fatalf("clean merge: %+v", merged)
	}
	var blamed backends.BlameResult
	s.call("blame", gitOpsArgs("path", "hello.py"), &blamed)
	if len(blamed.Lines) == 0 {
		t.Fatalf("blame hello.py: %+v", blamed)
	}

	// A merge stopping on conflicts, resolved and continued.
	s.call("write_file", gitOpsArgs("path", "hello.py", "content", helloOurs), nil)
	s.call("commit", gitOpsArgs("message", "Greet with hi"), nil)
	if _, err := w.remote.CommitFile(t.Context(), "demo", branch, "hello.py", helloTheirs, "Greet with howdy"); err != nil {
		t.Fatal(err)
	}
	s.call("fetch", gitOpsArgs(), nil)
	s.call("merge", gitOpsArgs("branch", upstream), &merged)
	if merged.InProgress != "merge" || len(merged.Conflicts) != 1 || merged.Conflicts[0].Path != "hello.py" {
		t.Fatalf("conflicting merge: %+v", merged)
	}
	s.call("write_file", gitOpsArgs("path", "hello.py", "content", helloMerged), nil)
	var resolved backends.MarkResolvedResult
	s.call("mark_resolved", gitOpsArgs("paths", []any{"hello.py"}), &resolved)
	if len(resolved.Remaining) != 0 {
		t.Fatalf("mark_resolved: %+v", resolved)
	}
	var continued backends.ContinueResult
	s.call("continue", gitOpsArgs(), &continued)
	if !continued.Done || continued.Operation != "merge" {
		t.Fatalf("continue: %+v", continued)
	}

	// Tags, light and annotated, listed and pushed with the branch.
	s.call("tag", gitOpsArgs("name", "gops-light"), nil)
	s.call("tag", gitOpsArgs("name", "gops-annotated", "message", "An annotated tag"), nil)
	var tags backends.TagsResult
	s.call("tags", gitOpsArgs(), &tags)
	if len(tags.Tags) != 2 {
		t.Fatalf("tags: %+v", tags.Tags)
	}
	s.call("push", gitOpsArgs("tags", []any{"gops-light", "gops-annotated"}), nil)
	if got := w.remoteGit(t, "for-each-ref", "--format=%(refname)", "refs/tags"); got != "refs/tags/gops-annotated\nrefs/tags/gops-light" {
		t.Fatalf("remote tags after push with tags:\n%s", got)
	}

	// A rebase of the agent's new commit onto theirs.
	if _, err := w.remote.CommitFile(t.Context(), "demo", branch, "rebase-theirs.txt", "theirs again\n", "Their second note"); err != nil {
		t.Fatal(err)
	}
	s.call("fetch", gitOpsArgs(), nil)
	s.call("write_file", gitOpsArgs("path", "local.txt", "content", "local work\n"), nil)
	s.call("commit", gitOpsArgs("message", "Local work"), nil)
	var rebased backends.RebaseResult
	s.call("rebase", gitOpsArgs("onto", upstream), &rebased)
	if rebased.Replayed != 1 || rebased.InProgress != "" {
		t.Fatalf("rebase: %+v", rebased)
	}

	// A commit of a side branch cherry-picked, then reverted; the revert
	// undone by a reset, and the work tree restored.
	s.call("checkout", gitOpsArgs("branch", "agent/ada/side", "create", true), nil)
	s.call("write_file", gitOpsArgs("path", "side.txt", "content", "side work\n"), nil)
	var side backends.CommitResult
	s.call("commit", gitOpsArgs("message", "Side work"), &side)
	s.call("checkout", gitOpsArgs("branch", branch), nil)
	var picked backends.CherryPickResult
	s.call("cherry_pick", gitOpsArgs("commits", []any{side.SHA}), &picked)
	if len(picked.Created) != 1 || picked.InProgress != "" {
		t.Fatalf("cherry_pick: %+v", picked)
	}
	var reverted backends.RevertResult
	s.call("revert", gitOpsArgs("commits", []any{picked.Created[0]}), &reverted)
	if len(reverted.Created) != 1 || reverted.InProgress != "" {
		t.Fatalf("revert: %+v", reverted)
	}
	var reset backends.ResetResult
	s.call("reset", gitOpsArgs("ref", "HEAD~1"), &reset)
	if reset.After != picked.Created[0] || reset.Mode != "mixed" {
		t.Fatalf("reset: %+v", reset)
	}
	var restored backends.RestoreResult
	s.call("restore", gitOpsArgs("paths", []any{"side.txt"}), &restored)
	var st backends.StatusResult
	s.call("status", gitOpsArgs(), &st)
	if !st.Clean {
		t.Fatalf("status after restore: %+v", st)
	}

	// Changes stashed, listed, popped and committed.
	s.call("write_file", gitOpsArgs("path", "README.md", "content", "# sample\n\nwork in progress\n"), nil)
	var stashed backends.StashResult
	s.call("stash", gitOpsArgs("action", "push", "message", "wip readme"), &stashed)
	var stashes backends.StashesResult
	s.call("stashes", gitOpsArgs(), &stashes)
	if len(stashes.Stashes) != 1 || stashes.Stashes[0].SHA != stashed.SHA {
		t.Fatalf("stashes %+v after stash push %+v", stashes.Stashes, stashed)
	}
	s.call("stash", gitOpsArgs("action", "pop"), nil)
	s.call("commit", gitOpsArgs("message", "Readme in progress"), nil)
	var reflog backends.ReflogResult
	s.call("reflog", gitOpsArgs(), &reflog)
	if len(reflog.Entries) == 0 {
		t.Fatalf("reflog: %+v", reflog)
	}

	// A second conflicting merge, abandoned.
	s.call("push", gitOpsArgs(), nil)
	s.call("write_file", gitOpsArgs("path", "hello.py", "content", strings.Replace(helloOurs, "Hi", "Hey", 1)), nil)
	s.call("commit", gitOpsArgs("message", "Greet with hey"), nil)
	if _, err := w.remote.CommitFile(t.Context(), "demo", branch, "hello.py", strings.Replace(helloTheirs, "Howdy", "Hello there", 1), "Greet with hello there"); err != nil {
		t.Fatal(err)
	}
	s.call("fetch", gitOpsArgs(), nil)
	s.call("merge", gitOpsArgs("branch", upstream), &merged)
	if merged.InProgress != "merge" {
		t.Fatalf("second conflicting merge: %+v", merged)
	}
	var aborted backends.AbortResult
	s.call("abort", gitOpsArgs(), &aborted)
	if aborted.Operation != "merge" || aborted.Head != merged.Before {
		t.Fatalf("abort: %+v (merge started at %s)", aborted, merged.Before)
	}

	// A parallel workspace forked from this one, read there.
	var forked backends.ForkWorkspaceResult
	s.call("fork_workspace", map[string]any{"workspace": "gops-fork", "source": "gops", "branch": "agent/ada/fork"}, &forked)
	if forked.Head != aborted.Head {
		t.Fatalf("fork_workspace: %+v, want head %s", forked, aborted.Head)
	}
	s.call("show", map[string]any{"workspace": "gops-fork"}, nil)

	comparisons := waitComparisons(t, canary.LedgerPath(flagPath), s.calls)
	if len(comparisons) != s.calls {
		t.Fatalf("%d comparisons recorded for %d calls", len(comparisons), s.calls)
	}
	table := map[backends.Op]map[canary.Outcome]int{}
	for _, e := range comparisons {
		if e.Routed != backends.Approach1 || e.Backend != backends.Approach2 {
			t.Errorf("comparison %+v: want approach1 primary, approach2 shadow", e)
		}
		if table[e.Op] == nil {
			table[e.Op] = map[canary.Outcome]int{}
		}
		table[e.Op][e.Outcome]++
		if e.Outcome != canary.OutcomeMatch {
			// Every call waited for its shadow: nothing came after it
			// that could make it stale.
			t.Errorf("%s: %s (at %s):\n%s", e.Op, e.Outcome, e.At.Format("15:04:05.000"), e.Detail)
		}
	}
	logOutcomeTable(t, table)
	for _, op := range gitOpsShadowed {
		if table[op][canary.OutcomeMatch] == 0 {
			t.Errorf("no matching shadow comparison of %s: %v", op, table[op])
		}
	}
}

// logOutcomeTable logs the comparisons per operation and outcome.
func logOutcomeTable(t *testing.T, table map[backends.Op]map[canary.Outcome]int) {
	t.Helper()
	ops := make([]string, 0, len(table))
	for op := range table {
		ops = append(ops, string(op))
	}
	sort.Strings(ops)
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s %6s %9s %6s %7s %8s\n", "op", "match", "mismatch", "stale", "error", "timeout")
	for _, op := range ops {
		m := table[backends.Op(op)]
		fmt.Fprintf(&b, "%-16s %6d %9d %6d %7d %8d\n", op, m[canary.OutcomeMatch], m[canary.OutcomeMismatch], m[canary.OutcomeStale],
			m[canary.OutcomeShadowError], m[canary.OutcomeShadowTimeout])
	}
	t.Logf("shadow comparisons per operation:\n%s", b.String())
}

// TestShadowedGitOpsInjectedDifference: the same path catches a
// difference. While the Approach 2 service is stopped (SIGSTOP), so that
// the shadows of the agent's next calls wait, a tag the agent made is
// moved to another commit and a tag nobody asked for is added, directly in
// the workspace's git directory (behind the primary's back, without a
// write through the gateway: the workspace's write count does not move, so
// nothing is stale). Once the service runs again, the prediction of tag
// and the mirrored tags read disagree with what the primary did and saw:
// the ledger records a mismatch for each, with the keys that differ;
// the comparisons before the injection matched.
func TestShadowedGitOpsInjectedDifference(t *testing.T) {
	f := flags.NewFile(backends.OpNames())
	for _, op := range backends.OpNames() {
		_ = f.SetShadow(op, 1)
	}
	w, flagPath, proc := newCanaryWorld(t, f)
	s := &shadowSession{t: t, w: w, c: w.httpClient(t, agentToken)}
	s.call("clone", gitOpsArgs("url", w.repoURL), nil)
	s.call("checkout", gitOpsArgs("branch", "agent/ada/inject", "create", true), nil)
	s.call("write_file", gitOpsArgs("path", "new.txt", "content", "new\n"), nil)
	var c backends.CommitResult
	s.call("commit", gitOpsArgs("message", "New file"), &c)
	before := s.calls

	gitDirs, err := filepath.Glob(filepath.Join(w.sharedSandboxes, "sbx-*", "git", "*.git"))
	if err != nil || len(gitDirs) != 1 {
		t.Fatalf("the workspace's git directory: %v %v", gitDirs, err)
	}
	behind := func(args ...string) string {
		t.Helper()
		return runGit(t, gitDirs[0], args...)
	}
	parent := behind("rev-parse", "--verify", c.SHA+"^")

	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := proc.Signal(syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT: %v", err)
			}
		}
	}
	t.Cleanup(resume)
	// The shadows wait for the service; the primary serves the calls.
	m := w.ok(t, s.c, "tag", gitOpsArgs("name", "injected"))
	if m["backend"] != backends.Approach1.String() || m["target"] != c.SHA {
		t.Fatalf("tag: %v", m)
	}
	behind("update-ref", "refs/tags/injected", parent, c.SHA)
	m = w.ok(t, s.c, "tags", gitOpsArgs())
	if m["backend"] != backends.Approach1.String() {
		t.Fatalf("tags: %v", m)
	}
	behind("update-ref", "refs/tags/behind-the-back", c.SHA, "")
	resume()

	testkit.Eventually(t, "the shadow comparisons of tag and tags", func() bool { return w.shadowComparisons(t) >= before+2 })
	comparisons := waitComparisons(t, canary.LedgerPath(flagPath), before+2)
	if len(comparisons) != before+2 {
		t.Fatalf("%d comparisons for %d calls", len(comparisons), before+2)
	}
	table := map[backends.Op]map[canary.Outcome]int{}
	details := map[backends.Op]string{}
	for _, e := range comparisons {
		if table[e.Op] == nil {
			table[e.Op] = map[canary.Outcome]int{}
		}
		table[e.Op][e.Outcome]++
		if e.Op == backends.OpTag || e.Op == backends.OpTags {
			details[e.Op] = e.Detail
		} else if e.Outcome != canary.OutcomeMatch {
			t.Errorf("%s before the injection: %s: %s", e.Op, e.Outcome, e.Detail)
		}
	}
	logOutcomeTable(t, table)
	for op, key := range map[backends.Op]string{backends.OpTag: "ref_target", backends.OpTags: "behind-the-back"} {
		t.Logf("%s mismatch detail: %s", op, details[op])
		if table[op][canary.OutcomeMismatch] != 1 {
			t.Errorf("%s: outcomes %v, want one mismatch", op, table[op])
		} else if !strings.Contains(details[op], key) {
			t.Errorf("%s: the mismatch's detail does not name %q:\n%s", op, key, details[op])
		}
	}
}

// runGit runs git on a workspace's git directory, as someone reaching
// into the sandbox would.
func runGit(t *testing.T, gitDir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/git", append([]string{"--git-dir=" + gitDir}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}
