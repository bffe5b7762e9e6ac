package approach1

import (
	"context"
	"strconv"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// deleteBranch deletes a local branch of the workspace (git branch -D:
// its commits need not be merged anywhere), never the checked-out one.
// The remote is left alone whatever r.Remote says: that is the gateway's
// (gateway/branches).
func (e *Executor) deleteBranch(ctx context.Context, r *backends.DeleteBranchRequest) (*backends.DeleteBranchResult, error) {
	if err := gitcmd.ValidateBranch(r.Branch); err != nil {
		return nil, err
	}
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	current, _, err := e.head(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	if current == r.Branch {
		return nil, backends.Errorf(backends.Conflict, "branch %q is checked out; switch to another branch before deleting it", r.Branch)
	}
	sha, err := e.refSHA(ctx, w.Binding, "refs/heads/"+r.Branch)
	if err != nil {
		return nil, err
	}
	if sha == "" {
		return nil, backends.Errorf(backends.NotFound, "there is no local branch %q in workspace %q", r.Branch, r.Workspace)
	}
	args := []string{"branch", "--delete", "--force", "--end-of-options", r.Branch}
	if _, err := e.git(ctx, w.Binding, gitRun{op: backends.OpDeleteBranch, args: args, noTree: true}); err != nil {
		return nil, err
	}
	e.record(ctx, w, func(b *sandbox.Binding) {
		b.Unpushed = removeBranch(b.Unpushed, r.Branch) // nothing of it is left to lose
	})
	return &backends.DeleteBranchResult{Served: written(w), Branch: r.Branch, Local: true, Head: sha}, nil
}

// predictDeleteBranch expects the local branch to be gone, HEAD elsewhere.
// A branch that is back is stale when another write came after the
// deletion (it may have created it again).
func (e *Executor) predictDeleteBranch(ctx context.Context, r *backends.DeleteBranchRequest, res *backends.DeleteBranchResult) (*backends.Prediction, error) {
	if err := gitcmd.ValidateBranch(r.Branch); err != nil {
		return nil, err
	}
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	sha, err := e.refSHA(ctx, w.Binding, "refs/heads/"+r.Branch)
	if err != nil {
		return nil, err
	}
	exists := sha != ""
	if exists {
		later, err := e.superseded(ctx, &r.Scope, res)
		if err != nil {
			return nil, err
		}
		if later {
			return stale("another write to the workspace came after it"), nil
		}
	}
	return &backends.Prediction{
		Expected: map[string]string{"branch": r.Branch, "local": "true", "exists": "false"},
		Found:    map[string]string{"branch": res.Branch, "local": strconv.FormatBool(res.Local), "exists": strconv.FormatBool(exists)},
	}, nil
}
