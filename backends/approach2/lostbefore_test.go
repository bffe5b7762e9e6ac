package approach2_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// stallPrepare makes r.once's engine stop the next push's preparation (its
// Branches read) until release is closed; arrived is closed when it stops.
func stallPrepare(t *testing.T, r *rig) (arrived, release chan struct{}) {
	t.Helper()
	arrived, release = make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	armed.Store(true)
	r.reconfigure(t, func(c *approach2.OnceConfig) {
		c.Engine = backends.ExecutorFunc(func(ctx context.Context, req backends.Request) (backends.Result, error) {
			if req.Op() == backends.OpBranches && armed.CompareAndSwap(true, false) {
				close(arrived)
				<-release
			}
			return r.engine.Execute(ctx, req)
		})
	})
	return arrived, release
}

// pushInBackground runs req through r.once and returns where its answer
// arrives.
func pushInBackground(t *testing.T, r *rig, req *backends.PushRequest) <-chan error {
	t.Helper()
	req.Principal = r.env.Agent
	answered := make(chan error, 1)
	go func() {
		_, err := r.once.Execute(context.WithoutCancel(t.Context()), req)
		answered <- err
	}()
	return answered
}

func waitFor[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: nothing after 60 s", what)
	}
	var zero T
	return zero
}

// TestPushWhoseLockWasLostBeforeItRanIsRunByTheRetry: a push whose
// workspace lease is lost while it prepares (CPU starvation past the lock's
// TTL) does not run: it answers unavailable, nothing done, retry the same
// call; the retry with the same key runs it once, and a further retry
// replays that. (Before, it ran without its lock, and a holder whose entry
// was taken over meanwhile answered "conflict: … fence is stale".)
func TestPushWhoseLockWasLostBeforeItRanIsRunByTheRetry(t *testing.T) {
	env := backendtest.NewEnv(t)
	r, locker, loseLock := redisRig(t, env)
	commit := r.commitOn(t, r.once, "late", "late", "late")
	before := env.Remote.Pushes("demo")
	arrived, release := stallPrepare(t, r)
	req := &backends.PushRequest{Scope: r.scope("late", "k-late")}
	answered := pushInBackground(t, r, req)
	waitFor(t, "the push's preparation", arrived)
	loseLock(lockKey(req), locker.lastLease())
	close(release)

	err := waitFor(t, "the push's answer", answered)
	if backends.CategoryOf(err) != backends.Unavailable || !errors.Is(err, backends.ErrNotStarted) ||
		!strings.Contains(backends.MessageOf(err), "nothing was done: retry the same call") {
		t.Fatalf("push whose lock was lost before it ran answered %v, want unavailable, not started, retry the same call", err)
	}
	if n := env.Remote.Pushes("demo"); n != before {
		t.Fatalf("the remote saw %d pushes, want none", n-before)
	}

	got := backendtest.Do[*backends.PushResult](t, r.once, env.Agent, &backends.PushRequest{Scope: r.scope("late", "k-late")})
	if got.Head != commit || env.RemoteRef(t, "refs/heads/late") != commit {
		t.Fatalf("the retry answered %+v; remote branch at %s; want the push of %s", got, env.RemoteRef(t, "refs/heads/late"), commit)
	}
	again := backendtest.Do[*backends.PushResult](t, r.once, env.Agent, &backends.PushRequest{Scope: r.scope("late", "k-late")})
	if again.Head != commit {
		t.Fatalf("the second retry replayed %+v", again)
	}
	if n := env.Remote.Pushes("demo") - before; n != 1 {
		t.Fatalf("the remote saw %d pushes, want 1", n)
	}
	if e := r.recorded(t, req); e.State != journal.Succeeded {
		t.Fatalf("journalled %s (%s: %s), want succeeded", e.State, e.ErrorCategory, e.ErrorMessage)
	}
}

