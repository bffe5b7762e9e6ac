package approach2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
)

// plan is what a journal entry records before its write runs, so that a
// later process can settle it without the one that started it.
type plan struct {
	LockKey string             `json:"lock_key"`
	Agent   backends.Principal `json:"agent"`
	URL     string             `json:"url,omitempty"`    // push: the workspace's repository
	Branch  string             `json:"branch,omitempty"` // push: the branch pushed
	Target  string             `json:"target,omitempty"` // push: the commit pushed
	// Pending marks the plan recorded when the entry starts: the write has
	// not run yet. The full plan, recorded before it runs, has no mark.
	Pending bool `json:"pending,omitempty"`
}

// pending reports whether e's write never ran: its plan is still the one
// recorded at its start.
func pending(e journal.Entry) bool {
	var p plan
	return json.Unmarshal(e.Prepared, &p) == nil && p.Pending
}

// prepare describes req for recovery. For a push it reads, under the
// workspace lock, the branch and commit about to be pushed and the URL.
func (o *Once) prepare(ctx context.Context, req backends.Request, lockKey string) (plan, []byte, error) {
	s := req.GetScope()
	p := plan{LockKey: lockKey, Agent: s.Principal}
	if push, ok := req.(*backends.PushRequest); ok {
		if err := o.preparePush(ctx, push, &p); err != nil {
			return p, nil, err
		}
	}
	raw, err := json.Marshal(p)
	return p, raw, err
}

func (o *Once) preparePush(ctx context.Context, push *backends.PushRequest, p *plan) error {
	s := push.Scope
	br, err := backends.Do[*backends.BranchesResult](ctx, o.cfg.Engine, &backends.BranchesRequest{Scope: backends.Scope{Principal: s.Principal, Workspace: s.Workspace}})
	if err != nil {
		return err
	}
	p.Branch = push.Branch
	if p.Branch == "" {
		p.Branch = br.Current
	}
	for _, b := range br.Branches {
		if !b.Remote && b.Name == p.Branch {
			p.Target = b.Head
		}
	}
	list := &backends.ListWorkspacesRequest{}
	list.GetScope().Principal = s.Principal
	ws, err := backends.Do[*backends.ListWorkspacesResult](ctx, o.cfg.Engine, list)
	if err != nil {
		return err
	}
	for _, w := range ws.Workspaces {
		if w.Name == s.Workspace {
			p.URL = w.URL
		}
	}
	return nil
}

// RemoteReachFunc tells what the remote at url shows of commit on ref, seen
// from the workspace s names: the ref's tip ("" when the ref does not
// exist) and whether commit is that tip or one of its ancestors. The
// engine's (*approach1.Executor).RemoteReach is one.
type RemoteReachFunc func(ctx context.Context, s backends.Scope, url, ref, commit string) (tip string, contains bool, err error)

// ReconcileConfig configures Reconcile and Recovery.
type ReconcileConfig struct {
	Journal     journal.Store   // required
	Locker      lock.Locker     // required: the workspace locks
	RemoteReach RemoteReachFunc // required
	// Engine, if set, tells whether an interrupted clone (or fork) left a
	// workspace (see cloneUnfinished): one that did not is settled as
	// failed (not_found: do it again), not as unknown. The engine must lock
	// through lock.Reentrant(Locker).
	Engine backends.Executor
	// LockWait bounds the wait for a workspace lock; an entry whose lock
	// stays held belongs to a live process and is left to it. Make it
	// longer than the lock TTL, so that the lease of a holder that died
	// expires during the wait. Default 2 s.
	LockWait time.Duration
	// Parallel is how many entries are settled at once. Default 8.
	Parallel int
	Logger   *slog.Logger
}

