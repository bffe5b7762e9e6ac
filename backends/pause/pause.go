// Package pause is the context-aware sleep that backends and the command
// share: their retry backoffs, poll intervals and periodic loops wait
// through [For], so that every such wait ends as soon as its context does.
// It imports only the standard library, so that any package can use it.
package pause

import (
	"context"
	"time"
)

// For waits d or until ctx ends, whichever comes first, and reports
// whether the whole d passed: false means ctx ended (ctx.Err() says why).
func For(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
