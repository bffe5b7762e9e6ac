package approach1

import (
	"context"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
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
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	if !r.Force {
		if err := e.checkNothingToLose(ctx, w); err != nil {
			return nil, err
		}
	}
	if err := e.cfg.Bindings.Delete(ctx, w.Key); err != nil {
		return nil, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	p := e.cfg.Sandboxes.Provider()
	if err := p.RemoveAll(ctx, w.SandboxID, w.WorkTree()); err != nil {
		return nil, err
	}
	if err := p.RemoveAll(ctx, w.SandboxID, w.GitDir()); err != nil {
		return nil, err
	}
	return &backends.ReleaseWorkspaceResult{Workspace: w.Key.Name, Released: true}, nil
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
