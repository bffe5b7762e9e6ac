package approach1

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Bindings are shared state that a store can lose — a Redis restarted
// without persistence forgets every one — while the sandboxes still hold
// the workspaces: each workspace's git directory records its repository
// (remote.origin.url), its branch and its commits. A workspace the store
// does not know is looked for in its owner's sandboxes (the provider finds
// them by owner: the local provider from each sandbox's metadata file, E2B
// from the sandbox metadata gitgate sets at creation) and its binding is
// rebuilt from what the sandbox shows, so that no operation ever reports a
// workspace not found, nor clones over it, while it exists.
//
// A workspace is only rebuilt under its lock, and only while the store
// still lacks its binding: a workspace the store does not know may be one
// that another process is cloning right now in a shared sandbox (its git
// directory exists, HEAD on the remote's default branch, before the clone
// records its binding). Read without the lock, such a workspace would be
// recorded as it was half-way — and the record, stored after the clone
// and the checkout that followed recorded theirs, would put it back on the
// default branch, where the branch policy refuses its agent's pushes.

// recoverBinding looks for workspace k in its owner's sandboxes and, when
// one holds it, stores and returns its rebuilt binding (ok false when none
// holds it). When the sandboxes cannot be listed it fails Unavailable:
// the workspace may exist. locked says whether the caller holds k's lock;
// if not, recoverBinding waits for it, and a binding its holder recorded
// meanwhile (a clone that was running) is returned as it is.
func (e *Executor) recoverBinding(ctx context.Context, k sandbox.WorkspaceKey, locked bool) (sandbox.Binding, bool, error) {
	if !locked {
		lease, err := e.lock(ctx, k)
		if err != nil {
			return sandbox.Binding{}, false, err
		}
		defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
		if b, ok, err := e.cfg.Bindings.Get(ctx, k); err != nil {
			return sandbox.Binding{}, false, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
		} else if ok {
			return b, true, nil
		}
	}
	candidates, err := e.cfg.Sandboxes.Candidates(ctx, k.Owner())
	if err != nil { // it may exist: neither "not found" nor a clone over it
		return sandbox.Binding{}, false, backends.Errorf(backends.Unavailable,
			"cannot tell whether workspace %q exists: its sandboxes could not be listed; try again: %w", k.Name, err)
	}
	for _, info := range candidates {
		if info.Owner != k.Owner() {
			continue
		}
		b, ok, err := e.rebuild(ctx, k, info)
		if errors.Is(err, errHalfMade) {
			return sandbox.Binding{}, false, err
		}
		if err != nil || !ok {
			continue
		}
		return b, true, nil
	}
	return sandbox.Binding{}, false, nil
}

