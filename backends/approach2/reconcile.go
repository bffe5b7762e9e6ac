package approach2

import (
	"context"
	"encoding/json"
	"log/slog"
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
}

// prepare describes req for recovery. For a push it reads, under the
// workspace lock, the branch and commit about to be pushed and the URL.
func (o *Once) prepare(ctx context.Context, req backends.Request, lockKey string) ([]byte, error) {
	s := req.GetScope()
	p := plan{LockKey: lockKey, Agent: s.Principal}
	if push, ok := req.(*backends.PushRequest); ok {
		if err := o.preparePush(ctx, push, &p); err != nil {
			return nil, err
		}
	}
	return json.Marshal(p)
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

// RemoteRefFunc returns the commit a ref points to on a project's remote.
type RemoteRefFunc func(ctx context.Context, p backends.Principal, url, ref string) (string, error)

// ReconcileConfig configures Reconcile.
type ReconcileConfig struct {
	Journal   journal.Store // required
	Locker    lock.Locker   // required: the workspace locks
	RemoteRef RemoteRefFunc // required
	// LockWait bounds the wait for a workspace lock; an entry whose lock
	// stays held belongs to a live process and is left to it. Default 2 s.
	LockWait time.Duration
	Logger   *slog.Logger
}

// Reconcile settles the journal entries left started by processes that
// died, instead of repeating them: a push is checked against the remote's
// refs (succeeded when the remote has the commit, failed when it does not);
// any other write is settled as unknown. It returns how many it settled.
func Reconcile(ctx context.Context, cfg ReconcileConfig) (int, error) {
	if cfg.LockWait <= 0 {
		cfg.LockWait = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	entries, err := cfg.Journal.Unsettled(ctx, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if reconcileOne(ctx, cfg, e) {
			n++
		}
	}
	return n, nil
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
	if cur, err := cfg.Journal.Get(ctx, e.ID); err != nil || cur.State != journal.Started {
		return false
	}
	state, result, cat, msg := settleFromRemote(ctx, cfg, e, p)
	if state == "" {
		return false
	}
	if err := cfg.Journal.Reconciled(ctx, e.ID, state, result, cat, msg); err != nil {
		cfg.Logger.Warn("journal entry not reconciled", "entry", e.ID, "err", err)
		return false
	}
	cfg.Logger.Info("journal entry reconciled", "entry", e.ID, "op", e.Op, "state", state)
	return true
}

// planTimeout is how long a live holder can take between starting an entry
// and recording its plan; an entry older than that without a plan was left
// by a process that died before running anything.
const planTimeout = time.Minute

// settleUnplanned settles an entry whose process died before recording a
// plan, and so before running the write.
func settleUnplanned(ctx context.Context, cfg ReconcileConfig, e journal.Entry) bool {
	if time.Since(e.UpdatedAt) < planTimeout {
		return false
	}
	err := cfg.Journal.Reconciled(ctx, e.ID, journal.Failed, nil, string(backends.Unavailable), "interrupted before it ran; nothing was changed")
	return err == nil
}

// settleFromRemote decides an interrupted entry's outcome. An empty state
// means "cannot tell now" (the remote did not answer): try again later.
func settleFromRemote(ctx context.Context, cfg ReconcileConfig, e journal.Entry, p plan) (journal.State, []byte, string, string) {
	if e.Op != string(backends.OpPush) || p.Target == "" || p.URL == "" {
		return journal.Unknown, nil, string(backends.Conflict), "interrupted before it settled; outcome unknown"
	}
	ref := "refs/heads/" + p.Branch
	sha, err := cfg.RemoteRef(ctx, p.Agent, p.URL, ref)
	if err != nil {
		cfg.Logger.Warn("remote not reachable for reconciliation; will retry", "entry", e.ID, "err", err)
		return "", nil, "", ""
	}
	if sha != p.Target {
		return journal.Failed, nil, string(backends.Unavailable), "the push was interrupted before it reached the remote; push again"
	}
	result, _ := json.Marshal(backends.PushResult{Branch: p.Branch, RemoteRef: ref, Head: p.Target})
	return journal.Succeeded, result, "", ""
}
