package main

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/mark3labs/mcp-go/client"
)

// The conflict flows of issue 16 end to end: a real MCP client over
// Streamable HTTP, the real gateway, a real smart-HTTP remote where a
// second actor pushes a change to the same lines as the agent's. Each runs
// on the embedded Approach 1 and, through the gateway's routing, on the
// Approach 2 service (`gitgate backend` in another process).

// The file both sides change: sampleFiles' hello.py with its second line
// rewritten.
const (
	helloOurs   = "def hello(name):\n    return f\"Hi, {name}!\"\n\n\nif __name__ == \"__main__\":\n    print(hello(\"world\"))\n"
	helloTheirs = "def hello(name):\n    return f\"Howdy, {name}!\"\n\n\nif __name__ == \"__main__\":\n    print(hello(\"world\"))\n"
	helloMerged = "def hello(name):\n    return f\"Hi and howdy, {name}!\"\n\n\nif __name__ == \"__main__\":\n    print(hello(\"world\"))\n"
	theirsNote  = "the other actor's unrelated change\n"
	oursNote    = "the agent's unrelated change\n"
	// topic is the agent's branch (the default branch is protected): the
	// agent pushes it first, then a reviewer pushes to it too.
	topic = "agent/ada/greeting"
)

// conflictWorld is a gateway with an MCP client whose calls are served by
// backend: approach1 (embedded) or approach2 (the service in a child
// process, sharing Redis with the gateway, as TestAgentFlowThroughApproach2
// runs it).
type conflictWorld struct {
	*world
	c       *client.Client
	backend string
}

func newConflictWorld(t *testing.T, backend string) *conflictWorld {
	t.Helper()
	w := newWorld(t)
	if backend == "approach2" {
		w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
		addr, _ := w.startBackend(t)
		w.cfg.Redis.Addr, w.cfg.Redis.Prefix = "127.0.0.1:6379", w.redisPrefix
		w.cfg.Backend.Default = "approach2"
		w.cfg.Approach2.Target, w.cfg.Approach2.Token, w.cfg.Approach2.Insecure = addr, serviceToken, true
	}
	w.startHTTP(t)
	return &conflictWorld{world: w, c: w.httpClient(t, agentToken), backend: backend}
}

// onEachBackend runs flow on a fresh world of each backend.
func onEachBackend(t *testing.T, flow func(t *testing.T, cw *conflictWorld)) {
	for _, backend := range []string{"approach1", "approach2"} {
		t.Run(backend, func(t *testing.T) { flow(t, newConflictWorld(t, backend)) })
	}
}

