package approach1

// STUB (issue 16 skeleton): replaced by its owner.

import (
	"context"

	"github.com/gitgate/gitgate/backends"
)

func (e *Executor) predictMergeOp(ctx context.Context, r *backends.MergeRequest, res *backends.MergeResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictMergeOp: not built yet")
}

func (e *Executor) predictRebase(ctx context.Context, r *backends.RebaseRequest, res *backends.RebaseResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictRebase: not built yet")
}

func (e *Executor) predictCherryPick(ctx context.Context, r *backends.CherryPickRequest, res *backends.CherryPickResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictCherryPick: not built yet")
}

func (e *Executor) predictRevert(ctx context.Context, r *backends.RevertRequest, res *backends.RevertResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictRevert: not built yet")
}

func (e *Executor) predictMarkResolved(ctx context.Context, r *backends.MarkResolvedRequest, res *backends.MarkResolvedResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictMarkResolved: not built yet")
}

func (e *Executor) predictContinue(ctx context.Context, r *backends.ContinueRequest, res *backends.ContinueResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictContinue: not built yet")
}

func (e *Executor) predictAbort(ctx context.Context, r *backends.AbortRequest, res *backends.AbortResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictAbort: not built yet")
}
