package backendtest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// keyed is a scope with an idempotency key.
func keyed(ws, key string) backends.Scope {
	return backends.Scope{Workspace: ws, IdempotencyKey: key}
}

// testIdempotency: the promise of idempotency_key in every write tool's
// schema ("retrying with the same key after a timeout never applies the
// write twice"). A retry of checkout, write_file, commit and push with the
// same key returns the first result and applies nothing; the same key with
// another request is invalid_argument and changes nothing; identical calls
// at once all get the one result; keys are scoped by workspace and
// project; reads ignore keys.
func testIdempotency(t *testing.T, f Factory) {
	env := NewEnv(t)
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "idem")

	co := &backends.CheckoutRequest{Scope: keyed("idem", "co-1"), Branch: "idem/feature", Create: true}
	sameResult(t, Do[*backends.CheckoutResult](t, ex, env.Agent, co), Do[*backends.CheckoutResult](t, ex, env.Agent, co))

	wf := &backends.WriteFileRequest{Scope: keyed("idem", "wf-1"), Path: "idem.txt", Content: "first\n"}
	w1 := Do[*backends.WriteFileResult](t, ex, env.Agent, wf)
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("idem"), Path: "idem.txt", Content: "second\n"})
	w2 := Do[*backends.WriteFileResult](t, ex, env.Agent, wf)
	sameResult(t, w1, w2)
	if !w2.Created {
		t.Fatalf("replayed write_file %+v, want the first result (created)", w2)
	}
	wantFile(t, ex, env, "idem", "idem.txt", "second\n")

	cm := &backends.CommitRequest{Scope: keyed("idem", "commit-1"), Message: "idempotent commit"}
	c1 := Do[*backends.CommitResult](t, ex, env.Agent, cm)
	sameResult(t, c1, Do[*backends.CommitResult](t, ex, env.Agent, cm))
	wantSubjects(t, ex, env, "idem", "idempotent commit", 1)

	pushes := env.Remote.Pushes("demo")
	ps := &backends.PushRequest{Scope: keyed("idem", "push-1")}
	p1 := Do[*backends.PushResult](t, ex, env.Agent, ps)
	p2 := Do[*backends.PushResult](t, ex, env.Agent, ps)
	sameResult(t, p1, p2)
	if !p2.Created || p2.UpToDate || p2.Head != c1.SHA {
		t.Fatalf("replayed push %+v, want the first result (created %s)", p2, c1.SHA)
	}
	if n := env.Remote.Pushes("demo"); n != pushes+1 {
		t.Fatalf("the remote saw %d pushes, want 1", n-pushes)
	}

	before := snapshotWS(t, ex, env, "idem")
	for _, req := range []backends.Request{
		&backends.CommitRequest{Scope: keyed("idem", "commit-1"), Message: "another message"},
		&backends.WriteFileRequest{Scope: keyed("idem", "wf-1"), Path: "idem.txt", Content: "other\n"},
		&backends.WriteFileRequest{Scope: keyed("idem", "wf-1"), Path: "idem.txt", Content: "first\n", Encoding: "base64"},
		&backends.CheckoutRequest{Scope: keyed("idem", "co-1"), Branch: "main"},
		&backends.PushRequest{Scope: keyed("idem", "commit-1")}, // another operation's key
		&backends.PushRequest{Scope: keyed("idem", "push-1"), Branch: "main"},
	} {
		err := Fail(t, ex, env.Agent, req)
		if backends.CategoryOf(err) != backends.InvalidArgument {
			t.Errorf("%s reusing key %q: %v, want invalid_argument", req.Op(), req.GetScope().IdempotencyKey, err)
		}
	}
	if after := snapshotWS(t, ex, env, "idem"); after != before {
		t.Fatalf("a refused reuse of a key changed the workspace:\nbefore %s\nafter  %s", before, after)
	}
	if n := env.Remote.Pushes("demo"); n != pushes+1 {
		t.Fatalf("the remote saw %d pushes, want 1", n-pushes)
	}

	// The same key in another workspace, or in another project's workspace
	// of the same name, is another operation.
	Clone(t, ex, env, env.Agent, "idem-2")
	Clone(t, ex, env, env.Stranger, "idem")
	for _, w := range []struct {
		p  backends.Principal
		ws string
	}{{env.Agent, "idem-2"}, {env.Stranger, "idem"}} {
		Do[*backends.WriteFileResult](t, ex, w.p, &backends.WriteFileRequest{Scope: keyed(w.ws, "wf-1"), Path: "idem.txt", Content: "first\n"})
		c := Do[*backends.CommitResult](t, ex, w.p, &backends.CommitRequest{Scope: keyed(w.ws, "commit-1"), Message: "idempotent commit"})
		if c.SHA == c1.SHA || c.SHA == "" {
			t.Fatalf("commit with the key of another workspace (%s of %s) = %+v, want a commit of its own", w.ws, w.p.Project, c)
		}
	}

	testIdenticalAtOnce(t, ex, env, pushes+1)

	// Reads ignore keys, even used ones.
	for range 2 {
		Do[*backends.StatusResult](t, ex, env.Agent, &backends.StatusRequest{Scope: keyed("idem", "commit-1")})
	}
}

