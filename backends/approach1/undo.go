package approach1

// STUB (issue 16 skeleton): replaced by its owner.

import (
	"context"

	"github.com/gitgate/gitgate/backends"
)

func (e *Executor) reset(ctx context.Context, r *backends.ResetRequest) (*backends.ResetResult, error) {
	return nil, backends.Errorf(backends.Internal, "reset: not built yet")
}

func (e *Executor) restorePaths(ctx context.Context, r *backends.RestoreRequest) (*backends.RestoreResult, error) {
	return nil, backends.Errorf(backends.Internal, "restorePaths: not built yet")
}

func (e *Executor) stash(ctx context.Context, r *backends.StashRequest) (*backends.StashResult, error) {
	return nil, backends.Errorf(backends.Internal, "stash: not built yet")
}

func (e *Executor) tag(ctx context.Context, r *backends.TagRequest) (*backends.TagResult, error) {
	return nil, backends.Errorf(backends.Internal, "tag: not built yet")
}
