package approach2_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// lockKey is the workspace lock key every backend uses.
func lockKey(req backends.Request) string {
	s := req.GetScope()
	return approach1.LockKey(sandbox.WorkspaceKey{Project: s.Principal.Project, Name: s.Workspace})
}

// newOnceService is the service with its exactly-once layer and a journal
// in a fresh PostgreSQL schema. slow delays the engine's commits and pushes
// after they happened, so that a caller's deadline passes while the write
// completes on the service.
func newOnceService(t *testing.T, env *backendtest.Env, locker lock.Locker, bindings sandbox.BindingStore, slow time.Duration) (*approach2.Client, *journal.Journal) {
	t.Helper()
	j, err := journal.Open(t.Context(), backendtest.PostgresDSN(t), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	engine := backendtest.NewEngine(t, env, lock.Reentrant(locker), bindings)
	slowed := backends.ExecutorFunc(func(ctx context.Context, req backends.Request) (backends.Result, error) {
		res, err := engine.Execute(ctx, req)
		if op := req.Op(); op == backends.OpCommit || op == backends.OpPush {
			time.Sleep(slow)
		}
		return res, err
	})
	once, err := approach2.NewOnce(approach2.OnceConfig{Engine: slowed, Locker: locker, Journal: j, LockKey: lockKey})
	if err != nil {
		t.Fatal(err)
	}
	return startService(t, struct {
		backends.Executor
		backends.Predictor
	}{once, engine}), j
}

func scope(env *backendtest.Env, key string) backends.Scope {
	return backends.Scope{Principal: env.Agent, Workspace: "once", IdempotencyKey: key}
}

// TestRetriedWritesApplyOnce: a commit and a push whose caller timed out
// while they completed are applied once; retries with the same key get the
// first result, and a different request under a used key is refused.
func TestRetriedWritesApplyOnce(t *testing.T) {
	env := backendtest.NewEnv(t)
	c, _ := newOnceService(t, env, &lock.Memory{}, nil, 600*time.Millisecond)
	backendtest.Clone(t, c, env, env.Agent, "once")
	backendtest.Do[*backends.CheckoutResult](t, c, env.Agent, &backends.CheckoutRequest{Scope: scope(env, ""), Branch: "once", Create: true})
	backendtest.Do[*backends.WriteFileResult](t, c, env.Agent, &backends.WriteFileRequest{Scope: scope(env, ""), Path: "o.txt", Content: "once"})

	commit := &backends.CommitRequest{Scope: scope(env, "commit-key-1"), Message: "exactly once"}
	timedOut(t, c, commit)
	first := backendtest.Do[*backends.CommitResult](t, c, env.Agent, commit) // waits for the first attempt, replays it
	again := backendtest.Do[*backends.CommitResult](t, c, env.Agent, commit)
	if first.SHA == "" || again.SHA != first.SHA {
		t.Fatalf("retries returned %s and %s", first.SHA, again.SHA)
	}
	lg := backendtest.Do[*backends.LogResult](t, c, env.Agent, &backends.LogRequest{Scope: scope(env, ""), Limit: 10})
	if lg.Commits[0].SHA != first.SHA || lg.Commits[1].Subject == "exactly once" {
		t.Fatalf("history after retried commit: %+v", lg.Commits[:2])
	}
	other := &backends.CommitRequest{Scope: scope(env, "commit-key-1"), Message: "another message"}
	backendtest.WantCategory(t, backendtest.Fail(t, c, env.Agent, other), backends.InvalidArgument)

	push := &backends.PushRequest{Scope: scope(env, "push-key-1")}
	timedOut(t, c, push)
	p := backendtest.Do[*backends.PushResult](t, c, env.Agent, push)
	if p.Head != first.SHA || !p.Created {
		t.Fatalf("replayed push %+v", p)
	}
	if n := env.Remote.Pushes("demo"); n != 1 {
		t.Fatalf("the remote saw %d pushes, want 1", n)
	}
	if got := env.RemoteRef(t, "refs/heads/once"); got != first.SHA {
		t.Fatalf("remote branch at %s, want %s", got, first.SHA)
	}
}

// timedOut calls req with a deadline shorter than the write, which must
// fail as a timeout that does not claim the write never started.
func timedOut(t *testing.T, c backends.Executor, req backends.Request) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 250*time.Millisecond)
	defer cancel()
	_, err := c.Execute(ctx, req)
	if backends.CategoryOf(err) != backends.Timeout || errors.Is(err, backends.ErrNotStarted) {
		t.Fatalf("%s with a short deadline: %v", req.Op(), err)
	}
}