// workArgs builds the arguments of a call on workspace "work".
func workArgs(kv ...any) map[string]any {
	m := map[string]any{"workspace": "work"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// served calls a tool that must succeed on the world's backend (no fallback)
// and decodes its structured result into T.
func served[T any](t *testing.T, cw *conflictWorld, tool string, args map[string]any) (T, string) {
	t.Helper()
	res := cw.call(t, cw.c, tool, args)
	if res.IsError {
		t.Fatalf("%s %v: %s", tool, args, text(res))
	}
	m, ok := res.StructuredContent.(map[string]any)
	if !ok {
		t.Fatalf("%s: structured content %T", tool, res.StructuredContent)
	}
	if m["backend"] != cw.backend || m["fell_back"] == true {
		t.Fatalf("%s served by %v (fell back: %v), want %s", tool, m["backend"], m["fell_back"], cw.backend)
	}
	raw, _ := json.Marshal(m)
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: decode %s: %v", tool, raw, err)
	}
	return out, text(res)
}

// readFile reads a whole (small) file of the work tree.
func (cw *conflictWorld) readFile(t *testing.T, path string) string {
	t.Helper()
	r, _ := served[backends.ReadFileResult](t, cw, "read_file", workArgs("path", path))
	if r.Truncated {
		t.Fatalf("read_file %s: truncated", path)
	}
	return r.Content
}

// conflictSetup clones, creates and pushes the agent's branch (topic),
// commits the agent's change to hello.py (and ours.txt when extra), lets
// the other actor push theirs to the same lines of the branch (and
// theirs.txt) and fetches. It returns the agent's commit (the branch's
// tip) and the remote branch's new tip.
func conflictSetup(t *testing.T, cw *conflictWorld, extra bool) (ours, theirs string) {
	t.Helper()
	served[backends.CloneResult](t, cw, "clone", workArgs("url", cw.repoURL))
	served[backends.CheckoutResult](t, cw, "checkout", workArgs("branch", topic, "create", true))
	if p, _ := served[backends.PushResult](t, cw, "push", workArgs()); !p.Created {
		t.Fatalf("push of the new branch: %+v", p)
	}
	served[backends.WriteFileResult](t, cw, "write_file", workArgs("path", "hello.py", "content", helloOurs))
	c, _ := served[backends.CommitResult](t, cw, "commit", workArgs("message", "Greet with hi"))
	ours = c.SHA
	if extra {
		served[backends.WriteFileResult](t, cw, "write_file", workArgs("path", "ours.txt", "content", oursNote))
		c, _ = served[backends.CommitResult](t, cw, "commit", workArgs("message", "Add our note"))
		ours = c.SHA
	}
	// Meanwhile someone else pushes a change to the same line, then an
	// unrelated one.
	if _, err := cw.remote.CommitFile(t.Context(), "demo", topic, "hello.py", helloTheirs, "Greet with howdy"); err != nil {
		t.Fatal(err)
	}
	theirs, err := cw.remote.CommitFile(t.Context(), "demo", topic, "theirs.txt", theirsNote, "Add their note")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := served[backends.FetchResult](t, cw, "fetch", workArgs())
	if i := slices.IndexFunc(f.Updated, func(u backends.RefUpdate) bool { return u.Ref == "origin/"+topic }); i < 0 || f.Updated[i].After != theirs {
		t.Fatalf("fetch updated %+v, want origin/%s at %s", f.Updated, topic, theirs)
	}
	return ours, theirs
}

// wantHelloConflict checks that conflicts is exactly hello.py, modified on
// both sides, with the base, ours and theirs in the index.
func wantHelloConflict(t *testing.T, what string, conflicts []backends.ConflictPath) {
	t.Helper()
	want := []backends.ConflictPath{{Path: "hello.py", Kind: "both_modified", Stages: []int{1, 2, 3}}}
	if !reflect.DeepEqual(conflicts, want) {
		t.Fatalf("%s: conflicts %+v, want %+v", what, conflicts, want)
	}
}

// wantConflictMarkers checks that the work tree's hello.py holds both
// sides between git's markers.
func wantConflictMarkers(t *testing.T, cw *conflictWorld) {
	t.Helper()
	got := cw.readFile(t, "hello.py")
	for _, s := range []string{"<<<<<<< ", "=======", ">>>>>>> ", `f"Hi, {name}!"`, `f"Howdy, {name}!"`} {
		if !strings.Contains(got, s) {
			t.Fatalf("hello.py in conflict lacks %q:\n%s", s, got)
		}
	}
}

// wantGuidance checks that an answer's text names the conflicted path and
// the calls that get out of the conflict.
func wantGuidance(t *testing.T, tool, txt string) {
	t.Helper()
	for _, s := range []string{"hello.py", "mark_resolved", "continue", "abort"} {
		if !strings.Contains(txt, s) {
			t.Errorf("%s's text does not mention %q: %q", tool, s, txt)
		}
	}
}

// resolveHello writes the resolution and marks it resolved; status then shows
// the operation still in progress with no conflict left.
func resolveHello(t *testing.T, cw *conflictWorld, op string) {
	t.Helper()
	served[backends.WriteFileResult](t, cw, "write_file", workArgs("path", "hello.py", "content", helloMerged))
	mr, _ := served[backends.MarkResolvedResult](t, cw, "mark_resolved", workArgs("paths", []any{"hello.py"}))
	if !slices.Equal(mr.Resolved, []string{"hello.py"}) || len(mr.Remaining) != 0 {
		t.Fatalf("mark_resolved: resolved %v, remaining %+v", mr.Resolved, mr.Remaining)
	}
	st, _ := served[backends.StatusResult](t, cw, "status", workArgs())
	if st.InProgress != op || len(st.Conflicts) != 0 {
		t.Fatalf("status after mark_resolved: in_progress %q, conflicts %+v; want %s with none", st.InProgress, st.Conflicts, op)
	}
}

// TestMergeConflictEndToEnd: the agent's commit and another actor's pushed
// commit change the same line; merge (of the upstream, by default) stops
// on the conflict and says so; the agent resolves it, marks it resolved,
// continues and pushes: the remote has a merge commit whose parents are
// the agent's commit and the other actor's, holding the resolution and the
// other actor's unrelated change.
func TestMergeConflictEndToEnd(t *testing.T) {
	onEachBackend(t, func(t *testing.T, cw *conflictWorld) {
		ours, theirs := conflictSetup(t, cw, false)

		m, txt := served[backends.MergeResult](t, cw, "merge", workArgs())
		if m.InProgress != "merge" || m.Merged || m.FastForward || m.UpToDate || m.Branch != topic || m.After != ours || m.Next == "" {
			t.Fatalf("merge: %+v, want stopped with merge in progress, HEAD still at %s", m, ours)
		}
		wantHelloConflict(t, "merge", m.Conflicts)
		wantGuidance(t, "merge", txt)

		st, _ := served[backends.StatusResult](t, cw, "status", workArgs())
		if st.InProgress != "merge" || st.Head != ours || st.Branch != topic || st.Clean {
			t.Fatalf("status in the merge: %+v", st)
		}
		wantHelloConflict(t, "status", st.Conflicts)
		if !slices.ContainsFunc(st.Entries, func(e backends.StatusEntry) bool { return e.Path == "hello.py" }) {
			t.Errorf("status entries %+v do not show hello.py", st.Entries)
		}
		wantConflictMarkers(t, cw)
		resolveHello(t, cw, "merge")

		// The merge is concluded by commit on Approach 1 and by continue on
		// Approach 2: both ways end it with the same merge commit.
		var cont backends.ContinueResult
		if cw.backend == "approach1" {
			c, _ := served[backends.CommitResult](t, cw, "commit", workArgs("message", "Merge the upstream"))
			if c.Branch != topic || c.SHA == "" || c.SHA == ours {
				t.Fatalf("commit concluding the merge: %+v", c)
			}
			cont.Head = c.SHA
		} else {
			cont, _ = served[backends.ContinueResult](t, cw, "continue", workArgs())
			if cont.Operation != "merge" || !cont.Done || cont.InProgress != "" || len(cont.Conflicts) != 0 || cont.Branch != topic || cont.Head == "" || cont.Head == ours {
				t.Fatalf("continue: %+v", cont)
			}
		}
		st, _ = served[backends.StatusResult](t, cw, "status", workArgs())
		if st.InProgress != "" || len(st.Conflicts) != 0 || !st.Clean || st.Head != cont.Head || st.Ahead != 2 || st.Behind != 0 {
			t.Fatalf("status after the merge was concluded: %+v, want clean at %s, ahead 2 (ours and the merge), behind 0", st, cont.Head)
		}

		p, _ := served[backends.PushResult](t, cw, "push", workArgs())
		if p.Head != cont.Head || p.Created || p.UpToDate {
			t.Fatalf("push: %+v, want the merge %s", p, cont.Head)
		}
		// The remote, read with plain git.
		if got := cw.remoteGit(t, "rev-parse", "refs/heads/"+topic); got != cont.Head {
			t.Fatalf("remote branch at %s, want the merge %s", got, cont.Head)
		}
		if got := cw.remoteGit(t, "rev-list", "--parents", "-n", "1", cont.Head); got != cont.Head+" "+ours+" "+theirs {
			t.Fatalf("merge commit and parents %q, want %s %s %s", got, cont.Head, ours, theirs)
		}
		if got := cw.remoteGit(t, "log", "-1", "--format=%an <%ae>", cont.Head); got != "Ada Agent <ada@agents.example>" {
			t.Errorf("merge commit's author %q", got)
		}
		if got := cw.remoteGit(t, "log", "-1", "--format=%s", cont.Head); cw.backend == "approach1" && got != "Merge the upstream" {
			t.Errorf("merge commit's message %q, want the commit's", got)
		}
		if got := cw.remoteGit(t, "show", cont.Head+":hello.py") + "\n"; got != helloMerged {
			t.Errorf("remote hello.py %q, want the resolution %q", got, helloMerged)
		}
		if got := cw.remoteGit(t, "show", cont.Head+":theirs.txt") + "\n"; got != theirsNote {
			t.Errorf("remote theirs.txt %q, want %q", got, theirsNote)
		}
		if st, _ := served[backends.StatusResult](t, cw, "status", workArgs()); !st.Clean || st.Ahead != 0 || st.Behind != 0 {
			t.Errorf("status after the push: %+v", st)
		}
	})
}

// TestRebaseConflictEndToEnd: the agent's two commits (the first changing
// the line the other actor changed) are rebased onto the fetched upstream;
// the rebase stops at the first, the agent resolves and continues, the
// second replays by itself, and a plain (unforced) push moves the remote's
// branch by fast-forward: the other actor's commit is an ancestor of the
// new tip, two linear commits on top of it, no merge commit.
func TestRebaseConflictEndToEnd(t *testing.T) {
	onEachBackend(t, func(t *testing.T, cw *conflictWorld) {
		ours, theirs := conflictSetup(t, cw, true)

		r, txt := served[backends.RebaseResult](t, cw, "rebase", workArgs())
		if r.InProgress != "rebase" || r.UpToDate || r.Branch != topic || r.Before != ours || r.Replayed != 0 || r.Next == "" {
			t.Fatalf("rebase: %+v, want stopped at the first commit with rebase in progress", r)
		}
		wantHelloConflict(t, "rebase", r.Conflicts)
		wantGuidance(t, "rebase", txt)

		st, _ := served[backends.StatusResult](t, cw, "status", workArgs())
		if st.InProgress != "rebase" || st.Clean {
			t.Fatalf("status in the rebase: %+v", st)
		}
		wantHelloConflict(t, "status", st.Conflicts)
		wantConflictMarkers(t, cw)
		resolveHello(t, cw, "rebase")

		cont, _ := served[backends.ContinueResult](t, cw, "continue", workArgs())
		if cont.Operation != "rebase" || !cont.Done || cont.InProgress != "" || len(cont.Conflicts) != 0 || cont.Branch != topic || cont.Head == "" || cont.Head == ours {
			t.Fatalf("continue: %+v", cont)
		}
		st, _ = served[backends.StatusResult](t, cw, "status", workArgs())
		if st.InProgress != "" || !st.Clean || st.Branch != topic || st.Head != cont.Head || st.Ahead != 2 || st.Behind != 0 {
			t.Fatalf("status after continue: %+v, want clean on %s at %s, ahead 2, behind 0", st, topic, cont.Head)
		}
		if got := cw.readFile(t, "ours.txt"); got != oursNote {
			t.Errorf("ours.txt after the rebase: %q", got)
		}

		p, _ := served[backends.PushResult](t, cw, "push", workArgs())
		if p.Head != cont.Head || p.Created || p.UpToDate {
			t.Fatalf("push: %+v, want the rebased tip %s", p, cont.Head)
		}
		if got := cw.remoteGit(t, "rev-parse", "refs/heads/"+topic); got != cont.Head {
			t.Fatalf("remote branch at %s, want %s", got, cont.Head)
		}
		// A fast-forward: the remote's previous tip is an ancestor, with
		// the agent's two commits replayed linearly on top of it.
		if got := cw.remoteGit(t, "rev-list", "--parents", "--reverse", theirs+".."+cont.Head); len(strings.Split(got, "\n")) != 2 {
			t.Fatalf("commits on top of the other actor's %s: %q, want 2", theirs, got)
		} else {
			lines := strings.Split(got, "\n")
			first, second := strings.Fields(lines[0]), strings.Fields(lines[1])
			if len(first) != 2 || first[1] != theirs || len(second) != 2 || second[1] != first[0] || second[0] != cont.Head {
				t.Fatalf("rebased history %q, want two single-parent commits on %s", got, theirs)
			}
		}
		if got := cw.remoteGit(t, "log", "--format=%s|%an", theirs+".."+cont.Head); got != "Add our note|Ada Agent\nGreet with hi|Ada Agent" {
			t.Errorf("rebased commits %q", got)
		}
		if got := cw.remoteGit(t, "show", cont.Head+":hello.py") + "\n"; got != helloMerged {
			t.Errorf("remote hello.py %q, want the resolution %q", got, helloMerged)
		}
		for path, want := range map[string]string{"theirs.txt": theirsNote, "ours.txt": oursNote} {
			if got := cw.remoteGit(t, "show", cont.Head+":"+path) + "\n"; got != want {
				t.Errorf("remote %s %q, want %q", path, got, want)
			}
		}
	})
}

// workspaceState is what abort must give back: HEAD, branch, status and
// the work tree's files.
type workspaceState struct {
	Status backends.StatusResult
	Files  map[string]string
}

func workspaceSnapshot(t *testing.T, cw *conflictWorld) workspaceState {
	t.Helper()
	st, _ := served[backends.StatusResult](t, cw, "status", workArgs())
	st.Served = backends.Served{}
	lf, _ := served[backends.ListFilesResult](t, cw, "list_files", workArgs("recursive", true))
	files := map[string]string{}
	for _, e := range lf.Entries {
		if e.Type == "file" {
			files[e.Path] = cw.readFile(t, e.Path)
		}
	}
	if len(files) < 2 {
		t.Fatalf("list_files found %v: too few files for the comparison to mean anything", lf.Entries)
	}
	return workspaceState{Status: st, Files: files}
}

func wantSameWorkspace(t *testing.T, what string, got, want workspaceState) {
	t.Helper()
	if got.Status.InProgress != "" || len(got.Status.Conflicts) != 0 {
		t.Errorf("%s: still in progress: %q, conflicts %+v", what, got.Status.InProgress, got.Status.Conflicts)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("%s: the workspace is\n%s\nwant, as before:\n%s", what, g, w)
	}
}

// TestAbortRestoresTheWorkspace: a merge, then a rebase, then a merge
// again that stop on conflicts are aborted; each time HEAD, the branch,
// status (entries, clean flag, ahead/behind) and every work-tree file are
// what they were before, once with a clean work tree and twice with an
// untracked file the operations do not touch.
func TestAbortRestoresTheWorkspace(t *testing.T) {
	onEachBackend(t, func(t *testing.T, cw *conflictWorld) {
		ours, _ := conflictSetup(t, cw, false)
		clean := workspaceSnapshot(t, cw)
		if !clean.Status.Clean || clean.Status.Head != ours || clean.Status.Branch != topic || clean.Status.Ahead != 1 || clean.Status.Behind != 2 {
			t.Fatalf("before the merge: %+v", clean.Status)
		}
		if _, ok := clean.Files["theirs.txt"]; ok {
			t.Fatal("theirs.txt in the work tree before any merge")
		}

		abortAfter := func(op string, before workspaceState) {
			t.Helper()
			switch op {
			case "merge":
				if m, _ := served[backends.MergeResult](t, cw, "merge", workArgs()); m.InProgress != "merge" {
					t.Fatalf("merge did not stop: %+v", m)
				}
			case "rebase":
				if r, _ := served[backends.RebaseResult](t, cw, "rebase", workArgs()); r.InProgress != "rebase" {
					t.Fatalf("rebase did not stop: %+v", r)
				}
			}
			// The operation changed the workspace: the comparison after the
			// abort is not vacuous.
			mid, _ := served[backends.StatusResult](t, cw, "status", workArgs())
			if mid.InProgress != op || len(mid.Conflicts) == 0 || mid.Clean {
				t.Fatalf("status in the %s: %+v", op, mid)
			}
			a, _ := served[backends.AbortResult](t, cw, "abort", workArgs())
			if a.Operation != op || a.Branch != topic || a.Head != ours {
				t.Errorf("abort of the %s: %+v, want %s at %s", op, a, topic, ours)
			}
			wantSameWorkspace(t, "after aborting the "+op, workspaceSnapshot(t, cw), before)
		}

		abortAfter("merge", clean)

		served[backends.WriteFileResult](t, cw, "write_file", workArgs("path", "scratch/notes.md", "content", "work in progress\n"))
		dirty := workspaceSnapshot(t, cw)
		if dirty.Status.Clean || len(dirty.Status.Entries) != 1 || dirty.Files["scratch/notes.md"] != "work in progress\n" {
			t.Fatalf("with an untracked file: %+v", dirty.Status)
		}
		abortAfter("rebase", dirty)
		abortAfter("merge", dirty)

		// Nothing was pushed: the remote is where the other actor left it.
		if got := cw.remoteGit(t, "rev-list", "--count", "refs/heads/"+topic); got != "3" {
			t.Errorf("remote branch has %s commits, want 3", got)
		}
	})
}