// testIdenticalAtOnce: identical keyed commits and pushes sent at once all
// return the one result, applied once.
func testIdenticalAtOnce(t *testing.T, ex backends.Executor, env *Env, pushes int) {
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("idem"), Path: "burst.txt", Content: "burst\n"})
	const n = 6
	commits := atOnce(t, ex, env, n, func() backends.Request {
		return &backends.CommitRequest{Scope: keyed("idem", "burst"), Message: "burst commit"}
	})
	for _, c := range commits[1:] {
		sameResult(t, commits[0], c)
	}
	wantSubjects(t, ex, env, "idem", "burst commit", 1)
	results := atOnce(t, ex, env, n, func() backends.Request { return &backends.PushRequest{Scope: keyed("idem", "burst-push")} })
	for _, p := range results[1:] {
		sameResult(t, results[0], p)
	}
	if p := results[0].(*backends.PushResult); p.Head != commits[0].(*backends.CommitResult).SHA {
		t.Fatalf("push %+v, want %s", p, commits[0].(*backends.CommitResult).SHA)
	}
	if got := env.Remote.Pushes("demo"); got != pushes+1 {
		t.Fatalf("%d identical pushes at once reached the remote %d times, want once", n, got-pushes)
	}
}

// atOnce sends n requests made by mk at the same moment and returns their
// results, failing the test on any error.
func atOnce(t *testing.T, ex backends.Executor, env *Env, n int, mk func() backends.Request) []backends.Result {
	t.Helper()
	out, errs := make([]backends.Result, n), make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := mk()
			req.GetScope().Principal = env.Agent
			<-gate
			out[i], errs[i] = ex.Execute(Ctx(t), req)
		})
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("identical call #%d: %v", i, err)
		}
	}
	return out
}

// sameResult fails unless a and b are the same result, apart from who
// served them and how long it took.
func sameResult(t *testing.T, a, b backends.Result) {
	t.Helper()
	if ja, jb := withoutServed(t, a), withoutServed(t, b); !reflect.DeepEqual(ja, jb) {
		t.Fatalf("retry with the same key returned %v, want the first result %v", jb, ja)
	}
}

func withoutServed(t *testing.T, r backends.Result) map[string]any {
	t.Helper()
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "backend")
	delete(m, "duration_ms")
	delete(m, "fell_back")
	return m
}

// wantFile fails unless path in ws holds content.
func wantFile(t *testing.T, ex backends.Executor, env *Env, ws, path, content string) {
	t.Helper()
	r := Do[*backends.ReadFileResult](t, ex, env.Agent, &backends.ReadFileRequest{Scope: scope(ws), Path: path})
	if r.Content != content {
		t.Fatalf("%s holds %q, want %q", path, r.Content, content)
	}
}

// wantSubjects fails unless the history of ws has n commits with subject.
func wantSubjects(t *testing.T, ex backends.Executor, env *Env, ws, subject string, n int) {
	t.Helper()
	lg := Do[*backends.LogResult](t, ex, env.Agent, &backends.LogRequest{Scope: scope(ws), Limit: 200})
	got := 0
	for _, c := range lg.Commits {
		if c.Subject == subject {
			got++
		}
	}
	if got != n {
		t.Fatalf("history has %d commits %q, want %d", got, subject, n)
	}
}

// snapshotWS describes a workspace: branch, HEAD, changed and listed files.
func snapshotWS(t *testing.T, ex backends.Executor, env *Env, ws string) string {
	t.Helper()
	st := Do[*backends.StatusResult](t, ex, env.Agent, &backends.StatusRequest{Scope: scope(ws)})
	s := fmt.Sprintf("%s %s %v", st.Branch, st.Head, st.Entries)
	ls := Do[*backends.ListFilesResult](t, ex, env.Agent, &backends.ListFilesRequest{Scope: scope(ws), Recursive: true})
	for _, e := range ls.Entries {
		s += fmt.Sprintf(" %s:%s:%d", e.Type, e.Path, e.Size)
	}
	return s
}
