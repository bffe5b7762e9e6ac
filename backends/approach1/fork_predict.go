package approach1

// STUB (issue 16 skeleton): replaced by its owner.

import (
	"context"

	"github.com/gitgate/gitgate/backends"
)

func (e *Executor) predictForkWorkspace(ctx context.Context, r *backends.ForkWorkspaceRequest, res *backends.ForkWorkspaceResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictForkWorkspace: not built yet")
}
