package branches

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/gitgate/gitgate/backends"
)

// deleteBranch serves the delete_branch tool. With r.Remote it checks
// everything the remote's deletion needs first (the policy, the record
// of the push for this agent, the remote's tip still the recorded
// commit) and refuses before anything changes; then the backend deletes
// the local branch (a workspace without it is fine: only the remote's
// goes) and DeleteBranch deletes the remote's, recorded and restorable.
// Without r.Remote only the local branch goes, whoever pushed it. A
// retry with the idempotency key of a call that deleted the remote's
// branch answers with that deletion (retried).
func (g *Guard) deleteBranch(ctx context.Context, r *backends.DeleteBranchRequest) (backends.Result, error) {
	if !r.Remote {
		return g.cfg.Next.Execute(ctx, r)
	}
	dr := DeleteRequest{Principal: r.Principal, Workspace: r.Workspace, Branch: r.Branch, IdempotencyKey: r.IdempotencyKey}
	if err := g.checkDelete(ctx, dr); err != nil {
		if d, ok := g.retried(ctx, r, err); ok {
			return g.replay(ctx, r, d)
		}
		g.cfg.Logger.InfoContext(ctx, "delete_branch refused by the branch policy", "project", r.Principal.Project,
			"agent", r.Principal.Agent, "workspace", r.Workspace, "branch", r.Branch, "err", err)
		return nil, err
	}
	res, err := backends.Do[*backends.DeleteBranchResult](ctx, g.cfg.Next, r)
	switch {
	case backends.CategoryOf(err) == backends.NotFound:
		res = &backends.DeleteBranchResult{Branch: r.Branch} // no local branch (the workspace exists: checkDelete saw it)
	case err != nil:
		return nil, err
	}
	d, err := g.DeleteBranch(ctx, dr)
	if err != nil {
		if res.Local {
			return nil, backends.Errorf(backends.CategoryOf(err), "the local branch %q was deleted (it was at %s), but not the remote's: %s",
				r.Branch, short(res.Head), backends.MessageOf(err))
		}
		return nil, err
	}
	g.cfg.Logger.InfoContext(ctx, "an agent deleted its branch", "project", d.Project, "agent", d.Agent,
		"workspace", r.Workspace, "branch", d.Branch, "commit", d.Commit, "local", res.Local, "record", d.ID)
	res.Remote, res.RestoreID = true, d.ID
	return res, nil
}

// checkDelete refuses, without changing anything, what DeleteBranch would
// refuse: a branch the policy protects, one gitgate did not push for this
// agent, one whose remote tip is no longer the commit gitgate pushed.
func (g *Guard) checkDelete(ctx context.Context, r DeleteRequest) error {
	p := r.Principal
	if g.cfg.Store == nil || g.cfg.Git == nil || g.cfg.Workspace == nil {
		return backends.Errorf(backends.Unavailable, "deleting branches on the remote is not configured on this gateway; pass remote: false to delete only the local branch")
	}
	ws, def, err := g.workspace(ctx, &backends.PushRequest{Scope: backends.Scope{Principal: p, Workspace: r.Workspace}})
	if err != nil {
		return err
	}
	if ws.URL == "" {
		return backends.Errorf(backends.NotFound, "there is no workspace %q", r.Workspace)
	}
	if rule := g.cfg.Policy.Rules(p.Project).ProtectedBy(r.Branch, def); rule != "" {
		return backends.Errorf(backends.Forbidden, "branch %q is protected in project %q (%s): agents may not delete it", r.Branch, p.Project, rule)
	}
	rec, err := g.ownRecord(ctx, p, ws.URL, r.Branch)
	if err != nil {
		if backends.CategoryOf(err) == backends.Forbidden {
			return backends.Errorf(backends.Forbidden, "%s; nothing was deleted (pass remote: false to delete only your local branch)", backends.MessageOf(err))
		}
		return err
	}
	heads, _, err := g.cfg.Git.Heads(ctx, p.Project, ws.URL)
	if err != nil {
		return err
	}
	switch tip, ok := heads[r.Branch]; {
	case !ok:
		return backends.Errorf(backends.NotFound, "branch %q is no longer on the remote; pass remote: false to delete only your local branch", r.Branch)
	case tip != rec.Commit:
		return backends.Errorf(backends.Conflict, "branch %q has commits gitgate did not push for you (its tip is no longer %s): it is kept, here and on the remote", r.Branch, short(rec.Commit))
	}
	return nil
}

// retried returns the deletion that an earlier call with r's idempotency
// key made, when err is the refusal such a retry meets (the record of the
// push went with the branch). A call without a key, or with another key,
// is refused as before.
func (g *Guard) retried(ctx context.Context, r *backends.DeleteBranchRequest, err error) (Deletion, bool) {
	if r.IdempotencyKey == "" || backends.CategoryOf(err) != backends.Forbidden || g.cfg.Store == nil {
		return Deletion{}, false
	}
	all, derr := g.cfg.Store.Deletions(ctx)
	if derr != nil {
		return Deletion{}, false
	}
	call := callID(r.Principal, r.Workspace, r.IdempotencyKey)
	for _, d := range all {
		if d.Call == call && d.Project == r.Principal.Project && d.Branch == r.Branch {
			return d, true
		}
	}
	return Deletion{}, false
}

// callID is Deletion.Call for an agent's call with key ("" without one).
func callID(p backends.Principal, workspace, key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(p.Project + "\x00" + p.Agent + "\x00" + workspace + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}

// replay answers a retried call whose remote deletion d was made: the
// backend replays its local part (its exactly-once layer keeps the first
// answer under the key; a workspace without the branch is fine).
func (g *Guard) replay(ctx context.Context, r *backends.DeleteBranchRequest, d Deletion) (backends.Result, error) {
	res, err := backends.Do[*backends.DeleteBranchResult](ctx, g.cfg.Next, r)
	switch {
	case backends.CategoryOf(err) == backends.NotFound:
		res = &backends.DeleteBranchResult{Branch: r.Branch}
	case err != nil:
		return nil, err
	}
	res.Remote, res.RestoreID = true, d.ID
	return res, nil
}
