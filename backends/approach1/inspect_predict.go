package approach1

// STUB (issue 16 skeleton): replaced by its owner.

import (
	"context"

	"github.com/gitgate/gitgate/backends"
)

func (e *Executor) predictFetch(ctx context.Context, r *backends.FetchRequest, res *backends.FetchResult) (*backends.Prediction, error) {
	return nil, backends.Errorf(backends.Internal, "predictFetch: not built yet")
}