// TestWriteWhoseEntryChangedBeforeItRanAnswersWhatHappened: a holder whose
// entry another holder took over, or settled, while it prepared does not
// run it, and answers what happened instead of "conflict: … fence is
// stale": retry the same call (unavailable, nothing done) when the other
// holder runs it, the recorded outcome when it was settled.
func TestWriteWhoseEntryChangedBeforeItRanAnswersWhatHappened(t *testing.T) {
	env := backendtest.NewEnv(t)
	r := newRig(t, env, &lock.Memory{})
	r.commitOn(t, r.once, "moved", "moved", "moved")
	before := env.Remote.Pushes("demo")
	entryOf := func(req backends.Request) journal.Entry {
		es, err := r.j.Unsettled(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.IdempotencyKey == req.GetScope().IdempotencyKey {
				return e
			}
		}
		t.Fatalf("no started entry for %s", req.GetScope().IdempotencyKey)
		return journal.Entry{}
	}

	// Taken over by a newer holder.
	arrived, release := stallPrepare(t, r)
	req := &backends.PushRequest{Scope: r.scope("moved", "k-taken")}
	answered := pushInBackground(t, r, req)
	waitFor(t, "the push's preparation", arrived)
	e := entryOf(req)
	if err := r.j.Takeover(t.Context(), e.ID, e.Fence+1000); err != nil {
		t.Fatal(err)
	}
	close(release)
	err := waitFor(t, "the push's answer", answered)
	if backends.CategoryOf(err) != backends.Unavailable || !errors.Is(err, backends.ErrNotStarted) ||
		!strings.Contains(backends.MessageOf(err), "retry the same call (same idempotency key)") {
		t.Fatalf("push whose entry was taken over answered %v, want unavailable, not started, retry the same call", err)
	}

	// Settled by another holder.
	arrived, release = stallPrepare(t, r)
	req = &backends.PushRequest{Scope: r.scope("moved", "k-settled")}
	answered = pushInBackground(t, r, req)
	waitFor(t, "the push's preparation", arrived)
	const recorded = "recorded by the holder that settled it"
	if err := r.j.Reconciled(t.Context(), entryOf(req).ID, journal.Failed, nil, string(backends.Conflict), recorded); err != nil {
		t.Fatal(err)
	}
	close(release)
	err = waitFor(t, "the push's answer", answered)
	if backends.CategoryOf(err) != backends.Conflict || backends.MessageOf(err) != recorded {
		t.Fatalf("push whose entry was settled answered %v, want the recorded outcome", err)
	}
	if n := env.Remote.Pushes("demo"); n != before {
		t.Fatalf("the remote saw %d pushes, want none", n-before)
	}
}

// TestRetryOfAnUnfinishedCloneClonesAgain: a clone whose process was
// killed before it finished (its entry planned and started, its lease
// gone, no workspace) is run again by the retry with the same key, which
// gets a workspace, instead of an unknown outcome; a further retry
// replays that clone.
func TestRetryOfAnUnfinishedCloneClonesAgain(t *testing.T) {
	env := backendtest.NewEnv(t)
	r := newRig(t, env, &lock.Memory{})
	r.reconfigure(t, func(c *approach2.OnceConfig) { c.WaitForDuplicate = 10 * time.Minute }) // a wait would outlast the test
	clone := func() *backends.CloneRequest {
		return &backends.CloneRequest{Scope: r.scope("unfinished", "k-clone"), URL: env.RepoURL}
	}
	entry := r.leaveStarted(t, clone())
	got := backendtest.Do[*backends.CloneResult](t, r.once, env.Agent, clone())
	if got.Workspace != "unfinished" || got.Head == "" {
		t.Fatalf("the retry of the unfinished clone answered %+v", got)
	}
	backendtest.Do[*backends.StatusResult](t, r.once, env.Agent, &backends.StatusRequest{Scope: r.scope("unfinished", "")})
	if e, err := r.j.Get(t.Context(), entry.ID); err != nil || e.State != journal.Succeeded {
		t.Fatalf("the clone's entry: %+v %v", e, err)
	}
	if again := backendtest.Do[*backends.CloneResult](t, r.once, env.Agent, clone()); again.Head != got.Head {
		t.Fatalf("the second retry answered %+v, want the replay of %+v", again, got)
	}
}

