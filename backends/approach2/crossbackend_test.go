package approach2_test

import (
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestKeysAreHonouredAcrossBackends: Approach 1 (the engine behind the
// exactly-once layer, in process) and Approach 2 (the service over gRPC)
// share workspaces, locks and one journal, as during a canary. A write
// made with a key through one backend and retried with the same key
// through the other is replayed, not applied again; the key reused with
// another request is invalid_argument on the other backend. It runs with
// the shared PostgreSQL journal and with the embedded one (both backends
// on one machine).
func TestKeysAreHonouredAcrossBackends(t *testing.T) {
	journals := map[string]func(t *testing.T) journal.Store{
		"postgres": func(t *testing.T) journal.Store {
			j, err := journal.Open(t.Context(), backendtest.PostgresDSN(t), journal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(j.Close)
			return j
		},
		"embedded": func(t *testing.T) journal.Store { return backendtest.NewDirJournal(t) },
	}
	for name, open := range journals {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testKeysAcrossBackends(t, open(t))
		})
	}
}

func testKeysAcrossBackends(t *testing.T, j journal.Store) {
	env := backendtest.NewEnv(t)
	dir := t.TempDir()
	provider, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	env.SandboxRoots = append(env.SandboxRoots, dir)
	bindings := sandbox.NewMemoryBindings()
	locker := backendtest.NewFileLocker(t)
	engine1 := backendtest.NewEngineOn(t, env, provider, lock.Reentrant(locker), bindings)
	engine2 := backendtest.NewEngineOn(t, env, provider, lock.Reentrant(locker), bindings)
	a1 := backendtest.WithOnce(t, engine1, locker, j)
	a2 := startService(t, backendtest.WithOnce(t, engine2, locker, j))
	ada := env.Agent
	at := func(key string) backends.Scope { return backends.Scope{Workspace: "cross", IdempotencyKey: key} }

	backendtest.Clone(t, a2, env, ada, "cross")
	backendtest.Do[*backends.CheckoutResult](t, a1, ada, &backends.CheckoutRequest{Scope: at(""), Branch: "cross", Create: true})

	// Approach 2 first, then Approach 1.
	backendtest.Do[*backends.WriteFileResult](t, a1, ada, &backends.WriteFileRequest{Scope: at(""), Path: "one.txt", Content: "one\n"})
	commit := &backends.CommitRequest{Scope: at("commit-k"), Message: "through approach2"}
	c2 := backendtest.Do[*backends.CommitResult](t, a2, ada, commit)
	c1 := backendtest.Do[*backends.CommitResult](t, a1, ada, commit)
	if c1.SHA != c2.SHA || c1.Branch != c2.Branch {
		t.Fatalf("retry through approach1 = %+v, want approach2's %+v", c1, c2)
	}
	wantCommits(t, a1, env, "through approach2", 1)
	err = backendtest.Fail(t, a1, ada, &backends.CommitRequest{Scope: at("commit-k"), Message: "another message"})
	backendtest.WantCategory(t, err, backends.InvalidArgument)

	// Approach 1 first, then Approach 2.
	backendtest.Do[*backends.WriteFileResult](t, a2, ada, &backends.WriteFileRequest{Scope: at(""), Path: "two.txt", Content: "two\n"})
	commit = &backends.CommitRequest{Scope: at("commit-k2"), Message: "through approach1"}
	d1 := backendtest.Do[*backends.CommitResult](t, a1, ada, commit)
	d2 := backendtest.Do[*backends.CommitResult](t, a2, ada, commit)
	if d1.SHA != d2.SHA || d1.SHA == c1.SHA {
		t.Fatalf("retry through approach2 = %+v, want approach1's %+v", d2, d1)
	}
	wantCommits(t, a2, env, "through approach1", 1)
	err = backendtest.Fail(t, a2, ada, &backends.WriteFileRequest{Scope: at("commit-k2"), Path: "x.txt", Content: "x"})
	backendtest.WantCategory(t, err, backends.InvalidArgument)

	// A push through one backend, retried through the other, reaches the
	// remote once.
	push := &backends.PushRequest{Scope: at("push-k")}
	p2 := backendtest.Do[*backends.PushResult](t, a2, ada, push)
	p1 := backendtest.Do[*backends.PushResult](t, a1, ada, push)
	if p1.Head != d1.SHA || p1.Head != p2.Head || !p1.Created || p1.UpToDate {
		t.Fatalf("push through approach2 %+v, retried through approach1 %+v", p2, p1)
	}
	if n := env.Remote.Pushes("demo"); n != 1 {
		t.Fatalf("the remote saw %d pushes, want 1", n)
	}
	st := backendtest.Do[*backends.StatusResult](t, a2, ada, &backends.StatusRequest{Scope: at("")})
	if !st.Clean || st.Head != d1.SHA {
		t.Fatalf("status %+v", st)
	}
}

// wantCommits fails unless the workspace's history has n commits with
// subject.
func wantCommits(t *testing.T, ex backends.Executor, env *backendtest.Env, subject string, n int) {
	t.Helper()
	lg := backendtest.Do[*backends.LogResult](t, ex, env.Agent, &backends.LogRequest{Scope: backends.Scope{Workspace: "cross"}, Limit: 50})
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

// TestBadInputAnswersAreTheSame: Approach 1 (in process, exactly-once) and
// Approach 2 (over gRPC) refuse every bad request with the same category
// and message.
func TestBadInputAnswersAreTheSame(t *testing.T) {
	env := backendtest.NewEnv(t)
	a1 := backendtest.NewApproach1Once(t, env)
	locker := &lock.Memory{}
	engine := backendtest.NewEngine(t, env, lock.Reentrant(locker), nil)
	a2 := startService(t, backendtest.WithOnce(t, engine, locker, backendtest.NewDirJournal(t)))
	backendtest.CompareBadInput(t, env, a1, a2)
	backendtest.CompareGitOpsBadInput(t, env, a1, a2)
}