func (cfg ReconcileConfig) withDefaults() ReconcileConfig {
	if cfg.LockWait <= 0 {
		cfg.LockWait = 2 * time.Second
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// Reconcile settles the journal entries left started by processes that
// died, instead of repeating them, up to cfg.Parallel at a time: a push is
// settled by what the remote shows (see settlePush); a clone that left no
// workspace (with cfg.Engine), as failed: clone again; a write that never
// ran (its plan still pending), as failed: nothing changed (these two only
// after planTimeout, left to the caller's retry with the key until then,
// which runs them again); any other write, as unknown. It returns how
// many it settled. An entry whose workspace lock stays held (a live
// holder) or whose remote does not answer is left for a later pass.
func Reconcile(ctx context.Context, cfg ReconcileConfig) (int, error) {
	cfg = cfg.withDefaults()
	entries, err := cfg.Journal.Unsettled(ctx, 0)
	if err != nil {
		return 0, err
	}
	return settleAll(ctx, cfg, entries, func(journal.Entry) {}), nil
}

// settleAll reconciles entries, cfg.Parallel at a time, calls done after
// each attempt and returns how many were settled.
func settleAll(ctx context.Context, cfg ReconcileConfig, entries []journal.Entry, done func(journal.Entry)) int {
	var (
		mu sync.Mutex
		n  int
		wg sync.WaitGroup
	)
	slots := make(chan struct{}, cfg.Parallel)
	for _, e := range entries {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			settled := reconcileOne(ctx, cfg, e)
			done(e)
			if settled {
				mu.Lock()
				n++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return n
}

// Recovery settles, in the background, what crashed processes left
// started, while the service serves: only writes to the workspaces of those
// entries wait for them (Wait), each until its entries were settled or found
// to belong to a live holder.
type Recovery struct {
	cfg     ReconcileConfig
	started atomic.Bool

	listed chan struct{} // closed once the start pass has listed its entries

	mu      sync.Mutex
	pending map[string]int           // workspace lock key → entries still to settle
	settled map[string]chan struct{} // closed when pending[key] drops to 0
	busy    map[int64]bool           // entries being reconciled now → whether writes wait for them
}

// NewRecovery returns a Recovery; Start begins its work.
func NewRecovery(cfg ReconcileConfig) *Recovery {
	return &Recovery{cfg: cfg.withDefaults(), listed: make(chan struct{}),
		pending: map[string]int{}, settled: map[string]chan struct{}{}, busy: map[int64]bool{}}
}

// Start lists the entries left started and settles them in the background;
// it returns at once. Until the list is read, every write waits for it (one
// query); then only writes to the listed entries' workspaces wait. If the
// list cannot be read, nothing waits and the next Pass tries again. Only
// the first call does anything; before it, nothing waits.
func (r *Recovery) Start(ctx context.Context) {
	if !r.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		entries, err := r.cfg.Journal.Unsettled(ctx, 0)
		if err != nil {
			r.cfg.Logger.Warn("journal reconciliation could not list interrupted operations; will retry", "err", err)
			close(r.listed)
			return
		}
		entries = r.claim(entries, true)
		close(r.listed)
		began := time.Now()
		n := settleAll(ctx, r.cfg, entries, r.release)
		if len(entries) > 0 {
			r.cfg.Logger.Info("journal reconciled interrupted operations", "found", len(entries), "settled", n,
				"seconds", time.Since(began).Seconds())
		}
	}()
}

// Pass is one more reconciliation pass over every entry still started
// (those being reconciled already excepted), run without making writes
// wait: it finds the entries of holders that died after Start. It returns
// how many it settled.
func (r *Recovery) Pass(ctx context.Context) (int, error) {
	entries, err := r.cfg.Journal.Unsettled(ctx, 0)
	if err != nil {
		return 0, err
	}
	entries = r.claim(entries, false)
	return settleAll(ctx, r.cfg, entries, r.release), nil
}

// claim marks entries as being reconciled and drops those already being
// reconciled; with gate, writes to their workspaces wait until release.
func (r *Recovery) claim(entries []journal.Entry, gate bool) []journal.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var mine []journal.Entry
	for _, e := range entries {
		if _, ok := r.busy[e.ID]; ok {
			continue
		}
		mine = append(mine, e)
		key := lockKeyOf(e)
		r.busy[e.ID] = gate && key != ""
		if r.busy[e.ID] {
			if r.pending[key] == 0 {
				r.settled[key] = make(chan struct{})
			}
			r.pending[key]++
		}
	}
	return mine
}

// release ends the reconciliation attempt of e.
func (r *Recovery) release(e journal.Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	gated := r.busy[e.ID]
	delete(r.busy, e.ID)
	key := lockKeyOf(e)
	if !gated || r.pending[key] == 0 {
		return
	}
	if r.pending[key]--; r.pending[key] == 0 {
		close(r.settled[key])
		delete(r.pending, key)
		delete(r.settled, key)
	}
}

// Wait returns once no entry the start pass found for the workspace lock
// key is left to reconcile, or when ctx ends (a timeout or unavailable
// error that says the write never started).
func (r *Recovery) Wait(ctx context.Context, lockKey string) error {
	if !r.started.Load() {
		return nil
	}
	select {
	case <-r.listed:
	case <-ctx.Done():
		return waitErr(ctx)
	}
	r.mu.Lock()
	ch := r.settled[lockKey]
	r.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return waitErr(ctx)
	}
}

// Unsettled reports how many entries of the start pass are still being
// reconciled (writes to their workspaces wait for them).
func (r *Recovery) Unsettled() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.pending {
		n += c
	}
	return n
}

