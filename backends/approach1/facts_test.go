package approach1_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// pricedProvider is the local provider billed by the second, like E2B,
// with a hook into every command it runs.
type pricedProvider struct {
	*local.Provider
	perSecond float64
	mu        sync.Mutex
	onExec    func(req sandbox.ExecRequest)
}

func (p *pricedProvider) CostPerSecond(string) float64 { return p.perSecond }

func (p *pricedProvider) Exec(ctx context.Context, id string, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	p.mu.Lock()
	hook := p.onExec
	p.mu.Unlock()
	if hook != nil {
		hook(req)
	}
	return p.Provider.Exec(ctx, id, req)
}

func (p *pricedProvider) setOnExec(fn func(req sandbox.ExecRequest)) {
	p.mu.Lock()
	p.onExec = fn
	p.mu.Unlock()
}

// signalLocker tells, once armed, that a caller asked for a lock.
type signalLocker struct {
	lock.Locker
	mu    sync.Mutex
	asked chan struct{} // nil: not armed
}

// arm returns a channel closed at the next Acquire.
func (l *signalLocker) arm() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = make(chan struct{})
	return l.asked
}

func (l *signalLocker) Acquire(ctx context.Context, key string) (lock.Lease, error) {
	l.mu.Lock()
	if l.asked != nil {
		close(l.asked)
		l.asked = nil
	}
	l.mu.Unlock()
	return l.Locker.Acquire(ctx, key)
}

type factsWorld struct {
	env      *backendtest.Env
	ex       *approach1.Executor
	provider *pricedProvider
	bindings sandbox.BindingStore
	locker   *signalLocker
	mem      *lock.Memory
}

func newFactsWorld(t *testing.T) *factsWorld {
	env := backendtest.NewEnv(t)
	dir := t.TempDir()
	lp, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	env.SandboxRoots = append(env.SandboxRoots, dir)
	w := &factsWorld{env: env, provider: &pricedProvider{Provider: lp, perSecond: 1000}, bindings: sandbox.NewMemoryBindings(), mem: &lock.Memory{}}
	w.locker = &signalLocker{Locker: w.mem}
	w.ex = backendtest.NewEngineOn(t, env, w.provider, w.locker, w.bindings)
	return w
}

func (w *factsWorld) writes(t *testing.T, ws string) uint64 {
	t.Helper()
	b, ok, err := w.bindings.Get(t.Context(), sandbox.WorkspaceKey{Project: w.env.Agent.Project, Name: ws})
	if err != nil || !ok {
		t.Fatalf("binding of %s: %v %v", ws, ok, err)
	}
	return b.Writes
}

// TestServedCarriesCostWaitAndReadFrom: every result carries what its
// sandbox commands cost at the provider's price; a read carries the write
// count it read from and the count once it ended, which differ when a
// write lands while it runs; a write that queued for its workspace's lock
// carries that wait, and a read, which takes no lock, none.
func TestServedCarriesCostWaitAndReadFrom(t *testing.T) {
	w := newFactsWorld(t)
	ws := backends.Scope{Workspace: "w"}
	clone := backendtest.Clone(t, w.ex, w.env, w.env.Agent, "w")
	if clone.CostUSD <= 0 {
		t.Fatalf("clone cost %v, want > 0 at %v $/s", clone.CostUSD, w.provider.perSecond)
	}
	if clone.ReadFrom != 0 {
		t.Fatalf("a write carries ReadFrom %d", clone.ReadFrom)
	}

	st := backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: ws})
	if n := w.writes(t, "w"); st.ReadFrom != n || st.WriteSeq != n || n == 0 {
		t.Fatalf("status read from %d, ended at %d; the workspace has %d writes", st.ReadFrom, st.WriteSeq, n)
	}
	if st.CostUSD <= 0 || st.Wait != 0 {
		t.Fatalf("status cost %v, wait %v; want a cost and no wait", st.CostUSD, st.Wait)
	}

	// A write lands while the read's git command runs.
	before := w.writes(t, "w")
	var once sync.Once
	w.provider.setOnExec(func(req sandbox.ExecRequest) {
		if !slices.Contains(req.Args, "status") {
			return
		}
		once.Do(func() {
			backendtest.Do[*backends.WriteFileResult](t, w.ex, w.env.Agent, &backends.WriteFileRequest{Scope: ws, Path: "during.txt", Content: "x"})
		})
	})
	st = backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: ws})
	w.provider.setOnExec(nil)
	if st.ReadFrom != before || st.WriteSeq <= before {
		t.Fatalf("a read overtaken by a write: read from %d, ended at %d; want %d and more", st.ReadFrom, st.WriteSeq, before)
	}

	// A read while a write's git command runs (git has changed the
	// workspace, the write is not over) reads from a count the write has
	// already moved: a shadow of an earlier read that runs then is stale,
	// not a mismatch.
	before = w.writes(t, "w")
	var during *backends.StatusResult
	var once2 sync.Once
	w.provider.setOnExec(func(req sandbox.ExecRequest) {
		if !slices.Contains(req.Args, "commit") {
			return
		}
		once2.Do(func() {
			during = backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: ws})
		})
	})
	backendtest.Do[*backends.CommitResult](t, w.ex, w.env.Agent, &backends.CommitRequest{Scope: ws, Message: "during a read"})
	w.provider.setOnExec(nil)
	if during == nil || during.ReadFrom <= before {
		t.Fatalf("a read during a write's git command read from %v; the write began at %d", during, before)
	}

	// A write queues behind the workspace's lock, held here.
	held, err := w.mem.Acquire(t.Context(), approach1.LockKey(sandbox.WorkspaceKey{Project: w.env.Agent.Project, Name: "w"}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *backends.WriteFileResult, 1)
	asked := w.locker.arm()
	go func() {
		res, err := w.ex.Execute(backendtest.Ctx(t), withPrincipal(&backends.WriteFileRequest{Scope: ws, Path: "queued.txt", Content: "y"}, w.env.Agent))
		if err != nil {
			t.Error(err)
		}
		r, _ := res.(*backends.WriteFileResult)
		done <- r
	}()
	<-asked
	queuedFrom := time.Now()
	// The write waits while the lock is held: a read in the meantime
	// passes (reads take no lock).
	backendtest.Do[*backends.StatusResult](t, w.ex, w.env.Agent, &backends.StatusRequest{Scope: ws})
	queued := time.Since(queuedFrom)
	if err := held.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	wr := <-done
	if wr == nil {
		t.Fatal("the queued write failed")
	}
	// The write's wait began before the lock was asked for and ended after
	// it was released: it spans at least what this test measured between.
	if wr.Wait < queued {
		t.Fatalf("queued write's wait %v, shorter than the %v it was seen queued", wr.Wait, queued)
	}
}

// withPrincipal sets req's principal, as backendtest.Do does.
func withPrincipal(req backends.Request, p backends.Principal) backends.Request {
	req.GetScope().Principal = p
	return req
}
