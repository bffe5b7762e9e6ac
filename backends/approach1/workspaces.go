package approach1

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

func (e *Executor) listWorkspaces(ctx context.Context, r *backends.ListWorkspacesRequest) (*backends.ListWorkspacesResult, error) {
	p := r.GetScope().Principal
	if p.Project == "" || p.Agent == "" {
		return nil, backends.Errorf(backends.Unauthenticated, "no authenticated agent")
	}
	bindings, err := e.cfg.Bindings.List(ctx, p.Project)
	if err != nil {
		return nil, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	owner := sandbox.Owner{Project: p.Project}
	if e.cfg.PerAgent {
		owner.Agent = p.Agent
	}
	if found := e.recoverAll(ctx, owner, bindings); len(found) > 0 {
		bindings = append(bindings, found...)
		slices.SortFunc(bindings, func(a, b sandbox.Binding) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	}
	res := &backends.ListWorkspacesResult{Workspaces: []backends.WorkspaceInfo{}}
	for _, b := range bindings {
		if e.cfg.PerAgent && b.Key.Agent != p.Agent {
			continue
		}
		res.Workspaces = append(res.Workspaces, backends.WorkspaceInfo{
			Name: b.Key.Name, URL: b.URL, Agent: b.Key.Agent,
			Created: b.Created.Format(time.RFC3339), LastUsed: b.LastUsed.Format(time.RFC3339),
		})
	}
	return res, nil
}

func (e *Executor) release(ctx context.Context, r *backends.ReleaseWorkspaceRequest) (*backends.ReleaseWorkspaceResult, error) {
	k, err := e.key(&r.Scope)
	if err != nil {
		return nil, err
	}
	lease, err := e.lock(ctx, k)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
	if gone, err := e.releaseGone(ctx, k, r.Force); err != nil {
		return nil, err
	} else if gone {
		return &backends.ReleaseWorkspaceResult{Workspace: k.Name, Released: true}, nil
	}
	res, err := e.releaseLive(ctx, k, r)
	if errors.Is(err, sandbox.ErrGone) { // it died just now: the manager has forgotten it
		if gone, gerr := e.releaseGone(ctx, k, r.Force); gerr != nil {
			return nil, gerr
		} else if gone {
			return &backends.ReleaseWorkspaceResult{Workspace: k.Name, Released: true}, nil
		}
	}
	return res, err
}

// releaseLive releases a workspace in a live sandbox; the caller holds
// its lock.
func (e *Executor) releaseLive(ctx context.Context, k sandbox.WorkspaceKey, r *backends.ReleaseWorkspaceRequest) (*backends.ReleaseWorkspaceResult, error) {
	w, err := e.open(ctx, k, r.Principal, true)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if !r.Force {
		if err := e.checkNothingToLose(ctx, w); err != nil {
			return nil, err
		}
	}
	if err := e.cfg.Bindings.Delete(ctx, w.Key); err != nil {
		return nil, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	p := e.provider()
	for _, dir := range []string{w.WorkTree(), w.GitDir()} {
		if err := p.RemoveAll(ctx, w.SandboxID, dir); errors.Is(err, sandbox.ErrGone) {
			break // the binding is gone and the sandbox with everything in it
		} else if err != nil {
			return nil, err
		}
	}
	return &backends.ReleaseWorkspaceResult{Workspace: w.Key.Name, Released: true}, nil
}

// releaseGone releases a workspace whose sandbox is gone without cloning
// it again first (as any other operation would): there is nothing left to
// remove, only the binding — unless it held unsaved work and force is not
// given. gone is false when the sandbox is alive (or there is no binding).
func (e *Executor) releaseGone(ctx context.Context, k sandbox.WorkspaceKey, force bool) (gone bool, err error) {
	b, ok, err := e.cfg.Bindings.Get(ctx, k)
	if err != nil {
		return false, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	if !ok {
		return false, nil // open reports it
	}
	if b.Shelf != "" {
		return true, e.releaseShelved(ctx, b, force)
	}
	if done, alive := e.cfg.Sandboxes.Use(ctx, b.SandboxID); alive {
		done()
		return false, nil
	}
	if lost := b.Unsaved(); lost != "" && !force {
		return true, backends.Errorf(backends.Conflict, "workspace %q's sandbox is gone, and with it %s; release with force to forget it", k.Name, lost)
	}
	if err := e.cfg.Bindings.Delete(ctx, k); err != nil {
		return true, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	return true, nil
}

// checkNothingToLose refuses to release a workspace with uncommitted changes
// or commits that no remote-tracking branch contains.
func (e *Executor) checkNothingToLose(ctx context.Context, w *workspace) error {
	res, err := e.git(ctx, w.Binding, gitRun{op: backends.OpReleaseWorkspace, args: gitcmd.StatusArgs, read: true})
	if err != nil {
		return err
	}
	if st := gitcmd.ParseStatus(res.Stdout); !st.Clean {
		return backends.Errorf(backends.Conflict, "workspace %q has %d uncommitted change(s); commit and push them, or release with force", w.Key.Name, len(st.Entries))
	}
	if err := e.checkNoStashes(ctx, w); err != nil { // undo.go
		return err
	}
	if _, sha, err := e.head(ctx, w.Binding); err != nil || sha == "" {
		return err
	}
	count := gitRun{op: backends.OpReleaseWorkspace, args: []string{"rev-list", "--count", "--branches", "--not", "--remotes"}, read: true, noTree: true}
	res, err = e.git(ctx, w.Binding, count)
	if err != nil {
		return err
	}
	if n := strings.TrimSpace(string(res.Stdout)); n != "0" {
		return backends.Errorf(backends.Conflict, "workspace %q has %s commit(s) not pushed to the remote; push them, or release with force", w.Key.Name, n)
	}
	return nil
}
