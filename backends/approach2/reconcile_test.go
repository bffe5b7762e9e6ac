package approach2_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// rig is the service's exactly-once layer over a real engine, a real
// remote and a journal in a fresh PostgreSQL schema.
type rig struct {
	env    *backendtest.Env
	engine *approach1.Executor
	locker lock.Locker
	j      *journal.Journal
	once   *approach2.Once
}

func newRig(t *testing.T, env *backendtest.Env, locker lock.Locker) *rig {
	t.Helper()
	j, err := journal.Open(t.Context(), backendtest.PostgresDSN(t), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	engine := backendtest.NewEngine(t, env, lock.Reentrant(locker), nil)
	once, err := approach2.NewOnce(approach2.OnceConfig{Engine: engine, Locker: locker, Journal: j, LockKey: lockKey, RemoteReach: engine.RemoteReach})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{env: env, engine: engine, locker: locker, j: j, once: once}
}

// reconfigure replaces r.once with one whose configuration change made.
func (r *rig) reconfigure(t *testing.T, change func(*approach2.OnceConfig)) {
	t.Helper()
	cfg := r.once.Config()
	change(&cfg)
	once, err := approach2.NewOnce(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.once = once
}

func (r *rig) scope(ws, key string) backends.Scope {
	return backends.Scope{Principal: r.env.Agent, Workspace: ws, IdempotencyKey: key}
}

// commitOn clones ws (once), puts it on branch and commits a file there;
// it returns the commit.
func (r *rig) commitOn(t *testing.T, ex backends.Executor, ws, branch, content string) string {
	t.Helper()
	a := r.env.Agent
	if _, err := backends.Do[*backends.StatusResult](backendtest.Ctx(t), ex, &backends.StatusRequest{Scope: r.scope(ws, "")}); err != nil {
		backendtest.Clone(t, ex, r.env, a, ws)
		backendtest.Do[*backends.CheckoutResult](t, ex, a, &backends.CheckoutRequest{Scope: r.scope(ws, ""), Branch: branch, Create: true})
	}
	backendtest.Do[*backends.WriteFileResult](t, ex, a, &backends.WriteFileRequest{Scope: r.scope(ws, ""), Path: branch + ".txt", Content: content})
	return backendtest.Do[*backends.CommitResult](t, ex, a, &backends.CommitRequest{Scope: r.scope(ws, ""), Message: content}).SHA
}

// leaveStarted records req in the journal exactly as Once does before
// running it (entry, plan under the workspace lock), and then stops, as a
// process killed there would: the entry stays started.
func (r *rig) leaveStarted(t *testing.T, req backends.Request) journal.Entry {
	t.Helper()
	ctx := backendtest.Ctx(t)
	req.GetScope().Principal = r.env.Agent
	b, err := r.once.Begin(req)
	if err != nil {
		t.Fatal(err)
	}
	key := lockKey(req)
	lease, err := r.locker.Acquire(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lease.Release(ctx) }()
	b.Fence = lease.Fence()
	e, o, err := r.j.Start(ctx, b)
	if err != nil || o != journal.Proceed {
		t.Fatalf("start: %v %v", o, err)
	}
	raw, err := r.once.Prepare(lock.WithLease(ctx, key, lease), req, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.j.SetPrepared(ctx, e.ID, lease.Fence(), raw); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestReconcileSettlesPushesByAncestry: pushes interrupted by a crash are
// settled as what the remote shows, also when the branch moved on since
// (the agent pushed again; someone else pushed), was force-moved, or was
// deleted, and when the workspace itself is gone; a retry with the same key
// replays that and pushes nothing.
func TestReconcileSettlesPushesByAncestry(t *testing.T) {
	env := backendtest.NewEnv(t)
	r := newRig(t, env, &lock.Memory{})
	a := env.Agent
	seed := env.RemoteRef(t, "refs/heads/main")
	push := func(ws, key string) *backends.PushRequest {
		return &backends.PushRequest{Scope: r.scope(ws, key)}
	}
	landed := func(ws string) { // the interrupted push itself, which did reach the remote
		backendtest.Do[*backends.PushResult](t, r.engine, a, push(ws, ""))
	}
	type want struct {
		entry  journal.Entry
		req    *backends.PushRequest
		target string
		state  journal.State
		says   string // in the failure's message
	}
	var cases []want
	add := func(ws, target string, entry journal.Entry, state journal.State, says string, req *backends.PushRequest) {
		cases = append(cases, want{entry, req, target, state, says})
	}

	// Landed, then the agent pushed again: the branch moved on.
	c1 := r.commitOn(t, r.once, "moved", "moved", "first")
	req := push("moved", "k-moved")
	e := r.leaveStarted(t, req)
	landed("moved")
	r.commitOn(t, r.once, "moved", "moved", "second")
	backendtest.Do[*backends.PushResult](t, r.once, a, push("moved", "k-moved-2"))
	add("moved", c1, e, journal.Succeeded, "", req)

	// Landed, then someone else pushed on top.
	c2 := r.commitOn(t, r.once, "theirs", "theirs", "mine")
	req = push("theirs", "k-theirs")
	e = r.leaveStarted(t, req)
	landed("theirs")
	if _, err := env.Remote.CommitFile(t.Context(), "demo", "theirs", "other.txt", "theirs", "someone else"); err != nil {
		t.Fatal(err)
	}
	add("theirs", c2, e, journal.Succeeded, "", req)

	// Landed exactly.
	c3 := r.commitOn(t, r.once, "exact", "exact", "exact")
	req = push("exact", "k-exact")
	e = r.leaveStarted(t, req)
	landed("exact")
	add("exact", c3, e, journal.Succeeded, "", req)

	// Landed, moved on, and then the workspace was released: the remote is
	// read from a scratch repository.
	c4 := r.commitOn(t, r.once, "gone", "gone", "gone")
	req = push("gone", "k-gone")
	e = r.leaveStarted(t, req)
	landed("gone")
	r.commitOn(t, r.once, "gone", "gone", "gone again")
	landed("gone")
	backendtest.Do[*backends.ReleaseWorkspaceResult](t, r.once, a, &backends.ReleaseWorkspaceRequest{Scope: r.scope("gone", "")})
	add("gone", c4, e, journal.Succeeded, "", req)

	// Landed, then the branch was force-moved back: not on the remote now.
	c5 := r.commitOn(t, r.once, "forced", "forced", "forced")
	req = push("forced", "k-forced")
	e = r.leaveStarted(t, req)
	landed("forced")
	env.RemoteGit(t, "update-ref", "refs/heads/forced", seed)
	add("forced", c5, e, journal.Failed, "force-moved", req)

	// Landed, then the branch was deleted.
	c6 := r.commitOn(t, r.once, "deleted", "deleted", "deleted")
	req = push("deleted", "k-deleted")
	e = r.leaveStarted(t, req)
	landed("deleted")
	env.RemoteGit(t, "update-ref", "-d", "refs/heads/deleted")
	add("deleted", c6, e, journal.Failed, "no branch", req)

	// Never reached the remote.
	c7 := r.commitOn(t, r.once, "never", "never", "never")
	req = push("never", "k-never")
	e = r.leaveStarted(t, req)
	add("never", c7, e, journal.Failed, "no branch", req)

	n, err := approach2.Reconcile(backendtest.Ctx(t), approach2.ReconcileConfig{Journal: r.j, Locker: r.locker, RemoteReach: r.engine.RemoteReach})
	if err != nil || n != len(cases) {
		t.Fatalf("reconciled %d of %d: %v", n, len(cases), err)
	}
	pushes := env.Remote.Pushes("demo")
	for _, c := range cases {
		got, err := r.j.Get(t.Context(), c.entry.ID)
		if err != nil {
			t.Fatal(err)
		}
		ws := c.req.Workspace
		if got.State != c.state || !got.Reconciled || !strings.Contains(got.ErrorMessage, c.says) {
			t.Errorf("%s: settled %s (%s: %s), want %s saying %q", ws, got.State, got.ErrorCategory, got.ErrorMessage, c.state, c.says)
			continue
		}
		res, err := r.once.Execute(backendtest.Ctx(t), c.req) // the retry with the same key
		switch c.state {
		case journal.Succeeded:
			if p, _ := res.(*backends.PushResult); err != nil || p.Head != c.target || p.Branch != ws {
				t.Errorf("%s: retry got %+v, %v; want the push of %s", ws, res, err, c.target)
			}
		default:
			if backends.CategoryOf(err) != backends.Conflict || backends.MessageOf(err) != got.ErrorMessage {
				t.Errorf("%s: retry got %v, want the recorded %s", ws, err, got.ErrorMessage)
			}
		}
	}
	if after := env.Remote.Pushes("demo"); after != pushes {
		t.Errorf("the retries pushed %d times", after-pushes)
	}
}

// blockingReach wraps a approach2.RemoteReachFunc: every call waits until release is
// closed, after announcing itself on calls.
func blockingReach(inner approach2.RemoteReachFunc, calls chan<- string, release <-chan struct{}) approach2.RemoteReachFunc {
	return func(ctx context.Context, s backends.Scope, url, ref, commit string) (string, bool, error) {
		calls <- s.Workspace
		select {
		case <-release:
		case <-ctx.Done():
			return "", false, ctx.Err()
		}
		return inner(ctx, s, url, ref, commit)
	}
}

// TestRecoveryServesAtOnceAndSettlesInParallel: while interrupted entries
// are being settled (their remote checks held), writes to other workspaces
// are served, a write to an affected workspace waits until its entry is
// settled, and the entries' remote checks run at the same time.
func TestRecoveryServesAtOnceAndSettlesInParallel(t *testing.T) {
	env := backendtest.NewEnv(t)
	r := newRig(t, env, &lock.Memory{})
	a := env.Agent
	const affected = 4
	var entries []journal.Entry
	var reqs []*backends.PushRequest
	for i := range affected {
		ws := "affected-" + string(rune('a'+i))
		r.commitOn(t, r.once, ws, ws, ws)
		req := &backends.PushRequest{Scope: r.scope(ws, "k-"+ws)}
		entries = append(entries, r.leaveStarted(t, req))
		reqs = append(reqs, req)
	}
	r.commitOn(t, r.once, "free", "free", "free")

	calls, release := make(chan string, affected), make(chan struct{})
	rec := approach2.NewRecovery(approach2.ReconcileConfig{Journal: r.j, Locker: r.locker, Parallel: affected,
		RemoteReach: blockingReach(r.engine.RemoteReach, calls, release)})
	r.reconfigure(t, func(c *approach2.OnceConfig) { c.Recovery = rec })
	if err := rec.Wait(t.Context(), lockKey(reqs[0])); err != nil { // not started: nothing waits
		t.Fatal(err)
	}
	rec.Start(backendtest.Ctx(t))

	// Every entry's check is in flight at once: they run in parallel.
	for range affected {
		select {
		case <-calls:
		case <-time.After(30 * time.Second):
			t.Fatal("the entries' remote checks did not all start together")
		}
	}
	// Another workspace is served meanwhile, reads and writes.
	backendtest.Do[*backends.StatusResult](t, r.once, a, &backends.StatusRequest{Scope: r.scope("free", "")})
	r.commitOn(t, r.once, "free", "free", "served during recovery")
	if rec.Unsettled() != affected {
		t.Fatalf("%d entries left to settle while another workspace was served, want %d", rec.Unsettled(), affected)
	}
	// A write to an affected workspace gives up while its entry is open,
	// without having started...
	short, cancel := context.WithTimeout(backendtest.Ctx(t), 200*time.Millisecond)
	_, err := r.once.Execute(short, &backends.WriteFileRequest{Scope: r.scope("affected-a", ""), Path: "x", Content: "x"})
	cancel()
	if backends.CategoryOf(err) != backends.Timeout || !errors.Is(err, backends.ErrNotStarted) {
		t.Fatalf("write to an affected workspace during recovery: %v", err)
	}
	// ...and, with time to wait, runs once its entry is settled; the
	// same-key retry of the interrupted push replays the settled outcome.
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			res, err := r.once.Execute(backendtest.Ctx(t), req)
			got, gerr := r.j.Get(context.Background(), entries[i].ID)
			if gerr != nil || got.State == journal.Started {
				t.Errorf("%s: the retry returned (%v, %v) before its entry was settled (%v)", req.Workspace, res, err, gerr)
			}
		})
	}
	close(release)
	wg.Wait()
	if rec.Unsettled() != 0 {
		t.Fatalf("%d entries left to settle", rec.Unsettled())
	}
}