// TestPushLostPartWayWithTheRemoteUnreadableIsSettledForTheRetry: a push
// whose lease was lost while it ran, that ended without git's answer, and
// whose remote could not be read then, answers unavailable (its outcome
// being settled; retry the same call), not an unknown outcome recorded for
// good: the retry with the same key settles it from the remote (it
// landed) and gets that, without pushing again.
func TestPushLostPartWayWithTheRemoteUnreadableIsSettledForTheRetry(t *testing.T) {
	var hook atomic.Pointer[func()]
	env := envWithHook(t, &hook)
	r, locker, loseLock := redisRig(t, env)
	commit := r.commitOn(t, r.once, "cut", "cut", "cut")
	before := env.Remote.Pushes("demo")
	var remoteDown atomic.Bool
	r.reconfigure(t, func(c *approach2.OnceConfig) {
		c.Engine = backends.ExecutorFunc(func(ctx context.Context, req backends.Request) (backends.Result, error) {
			res, err := r.engine.Execute(ctx, req)
			if req.Op() == backends.OpPush && err == nil {
				return nil, backends.Errorf(backends.Timeout, "push took longer than its time limit")
			}
			return res, err
		})
		reach := c.RemoteReach
		c.RemoteReach = func(ctx context.Context, s backends.Scope, url, ref, sha string) (string, bool, error) {
			if remoteDown.Load() {
				return "", false, backends.Errorf(backends.Unavailable, "the remote does not answer")
			}
			return reach(ctx, s, url, ref, sha)
		}
	})
	arrived, release := make(chan struct{}), make(chan struct{})
	hold := func() { close(arrived); <-release }
	hook.Store(&hold)
	remoteDown.Store(true)
	req := &backends.PushRequest{Scope: r.scope("cut", "k-cut")}
	answered := pushInBackground(t, r, req)
	waitFor(t, "the push at the remote", arrived)
	loseLock(lockKey(req), locker.lastLease())
	hook.Store(nil)
	close(release)

	err := waitFor(t, "the push's answer", answered)
	if backends.CategoryOf(err) != backends.Unavailable || errors.Is(err, backends.ErrNotStarted) ||
		!strings.Contains(backends.MessageOf(err), "its outcome is being settled: retry the same call (same idempotency key)") {
		t.Fatalf("push lost part-way with the remote unreadable answered %v, want unavailable, outcome being settled", err)
	}
	remoteDown.Store(false)
	got := backendtest.Do[*backends.PushResult](t, r.once, env.Agent, &backends.PushRequest{Scope: r.scope("cut", "k-cut")})
	if got.Head != commit {
		t.Fatalf("the retry answered %+v, want the push of %s", got, commit)
	}
	if n := env.Remote.Pushes("demo") - before; n != 1 {
		t.Fatalf("the remote saw %d pushes, want 1", n)
	}
	if e := r.recorded(t, req); e.State != journal.Succeeded {
		t.Fatalf("journalled %s (%s: %s), want succeeded", e.State, e.ErrorCategory, e.ErrorMessage)
	}
}

// lostLocker grants leases of its Locker that are lost from the start, as
// a lease whose renewal failed right after its grant.
type lostLocker struct{ lock.Locker }

func (l lostLocker) Acquire(ctx context.Context, key string) (lock.Lease, error) {
	lease, err := l.Locker.Acquire(ctx, key)
	if err != nil {
		return nil, err
	}
	return lostLease{lease}, nil
}

type lostLease struct{ lock.Lease }

func (lostLease) Lost() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// TestCommitWhoseLockWasLostBeforeItRanIsRunByTheRetry: a commit starts
// with its full plan in one statement (no pending window), so when its
// lease is lost before it runs its entry is marked pending again: it
// answers unavailable, nothing done, retry the same call; nothing is
// committed; crash recovery would see that it never ran; the retry with
// the key runs it once, and a further retry replays that.
func TestCommitWhoseLockWasLostBeforeItRanIsRunByTheRetry(t *testing.T) {
	env := backendtest.NewEnv(t)
	memory := &lock.Memory{}
	r := newRig(t, env, memory)
	r.commitOn(t, r.once, "lost", "lost", "first")
	backendtest.Do[*backends.WriteFileResult](t, r.once, env.Agent, &backends.WriteFileRequest{Scope: r.scope("lost", ""), Path: "again.txt", Content: "again"})
	head := func() string {
		lg := backendtest.Do[*backends.LogResult](t, r.once, env.Agent, &backends.LogRequest{Scope: r.scope("lost", ""), Limit: 1})
		return lg.Commits[0].SHA
	}
	before := head()

	req := &backends.CommitRequest{Scope: r.scope("lost", "k-commit-lost"), Message: "after a lost lease"}
	req.Principal = env.Agent
	healthy := r.once
	r.reconfigure(t, func(c *approach2.OnceConfig) { c.Locker = lostLocker{memory} })
	_, err := r.once.Execute(t.Context(), req)
	if backends.CategoryOf(err) != backends.Unavailable || !errors.Is(err, backends.ErrNotStarted) ||
		!strings.Contains(backends.MessageOf(err), "retry the same call (same idempotency key)") {
		t.Fatalf("commit whose lease was lost before it ran answered %v, want unavailable, not started, retry the same call", err)
	}
	if got := head(); got != before {
		t.Fatalf("HEAD moved from %s to %s: the commit ran without its lock", before, got)
	}
	es, err := r.j.Unsettled(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var plan struct {
		Pending bool `json:"pending"`
	}
	var prepared []byte
	for _, e := range es {
		if e.IdempotencyKey == "k-commit-lost" {
			prepared = e.Prepared
		}
	}
	if err := json.Unmarshal(prepared, &plan); err != nil || !plan.Pending {
		t.Fatalf("the entry's plan is %s (%v), want it marked pending again (it never ran)", prepared, err)
	}

	r.once = healthy
	first := backendtest.Do[*backends.CommitResult](t, r.once, env.Agent, req)
	again := backendtest.Do[*backends.CommitResult](t, r.once, env.Agent, req)
	if first.SHA == "" || again.SHA != first.SHA || head() != first.SHA {
		t.Fatalf("the retries committed %s and %s, HEAD %s: want one commit, replayed", first.SHA, again.SHA, head())
	}
}