func waitErr(ctx context.Context) error {
	cat := backends.Unavailable
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		cat = backends.Timeout
	}
	return backends.NotStarted(backends.Errorf(cat,
		"an operation on this workspace interrupted by a restart of the service is still being settled; nothing was changed, retry shortly: %w", ctx.Err()))
}

// lockKeyOf is the workspace lock key an entry's plan records ("" if none).
func lockKeyOf(e journal.Entry) string {
	var p plan
	if json.Unmarshal(e.Prepared, &p) != nil {
		return ""
	}
	return p.LockKey
}

func reconcileOne(ctx context.Context, cfg ReconcileConfig, e journal.Entry) bool {
	var p plan
	if err := json.Unmarshal(e.Prepared, &p); err != nil || p.LockKey == "" {
		return settleUnplanned(ctx, cfg, e)
	}
	lockCtx, cancel := context.WithTimeout(ctx, cfg.LockWait)
	lease, err := cfg.Locker.Acquire(lockCtx, p.LockKey)
	cancel()
	if err != nil {
		return false // a live process holds the workspace: the entry is its own
	}
	defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
	return settleHeld(ctx, cfg, e, p, lease)
}

// settleHeld settles the planned entry e under lease, a grant of its
// workspace lock held now: its holder no longer holds the lock, so it died
// (or lost its lease). It returns whether e was settled here.
func settleHeld(ctx context.Context, cfg ReconcileConfig, e journal.Entry, p plan, lease lock.Lease) bool {
	cur, err := cfg.Journal.Get(ctx, e.ID)
	if err != nil || cur.State != journal.Started {
		return false
	}
	if pending(cur) {
		return settleNeverRan(ctx, cfg, cur, lease)
	}
	if err := json.Unmarshal(cur.Prepared, &p); err != nil { // its full plan may be newer than the listed one
		return false
	}
	o := outcome{journal.Unknown, nil, string(backends.Conflict), interruptedMessage}
	if cloneUnfinished(lock.WithLease(ctx, p.LockKey, lease), cfg.Engine, cur) {
		if time.Since(cur.UpdatedAt) < planTimeout {
			return false // left a while for the caller's retry with the key, which clones again
		}
		o = outcome{journal.Failed, nil, string(backends.NotFound), fmt.Sprintf(
			"the %s into workspace %q did not finish (the process running it stopped); nothing was kept: do it again with a new idempotency key (this one keeps this answer)", e.Op, cur.Workspace)}
	}
	if backends.Op(e.Op).Settle() == backends.SettleByRemote && p.Target != "" && p.URL != "" {
		var err error
		o, err = settlePush(lock.WithLease(ctx, p.LockKey, lease), cfg.RemoteReach, e, p, "the service stopped while the push ran")
		if err != nil {
			cfg.Logger.Warn("remote not reachable for reconciliation; will retry", "entry", e.ID, "err", err)
			return false
		}
	}
	if err := cfg.Journal.Reconciled(ctx, e.ID, o.state, o.result, o.category, o.message); err != nil {
		cfg.Logger.Warn("journal entry not reconciled", "entry", e.ID, "err", err)
		return false
	}
	cfg.Logger.Info("journal entry reconciled", "entry", e.ID, "op", e.Op, "state", o.state)
	return true
}

// planTimeout is how long a live holder can take between starting an entry
// and recording its plan; an entry older than that without a plan was left
// by a process that died before running anything. An entry whose holder
// lost its lease before running it (its plan pending) is left that long
// for the caller's retry with the key, which runs it.
const planTimeout = time.Minute

// neverRanMessage is the recorded outcome of a write whose holder died or
// lost its workspace lease before it ran.
const neverRanMessage = "it was interrupted before it ran (the process running it stopped, or lost its workspace lock); nothing was changed: " +
	"do it again with a new idempotency key (this one keeps this answer)"

