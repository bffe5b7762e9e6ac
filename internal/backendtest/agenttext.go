package backendtest

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// transcript records every text an agent would see of the calls made
// through it: results, errors, notices and progress lines.
type transcript struct {
	mu    sync.Mutex
	texts []string
}

func (tr *transcript) add(s string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.texts = append(tr.texts, s)
}

// run executes req as p with a progress function and records what comes
// back.
func (tr *transcript) run(t *testing.T, ex backends.Executor, p backends.Principal, req backends.Request) (backends.Result, error) {
	t.Helper()
	req.GetScope().Principal = p
	ctx := backends.WithProgress(Ctx(t), func(line string) { tr.add("progress: " + line) })
	res, err := ex.Execute(ctx, req)
	if err != nil {
		tr.add("error: " + err.Error())
		tr.add("message: " + backends.MessageOf(err))
		return nil, err
	}
	raw, _ := json.Marshal(res)
	tr.add("result: " + string(raw))
	return res, nil
}

func (tr *transcript) do(t *testing.T, ex backends.Executor, p backends.Principal, req backends.Request) backends.Result {
	t.Helper()
	res, err := tr.run(t, ex, p, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Op(), err)
	}
	return res
}

func (tr *transcript) fail(t *testing.T, ex backends.Executor, p backends.Principal, req backends.Request, want backends.Category, says ...string) error {
	t.Helper()
	_, err := tr.run(t, ex, p, req)
	if err == nil {
		t.Fatalf("%s: want a %s error, got success", req.Op(), want)
	}
	WantCategory(t, err, want)
	msg := backends.MessageOf(err)
	for _, s := range says {
		if !strings.Contains(msg, s) {
			t.Errorf("%s: message %q does not say %q", req.Op(), msg, s)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("%s: message quotes git's raw multi-line output: %q", req.Op(), msg)
	}
	return err
}

// testAgentText checks what agents read: diff shows new files, errors say
// what happened and the next step in a sentence, a path through a symbolic
// link is invalid_argument, list_workspaces' last-used time moves with
// every operation, and no text (progress, results, errors) holds the
// gateway's absolute sandbox paths.
func testAgentText(t *testing.T, f Factory) {
	env := NewEnv(t)
	ex := f(t, env)
	tr := &transcript{}
	const ws = "texts"
	s := scope(ws)
	tr.do(t, ex, env.Agent, &backends.CloneRequest{Scope: s, URL: env.RepoURL})
	used0 := lastUsed(t, ex, env, ws)

	// A new file is part of the change; the real index is not touched.
	tr.do(t, ex, env.Agent, &backends.WriteFileRequest{Scope: s, Path: "docs/brand new.txt", Content: "hello new\n"})
	d := tr.do(t, ex, env.Agent, &backends.DiffRequest{Scope: s}).(*backends.DiffResult)
	if !strings.Contains(d.Diff, "docs/brand new.txt") || !strings.Contains(d.Diff, "+hello new") || !strings.Contains(d.Diff, "new file mode") {
		t.Fatalf("diff after writing a new file does not show it:\n%s", d.Diff)
	}
	if d := tr.do(t, ex, env.Agent, &backends.DiffRequest{Scope: s, Paths: []string{"src"}}).(*backends.DiffResult); d.Diff != "" {
		t.Fatalf("diff of src shows %q", d.Diff)
	}
	if d := tr.do(t, ex, env.Agent, &backends.DiffRequest{Scope: s, Staged: true}).(*backends.DiffResult); d.Diff != "" {
		t.Fatalf("staged diff shows an unstaged new file: %q", d.Diff)
	}
	st := tr.do(t, ex, env.Agent, &backends.StatusRequest{Scope: s}).(*backends.StatusResult)
	if len(st.Entries) != 1 || st.Entries[0].Unstaged != "?" {
		t.Fatalf("diff changed the index: status %+v", st.Entries)
	}

	// Every operation moves the last-used time (shown to the second).
	waitForNextSecond(t, used0)
	tr.do(t, ex, env.Agent, &backends.StatusRequest{Scope: s})
	used1 := lastUsed(t, ex, env, ws)
	if used1 <= used0 {
		t.Fatalf("last used %s after a status, was %s at the clone", used1, used0)
	}
	waitForNextSecond(t, used1)
	tr.do(t, ex, env.Agent, &backends.CommitRequest{Scope: s, Message: "Add a new file"})
	if used2 := lastUsed(t, ex, env, ws); used2 <= used1 {
		t.Fatalf("last used %s after a commit, was %s", used2, used1)
	}

	// Errors say what happened and what to do.
	tr.fail(t, ex, env.Agent, &backends.CommitRequest{Scope: s, Message: "Nothing"}, backends.Conflict, "nothing to commit", "write or delete files first")
	tr.do(t, ex, env.Agent, &backends.CheckoutRequest{Scope: s, Branch: "topic", Create: true})
	tr.fail(t, ex, env.Agent, &backends.CheckoutRequest{Scope: s, Branch: "topic/sub", Create: true}, backends.Conflict, `"topic"`, "choose another name")
	tr.do(t, ex, env.Agent, &backends.CheckoutRequest{Scope: s, Branch: "main"})
	tr.do(t, ex, env.Agent, &backends.PushRequest{Scope: s})
	if _, err := env.Remote.CommitFile(Ctx(t), "demo", "main", "upstream.txt", "theirs\n", "Upstream change"); err != nil {
		t.Fatal(err)
	}
	tr.do(t, ex, env.Agent, &backends.WriteFileRequest{Scope: s, Path: "mine.txt", Content: "mine\n"})
	tr.do(t, ex, env.Agent, &backends.CommitRequest{Scope: s, Message: "Local change"})
	tr.fail(t, ex, env.Agent, &backends.PullRequest{Scope: s}, backends.Conflict, "mode: merge")
	tr.do(t, ex, env.Agent, &backends.PullRequest{Scope: s, Mode: "merge"})
	tr.do(t, ex, env.Agent, &backends.PushRequest{Scope: s})

	// A commit through a symbolic link is the request's mistake.
	env.RemoteSymlinks(t, map[string]string{"link": "src"})
	tr.do(t, ex, env.Agent, &backends.PullRequest{Scope: s})
	before := tr.do(t, ex, env.Agent, &backends.StatusRequest{Scope: s}).(*backends.StatusResult)
	tr.fail(t, ex, env.Agent, &backends.CommitRequest{Scope: s, Message: "Through a link", Paths: []string{"link/main.go"}}, backends.InvalidArgument, "symbolic link")
	after := tr.do(t, ex, env.Agent, &backends.StatusRequest{Scope: s}).(*backends.StatusResult)
	if before.Head != after.Head || !after.Clean {
		t.Fatalf("refused commit changed the workspace: %+v then %+v", before, after)
	}

	// A failed clone and a failed push speak too.
	tr.fail(t, ex, env.Agent, &backends.CloneRequest{Scope: scope("texts-missing"), URL: env.Remote.RepoURL("missing")}, backends.NotFound)
	tr.fail(t, ex, env.Agent, &backends.PushRequest{Scope: s, Branch: "no-such-branch"}, backends.NotFound)

	for _, text := range tr.texts {
		for _, root := range env.SandboxRoots {
			if strings.Contains(text, root) || strings.Contains(text, "/ws/"+ws) || strings.Contains(text, "/git/"+ws) {
				t.Errorf("an agent's text shows a sandbox path: %q", text)
			}
		}
	}
	if len(tr.texts) == 0 || !strings.Contains(strings.Join(tr.texts, "\n"), "progress: ") {
		t.Errorf("no progress was recorded (the path check saw none): %q", tr.texts)
	}
}

// lastUsed returns workspace ws's last-used time as list_workspaces shows
// it.
func lastUsed(t *testing.T, ex backends.Executor, env *Env, ws string) string {
	t.Helper()
	l := Do[*backends.ListWorkspacesResult](t, ex, env.Agent, &backends.ListWorkspacesRequest{})
	for _, w := range l.Workspaces {
		if w.Name == ws {
			return w.LastUsed
		}
	}
	t.Fatalf("workspace %q not listed: %+v", ws, l.Workspaces)
	return ""
}

// waitForNextSecond waits until the clock, to the second as RFC 3339
// shows it, is past shown.
func waitForNextSecond(t *testing.T, shown string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().UTC().Format(time.RFC3339) <= shown {
		if time.Now().After(deadline) {
			t.Fatalf("the clock did not pass %s", shown)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StaleIndexLock leaves an index.lock in workspace ws's git directory, as
// a git that crashed would, in the local sandboxes of env; it reports
// false when the workspace's git directory is not on this machine.
func StaleIndexLock(t testing.TB, env *Env, ws string) bool {
	t.Helper()
	for _, root := range env.SandboxRoots {
		found := ""
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && d.Name() == ws+".git" && filepath.Base(filepath.Dir(p)) == "git" {
				found = p
				return fs.SkipAll
			}
			return nil
		})
		if found != "" {
			if err := os.WriteFile(filepath.Join(found, "index.lock"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return true
		}
	}
	return false
}

// testStaleIndexLock: a write meets an index.lock a crashed git left
// (gitgate holds the workspace's lock, so it is stale): it is removed and
// the write goes through.
func testStaleIndexLock(t *testing.T, f Factory) {
	env := NewEnv(t)
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "locked")
	if !StaleIndexLock(t, env, "locked") {
		t.Skip("the workspace's git directory is not on this machine")
	}
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("locked"), Path: "a.txt", Content: "a\n"})
	c := Do[*backends.CommitResult](t, ex, env.Agent, &backends.CommitRequest{Scope: scope("locked"), Message: "After a crash"})
	st := Do[*backends.StatusResult](t, ex, env.Agent, &backends.StatusRequest{Scope: scope("locked")})
	if st.Head != c.SHA || !st.Clean {
		t.Fatalf("status after the commit: %+v", st)
	}
}

// canceledCtx is a context already cancelled, as a caller that gave up.
func canceledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// testCallerGaveUp: a call whose caller gave up is canceled, not a
// backend's failure.
func testCallerGaveUp(t *testing.T, f Factory) {
	env := NewEnv(t)
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "gaveup")
	for _, req := range []backends.Request{
		&backends.StatusRequest{Scope: scope("gaveup")},
		&backends.WriteFileRequest{Scope: scope("gaveup"), Path: "x.txt", Content: "x\n"},
	} {
		req.GetScope().Principal = env.Agent
		_, err := ex.Execute(canceledCtx(), req)
		if got := backends.CategoryOf(err); got != backends.Canceled {
			t.Errorf("%s with a cancelled context: category %q, want canceled (error: %v)", req.Op(), got, err)
		}
	}
}
