package approach2_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/gitremote"
)

// envWithHook is backendtest.NewEnv whose remote calls the hook (when set)
// as a push's pack arrives, before the refs are updated.
func envWithHook(t *testing.T, hook *atomic.Pointer[func()]) *backendtest.Env {
	t.Helper()
	env := backendtest.NewEnv(t)
	root := t.TempDir()
	srv, err := gitremote.New(gitremote.Config{Root: root, Username: "x-access-token", Token: backendtest.Token, ReadToken: backendtest.ReadToken,
		BeforeReceivePack: func(string) {
			if h := hook.Load(); h != nil {
				(*h)()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := srv.CreateRepo(t.Context(), "demo", backendtest.SeedFiles); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL())
	env.Remote, env.RemoteFS, env.RepoURL = srv, root, srv.RepoURL("demo")
	env.Project.Hosts, env.StrangerProject.Hosts = []string{u.Host}, []string{u.Host}
	return env
}

// recordingLocker remembers the last lease it granted.
type recordingLocker struct {
	lock.Locker
	mu   sync.Mutex
	last lock.Lease
}

func (l *recordingLocker) Acquire(ctx context.Context, key string) (lock.Lease, error) {
	le, err := l.Locker.Acquire(ctx, key)
	if err == nil {
		l.mu.Lock()
		l.last = le
		l.mu.Unlock()
	}
	return le, err
}

func (l *recordingLocker) lastLease() lock.Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// redisRig is a rig whose workspace locks are in Redis with a 1 s TTL;
// loseLock deletes a workspace's lock key, as its expiry or a Redis restart
// would, and waits until the holder's lease knows it is lost.
func redisRig(t *testing.T, env *backendtest.Env) (*rig, *recordingLocker, func(lockKey string, lease lock.Lease)) {
	rdb := backendtest.Redis(t)
	prefix := backendtest.RedisPrefix(t, rdb)
	locker := &recordingLocker{Locker: redislock.New(rdb, redislock.Options{TTL: time.Second, Prefix: prefix})}
	r := newRig(t, env, locker)
	loseLock := func(lockKey string, lease lock.Lease) {
		t.Helper()
		if err := rdb.Del(t.Context(), prefix+"lock:"+lockKey).Err(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-lease.Lost():
		case <-time.After(30 * time.Second):
			t.Fatal("the holder never noticed that its lock was lost")
		}
	}
	return r, locker, loseLock
}

// recorded returns the journal entry of req (which must be settled).
func (r *rig) recorded(t *testing.T, req backends.Request) journal.Entry {
	t.Helper()
	b, err := r.once.Begin(req)
	if err != nil {
		t.Fatal(err)
	}
	e, o, err := r.j.Start(t.Context(), b)
	if err != nil || o != journal.Replay {
		t.Fatalf("the journal entry of %s: %v %v (want a settled entry)", req.Op(), o, err)
	}
	return e
}

// TestPushWhoseLockWasLostIsJournalledAsItLanded: a holder loses its Redis
// lock while its push is in flight, and a successor takes the lock; the
// push still lands. The journal records it as succeeded, the retry with
// the same key replays that, and the remote saw exactly one push.
func TestPushWhoseLockWasLostIsJournalledAsItLanded(t *testing.T) {
	var hook atomic.Pointer[func()]
	env := envWithHook(t, &hook)
	r, locker, loseLock := redisRig(t, env)
	a := env.Agent
	commit := r.commitOn(t, r.once, "lost", "lost", "lost")
	before := env.Remote.Pushes("demo")

	arrived, release := make(chan struct{}), make(chan struct{})
	hold := func() { close(arrived); <-release }
	hook.Store(&hold)
	req := &backends.PushRequest{Scope: r.scope("lost", "k-lost")}
	req.Principal = a
	type answer struct {
		res backends.Result
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := r.once.Execute(context.WithoutCancel(t.Context()), req)
		answered <- answer{res, err}
	}()
	select {
	case <-arrived:
	case <-time.After(60 * time.Second):
		t.Fatal("the push never reached the remote")
	}
	key := lockKey(req)
	loseLock(key, locker.lastLease())
	successor, err := r.locker.Acquire(backendtest.Ctx(t), key) // another holder takes the workspace
	if err != nil {
		t.Fatal(err)
	}
	hook.Store(nil)
	close(release) // the push lands

	var got answer
	select {
	case got = <-answered:
	case <-time.After(60 * time.Second):
		t.Fatal("the push never answered")
	}
	if p, _ := got.res.(*backends.PushResult); got.err != nil || p.Head != commit {
		t.Fatalf("push whose lock was lost answered %+v, %v; want the push of %s", got.res, got.err, commit)
	}
	if tip := env.RemoteRef(t, "refs/heads/lost"); tip != commit {
		t.Fatalf("remote branch at %s, want %s", tip, commit)
	}
	_ = successor.Release(t.Context())
	if e := r.recorded(t, req); e.State != journal.Succeeded {
		t.Fatalf("journalled %s (%s: %s), want succeeded", e.State, e.ErrorCategory, e.ErrorMessage)
	}
	retry := backendtest.Do[*backends.PushResult](t, r.once, a, req)
	if retry.Head != commit {
		t.Fatalf("the retry replayed %+v", retry)
	}
	if n := env.Remote.Pushes("demo") - before; n != 1 {
		t.Fatalf("the remote saw %d pushes, want 1", n)
	}
}

// TestWriteStoppedByALostLockIsUnknown: any other write is stopped when
// its lock is lost; what it did is not provable, so it is journalled as
// unknown (never as a failure that says nothing happened), and the retry
// with the same key replays that.
func TestWriteStoppedByALostLockIsUnknown(t *testing.T) {
	var hook atomic.Pointer[func()]
	env := envWithHook(t, &hook)
	r, locker, loseLock := redisRig(t, env)
	r.commitOn(t, r.once, "stopped", "stopped", "before")
	started := make(chan struct{})
	// A commit that is still running when its context is cancelled, as a
	// git stopped part-way.
	r.reconfigure(t, func(c *approach2.OnceConfig) {
		c.Engine = backends.ExecutorFunc(func(ctx context.Context, req backends.Request) (backends.Result, error) {
			if req.Op() != backends.OpCommit {
				return r.engine.Execute(ctx, req)
			}
			close(started)
			<-ctx.Done()
			return nil, backends.Errorf(backends.Unavailable, "the operation was cancelled: %w", ctx.Err())
		})
	})
	backendtest.Do[*backends.WriteFileResult](t, r.once, env.Agent, &backends.WriteFileRequest{Scope: r.scope("stopped", ""), Path: "s.txt", Content: "s"})
	req := &backends.CommitRequest{Scope: r.scope("stopped", "k-stopped"), Message: "stopped"}
	req.Principal = env.Agent
	answered := make(chan error, 1)
	go func() {
		_, err := r.once.Execute(context.WithoutCancel(t.Context()), req)
		answered <- err
	}()
	<-started
	loseLock(lockKey(req), locker.lastLease())
	var err error
	select {
	case err = <-answered:
	case <-time.After(60 * time.Second):
		t.Fatal("the stopped commit never answered")
	}
	if backends.CategoryOf(err) != backends.Conflict || errors.Is(err, backends.ErrNotStarted) {
		t.Fatalf("commit stopped by a lost lock answered %v, want an unknown outcome (conflict)", err)
	}
	// The answer says why and what to do, without assuming the agent sent
	// a key (the load of an end-to-end test sends none).
	if msg := backends.MessageOf(err); !strings.Contains(msg, "commit is unknown: the workspace lock was lost while it ran") ||
		!strings.Contains(msg, "check the workspace (status, log)") || strings.Contains(msg, "earlier") {
		t.Fatalf("the unknown outcome says %q", msg)
	}
	if e := r.recorded(t, req); e.State != journal.Unknown {
		t.Fatalf("journalled %s (%s: %s), want unknown", e.State, e.ErrorCategory, e.ErrorMessage)
	}
	again := backendtest.Fail(t, r.once, env.Agent, req)
	if backends.MessageOf(again) != backends.MessageOf(err) {
		t.Fatalf("the retry replayed %v, want %v", again, err)
	}
}

// TestPushThatTimedOutAfterLandingIsJournalledAsLanded: a push whose git
// was stopped by its time limit after the remote had taken it is settled
// by what the remote shows: succeeded, and the retry replays that.
func TestPushThatTimedOutAfterLandingIsJournalledAsLanded(t *testing.T) {
	env := backendtest.NewEnv(t)
	r := newRig(t, env, &lock.Memory{})
	r.reconfigure(t, func(c *approach2.OnceConfig) {
		c.Engine = backends.ExecutorFunc(func(ctx context.Context, req backends.Request) (backends.Result, error) {
			res, err := r.engine.Execute(ctx, req)
			if req.Op() == backends.OpPush && err == nil {
				return nil, backends.Errorf(backends.Timeout, "push took longer than its time limit")
			}
			return res, err
		})
	})
	commit := r.commitOn(t, r.once, "slow", "slow", "slow")
	req := &backends.PushRequest{Scope: r.scope("slow", "k-slow")}
	p := backendtest.Do[*backends.PushResult](t, r.once, env.Agent, req)
	if p.Head != commit {
		t.Fatalf("push answered %+v, want the push of %s", p, commit)
	}
	if e := r.recorded(t, req); e.State != journal.Succeeded {
		t.Fatalf("journalled %s (%s: %s), want succeeded", e.State, e.ErrorCategory, e.ErrorMessage)
	}
	if retry := backendtest.Do[*backends.PushResult](t, r.once, env.Agent, req); retry.Head != commit {
		t.Fatalf("the retry replayed %+v", retry)
	}
	if n := env.Remote.Pushes("demo"); n != 1 {
		t.Fatalf("the remote saw %d pushes, want 1", n)
	}
}
