package approach1

// STUB (issue 16 skeleton): replaced by its owner.

import (
	"context"

	"github.com/gitgate/gitgate/backends"
)

func (e *Executor) predictReset(ctx context.Context, r *backends.ResetRequest, res *backends.ResetResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictReset: not built yet")
}

func (e *Executor) predictRestore(ctx context.Context, r *backends.RestoreRequest, res *backends.RestoreResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictRestore: not built yet")
}

func (e *Executor) predictStash(ctx context.Context, r *backends.StashRequest, res *backends.StashResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictStash: not built yet")
}

func (e *Executor) predictTag(ctx context.Context, r *backends.TagRequest, res *backends.TagResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictTag: not built yet")
}
