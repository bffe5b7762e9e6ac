package approach1

// STUB (issue 16 skeleton): replaced by its owner (SEQ).

import (
	"context"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// stoppedState reads, lock-free (a read), what the workspace b is in the
// middle of: the merge, rebase, cherry-pick or revert waiting for the
// agent (InProgress), its unmerged paths (Conflicts) and what to do next
// (Next). A workspace with nothing in progress and no unmerged path gives
// a zero Stopped.
func (e *Executor) stoppedState(ctx context.Context, b sandbox.Binding) (backends.Stopped, error) {
	return backends.Stopped{}, nil
}