// cloneUnfinished reports whether e is a clone (or another write that
// creates its workspace, backends.OpInfo.CreatesWorkspace) that left no
// workspace: a
// status of it through engine (under the workspace lease ctx carries)
// answers not_found; the engine removes a workspace whose clone did not
// finish. Without an engine it is false.
func cloneUnfinished(ctx context.Context, engine backends.Executor, e journal.Entry) bool {
	var p plan
	if engine == nil || !backends.Op(e.Op).CreatesWorkspace() || json.Unmarshal(e.Prepared, &p) != nil {
		return false
	}
	_, err := engine.Execute(ctx, &backends.StatusRequest{Scope: backends.Scope{Principal: p.Agent, Workspace: e.Workspace}})
	return backends.CategoryOf(err) == backends.NotFound
}

// settleNeverRan settles the pending entry e, held under lease, as failed
// (unavailable, nothing changed) once it has waited planTimeout for a
// retry. It is taken over first, so that its holder, if alive, can no
// longer record its plan and run it; if it did so just before, the entry
// is left to the next pass.
func settleNeverRan(ctx context.Context, cfg ReconcileConfig, e journal.Entry, lease lock.Lease) bool {
	if time.Since(e.UpdatedAt) < planTimeout {
		return false
	}
	if err := cfg.Journal.Takeover(ctx, e.ID, lease.Fence()); err != nil {
		return false
	}
	if cur, err := cfg.Journal.Get(ctx, e.ID); err != nil || !pending(cur) {
		return false
	}
	if err := cfg.Journal.Settle(ctx, e.ID, lease.Fence(), journal.Failed, nil, string(backends.Unavailable), neverRanMessage); err != nil {
		cfg.Logger.Warn("journal entry not reconciled", "entry", e.ID, "err", err)
		return false
	}
	cfg.Logger.Info("journal entry reconciled", "entry", e.ID, "op", e.Op, "state", journal.Failed, "never_ran", true)
	return true
}

// settleUnplanned settles an entry whose process died before recording a
// plan, and so before running the write.
func settleUnplanned(ctx context.Context, cfg ReconcileConfig, e journal.Entry) bool {
	if time.Since(e.UpdatedAt) < planTimeout {
		return false
	}
	err := cfg.Journal.Reconciled(ctx, e.ID, journal.Failed, nil, string(backends.Unavailable), "interrupted before it ran; nothing was changed")
	return err == nil
}

// outcome is how an entry is settled.
type outcome struct {
	state    journal.State
	result   []byte
	category string
	message  string
}

// settlePush decides the outcome of a push nobody saw end (why says what
// interrupted it) from what the remote shows now, by ancestry:
//
//   - The planned commit is reachable from the remote branch: the push
//     landed (even if the branch moved on since, by this agent or anyone):
//     succeeded, with the result a push of that commit returns.
//   - The branch exists but does not contain the commit: either the push
//     never reached the remote, or it did and the branch was force-moved
//     since (nobody can tell the two apart from the remote). Either way the
//     commit is not on the remote now: failed (conflict), saying so and that
//     the next step is to pull and push again with a new key.
//   - The branch does not exist: the push never created it, or it was
//     deleted since; the commit is not on the remote under that branch:
//     failed (conflict), push again with a new key.
//
// A push still in flight when this runs (one whose holder lost its lock,
// or an orphaned git of a crashed process) may land afterwards; the message
// says what the remote showed at the time, and pushing again is harmless.
// An error means the remote could not be asked: try again later.
func settlePush(ctx context.Context, reach RemoteReachFunc, e journal.Entry, p plan, why string) (outcome, error) {
	if reach == nil {
		return outcome{}, backends.Errorf(backends.Internal, "no way to read the remote is configured")
	}
	ref := "refs/heads/" + p.Branch
	s := backends.Scope{Principal: p.Agent, Workspace: e.Workspace}
	tip, contains, err := reach(ctx, s, p.URL, ref, p.Target)
	if err != nil {
		return outcome{}, err
	}
	if contains {
		result, _ := json.Marshal(backends.PushResult{Branch: p.Branch, RemoteRef: ref, Head: p.Target})
		return outcome{state: journal.Succeeded, result: result}, nil
	}
	msg := fmt.Sprintf("%s; the remote has no branch %q now, so commit %s is not on the remote under it (the push did not land, or the branch was deleted since): push again with a new idempotency key if it should be there",
		why, p.Branch, short(p.Target))
	if tip != "" {
		msg = fmt.Sprintf("%s; the remote branch %q is at %s, which does not contain commit %s (the push did not land, or the branch was force-moved since): the commit is not on the remote now; pull, then push again with a new idempotency key if it should be there",
			why, p.Branch, short(tip), short(p.Target))
	}
	return outcome{state: journal.Failed, category: string(backends.Conflict), message: msg}, nil
}

func short(sha string) string { return sha[:min(len(sha), 12)] }
