package approach2

import (
	"context"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2/journal"
)

// Begin is what Once records for req before running it.
func (o *Once) Begin(req backends.Request) (journal.Begin, error) { return o.begin(req) }

// Prepare is the plan (JSON) Once records for req under lockKey's lease.
func (o *Once) Prepare(ctx context.Context, req backends.Request, lockKey string) ([]byte, error) {
	_, raw, err := o.prepare(ctx, req, lockKey)
	return raw, err
}

// Config returns the configuration o was made with.
func (o *Once) Config() OnceConfig { return o.cfg }
