package branches

import (
	"context"

	"github.com/gitgate/gitgate/backends"
)

// DeleteRequest is an agent's request to delete one of its branches from
// the remote of a workspace (what a delete_branch tool asks; the local
// branch is the backend's business).
type DeleteRequest struct {
	Principal backends.Principal
	Workspace string
	Branch    string
	// IdempotencyKey, if set, is the agent's key for the call; the
	// deletion keeps a hash of it (Deletion.Call).
	IdempotencyKey string
}

// DeleteBranch deletes an agent's own branch from the workspace's remote:
// never a protected one, never one gitgate did not push for this agent
// (the record says who), never one someone pushed on top of (the remote's
// tip must still be the recorded commit). The deletion is recorded and
// restorable like the cleanup's (reason agent, by the agent).
func (g *Guard) DeleteBranch(ctx context.Context, r DeleteRequest) (Deletion, error) {
	p := r.Principal
	if g.cfg.Store == nil || g.cfg.Git == nil || g.cfg.Workspace == nil {
		return Deletion{}, backends.Errorf(backends.Unavailable, "deleting branches on the remote is not configured on this gateway")
	}
	ws, def, err := g.workspace(ctx, &backends.PushRequest{Scope: backends.Scope{Principal: p, Workspace: r.Workspace}})
	if err != nil {
		return Deletion{}, err
	}
	if ws.URL == "" {
		return Deletion{}, backends.Errorf(backends.NotFound, "there is no workspace %q", r.Workspace)
	}
	if rule := g.cfg.Policy.Rules(p.Project).ProtectedBy(r.Branch, def); rule != "" {
		return Deletion{}, backends.Errorf(backends.Forbidden, "branch %q is protected in project %q (%s): agents may not delete it", r.Branch, p.Project, rule)
	}
	rec, err := g.ownRecord(ctx, p, ws.URL, r.Branch)
	if err != nil {
		return Deletion{}, err
	}
	s, err := g.cfg.Git.open(ctx, p.Project, ws.URL)
	if err != nil {
		return Deletion{}, err
	}
	defer s.close()
	d, err := deleteBranch(ctx, s, g.cfg.Store, rec, DeleteAgent, p.Agent, callID(p, r.Workspace, r.IdempotencyKey), g.cfg.Now())
	if backends.CategoryOf(err) == backends.Conflict {
		return Deletion{}, backends.Errorf(backends.Conflict, "branch %q has commits gitgate did not push for you (its tip is no longer %s): it is kept", r.Branch, short(rec.Commit))
	}
	if err == nil {
		g.cfg.Metrics.deletedBranch(DeleteAgent)
	}
	return d, err
}

// ownRecord returns the record of branch on url pushed for p's agent.
func (g *Guard) ownRecord(ctx context.Context, p backends.Principal, url, branch string) (Pushed, error) {
	recs, err := g.cfg.Store.Pushed(ctx, p.Project)
	if err != nil {
		return Pushed{}, backends.Errorf(backends.Unavailable, "the branch records cannot be read: %v", err)
	}
	for _, rec := range recs {
		if rec.URL != url || rec.Branch != branch {
			continue
		}
		if rec.Agent != p.Agent {
			return Pushed{}, backends.Errorf(backends.Forbidden, "branch %q was pushed by agent %q, not by you: only its author may delete it", branch, rec.Agent)
		}
		return rec, nil
	}
	return Pushed{}, backends.Errorf(backends.Forbidden, "branch %q was not created by gitgate for you: agents may delete only branches gitgate pushed for them", branch)
}

// short abbreviates a commit id.
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
