package approach1

// STUB (issue 16 skeleton): replaced by its owner.

import (
	"context"

	"github.com/gitgate/gitgate/backends"
)

func (e *Executor) fetch(ctx context.Context, r *backends.FetchRequest) (*backends.FetchResult, error) {
	return nil, backends.Errorf(backends.Internal, "fetch: not built yet")
}

func (e *Executor) show(ctx context.Context, r *backends.ShowRequest) (*backends.ShowResult, error) {
	return nil, backends.Errorf(backends.Internal, "show: not built yet")
}

func (e *Executor) blame(ctx context.Context, r *backends.BlameRequest) (*backends.BlameResult, error) {
	return nil, backends.Errorf(backends.Internal, "blame: not built yet")
}

func (e *Executor) tags(ctx context.Context, r *backends.TagsRequest) (*backends.TagsResult, error) {
	return nil, backends.Errorf(backends.Internal, "tags: not built yet")
}

func (e *Executor) reflog(ctx context.Context, r *backends.ReflogRequest) (*backends.ReflogResult, error) {
	return nil, backends.Errorf(backends.Internal, "reflog: not built yet")
}

func (e *Executor) stashes(ctx context.Context, r *backends.StashesRequest) (*backends.StashesResult, error) {
	return nil, backends.Errorf(backends.Internal, "stashes: not built yet")
}
