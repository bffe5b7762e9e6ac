package approach2

import (
	"context"

	"github.com/gitgate/gitgate/backends"
)

var _ backends.Predictor = (*Once)(nil)

// Predict asks the engine for a shadow prediction. Predictions never write,
// so they bypass the journal; an engine that cannot predict refuses.
func (o *Once) Predict(ctx context.Context, req backends.Request, primary backends.Result) (*backends.Prediction, error) {
	p, ok := o.cfg.Engine.(backends.Predictor)
	if !ok {
		return nil, backends.Errorf(backends.InvalidArgument, "this backend cannot predict writes")
	}
	return p.Predict(ctx, req, primary)
}
