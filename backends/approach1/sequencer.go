package approach1

// STUB (issue 16 skeleton): replaced by its owner.

import (
	"context"

	"github.com/gitgate/gitgate/backends"
)

func (e *Executor) merge(ctx context.Context, r *backends.MergeRequest) (*backends.MergeResult, error) {
	return nil, backends.Errorf(backends.Internal, "merge: not built yet")
}

func (e *Executor) rebase(ctx context.Context, r *backends.RebaseRequest) (*backends.RebaseResult, error) {
	return nil, backends.Errorf(backends.Internal, "rebase: not built yet")
}

func (e *Executor) cherryPick(ctx context.Context, r *backends.CherryPickRequest) (*backends.CherryPickResult, error) {
	return nil, backends.Errorf(backends.Internal, "cherryPick: not built yet")
}

func (e *Executor) revert(ctx context.Context, r *backends.RevertRequest) (*backends.RevertResult, error) {
	return nil, backends.Errorf(backends.Internal, "revert: not built yet")
}

func (e *Executor) markResolved(ctx context.Context, r *backends.MarkResolvedRequest) (*backends.MarkResolvedResult, error) {
	return nil, backends.Errorf(backends.Internal, "markResolved: not built yet")
}

func (e *Executor) continueOp(ctx context.Context, r *backends.ContinueRequest) (*backends.ContinueResult, error) {
	return nil, backends.Errorf(backends.Internal, "continueOp: not built yet")
}

func (e *Executor) abort(ctx context.Context, r *backends.AbortRequest) (*backends.AbortResult, error) {
	return nil, backends.Errorf(backends.Internal, "abort: not built yet")
}
