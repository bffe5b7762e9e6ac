package approach1

// STUB (issue 16 skeleton): replaced by its owner.

import (
	"context"

	"github.com/gitgate/gitgate/backends"
)

func (e *Executor) forkWorkspace(ctx context.Context, r *backends.ForkWorkspaceRequest) (*backends.ForkWorkspaceResult, error) {
	return nil, backends.Errorf(backends.Internal, "forkWorkspace: not built yet")
}