// rebuild reads workspace k's state from sandbox info, where it exists,
// and stores the binding. The caller holds k's lock. A workspace whose
// clone did not finish (its process was killed part-way: cloneMark) is
// removed instead, and the error, wrapping errHalfMade, says so.
func (e *Executor) rebuild(ctx context.Context, k sandbox.WorkspaceKey, info sandbox.Info) (sandbox.Binding, bool, error) {
	done, alive := e.cfg.Sandboxes.Use(ctx, info.ID)
	if !alive {
		return sandbox.Binding{}, false, nil
	}
	defer done()
	now := time.Now().UTC()
	b := sandbox.Binding{Key: k, SandboxID: info.ID, Root: info.Root, Created: info.Created.UTC(), LastUsed: now}
	if e.cloneUnfinished(ctx, info.ID, info.Root, k.Name) {
		e.removeHalfMade(ctx, b, "its clone's mark was left (the process cloning it stopped)")
		return sandbox.Binding{}, false, halfMade(k.Name)
	}
	if _, err := e.readGitFile(ctx, b, "HEAD"); err != nil {
		return sandbox.Binding{}, false, nil // not in this sandbox
	}
	url, err := e.git(ctx, b, gitRun{op: backends.OpStatus, args: []string{"config", "--get", "remote.origin.url"}, read: true, noTree: true})
	if err != nil {
		return sandbox.Binding{}, false, err
	}
	b.URL = strings.TrimSpace(string(url.Stdout))
	if b.Branch, _, err = e.head(ctx, b); err != nil {
		return sandbox.Binding{}, false, err
	}
	st, err := e.git(ctx, b, gitRun{op: backends.OpStatus, args: gitcmd.StatusArgs, read: true})
	if err != nil {
		return sandbox.Binding{}, false, err
	}
	b.Dirty = !gitcmd.ParseStatus(st.Stdout).Clean || e.stashKept(ctx, b) // stash entries are work too (undo.go)
	// Every local branch with a commit no remote-tracking branch has.
	un, err := e.git(ctx, b, gitRun{op: backends.OpStatus, args: []string{"log", "--source", "--branches", "--not", "--remotes", "--format=%S"}, read: true, noTree: true})
	if err != nil {
		return sandbox.Binding{}, false, err
	}
	for line := range strings.SplitSeq(string(un.Stdout), "\n") {
		b.Unpushed = addBranch(b.Unpushed, strings.TrimPrefix(strings.TrimSpace(line), "refs/heads/"))
	}
	if err := e.cfg.Bindings.Put(ctx, b); err != nil {
		return sandbox.Binding{}, false, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	e.metrics.recovered.Inc()
	e.cfg.Logger.Warn("workspace binding was missing from the bindings store (was it restarted without persistence?); recovered it from the sandbox that holds the workspace",
		"workspace", k.String(), "sandbox", info.ID, "branch", b.Branch, "dirty", b.Dirty, "unpushed", b.Unpushed)
	return b, true, nil
}

// recoverAll rebuilds the bindings of every workspace in owner's sandboxes
// that the store does not know, at most once per recoverEvery per owner
// (listing workspaces must stay cheap on remote sandboxes).
func (e *Executor) recoverAll(ctx context.Context, owner sandbox.Owner, known []sandbox.Binding) []sandbox.Binding {
	if !e.recoveries.due(owner) {
		return nil
	}
	candidates, err := e.cfg.Sandboxes.Candidates(ctx, owner)
	if err != nil {
		return nil
	}
	have := map[string]bool{}
	for _, b := range known {
		if b.Key.Owner() == owner {
			have[b.Key.Name] = true
		}
	}
	var found []sandbox.Binding
	for _, info := range candidates {
		if info.Owner != owner {
			continue
		}
		for _, name := range e.workspacesIn(ctx, info) {
			if have[name] {
				continue
			}
			k := sandbox.WorkspaceKey{Project: owner.Project, Agent: owner.Agent, Name: name}
			if b, ok := e.rebuildIdle(ctx, k, info); ok {
				found = append(found, b)
				have[name] = true
			}
		}
	}
	return found
}

// recoverLockWait bounds how long listing workspaces waits for the lock
// of a workspace the store does not know before passing it over.
const recoverLockWait = 100 * time.Millisecond

// rebuildIdle rebuilds workspace k's binding from sandbox info when its
// lock is free: a workspace whose lock is held is being cloned or written
// by its holder, which records its binding itself, so it is passed over
// (ok false) rather than recorded half-way. Under the lock, a binding
// recorded meanwhile is returned as it is.
func (e *Executor) rebuildIdle(ctx context.Context, k sandbox.WorkspaceKey, info sandbox.Info) (sandbox.Binding, bool) {
	wait, cancel := context.WithTimeout(ctx, recoverLockWait)
	lease, err := e.cfg.Locker.Acquire(wait, LockKey(k))
	cancel()
	if err != nil {
		return sandbox.Binding{}, false
	}
	defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
	if b, ok, err := e.cfg.Bindings.Get(ctx, k); err != nil {
		return sandbox.Binding{}, false
	} else if ok {
		return b, true
	}
	b, ok, err := e.rebuild(ctx, k, info)
	return b, err == nil && ok
}

// workspacesIn lists the names of the workspaces whose git directories
// sandbox info holds.
func (e *Executor) workspacesIn(ctx context.Context, info sandbox.Info) []string {
	done, alive := e.cfg.Sandboxes.Use(ctx, info.ID)
	if !alive {
		return nil
	}
	defer done()
	entries, err := e.cfg.Sandboxes.Provider().ListDir(ctx, info.ID, info.Root, "git", false, 10_000)
	if err != nil {
		return nil
	}
	var names []string
	for _, en := range entries {
		name, ok := strings.CutSuffix(strings.TrimPrefix(en.Path, "git/"), ".git")
		if ok && en.Type == "dir" && gitcmd.ValidateWorkspace(name) == nil {
			names = append(names, name)
		}
	}
	return names
}

// recoverEvery bounds how often listing workspaces looks into sandboxes
// for workspaces the bindings store lost.
const recoverEvery = 10 * time.Second

// recoveryClock remembers when each owner's sandboxes were last searched.
type recoveryClock struct {
	mu   sync.Mutex
	last map[sandbox.Owner]time.Time
}

// due reports whether owner's sandboxes may be searched now, and if so
// records it.
func (c *recoveryClock) due(owner sandbox.Owner) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[sandbox.Owner]time.Time{}
	}
	now := time.Now()
	if now.Sub(c.last[owner]) < recoverEvery {
		return false
	}
	c.last[owner] = now
	return true
}
