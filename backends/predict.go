package backends

import "context"

// Prediction is a shadow backend's account of a write another backend (the
// primary) made: what the write should have produced, derived by the shadow
// on its own from the state before it, next to what the workspace and remote
// show it did produce. Both are sets of named facts ("tree", "remote_head",
// …) compared key by key; a shadow never applies the write to learn them.
type Prediction struct {
	// Expected is what the write should have produced.
	Expected map[string]string `json:"expected"`
	// Found is what the primary's result, the workspace and the remote show.
	Found map[string]string `json:"found"`
	// Stale, when set, says why there is nothing to compare: the workspace
	// moved on (another write) before the shadow looked at it.
	Stale string `json:"stale,omitempty"`
}

// Predictor is implemented by backends that can predict writes for shadow
// comparison. Predict never changes a workspace or a remote: it works from
// the primary's result (which names the state before the write, such as a
// commit's parent or a pull's starting point), reads the workspace without
// locks, computes trees and commits in a scratch index and object directory
// that it deletes, and reads the remote with the project's read-only
// credentials where it needs to. It is called only for successful writes.
type Predictor interface {
	Predict(ctx context.Context, req Request, primary Result) (*Prediction, error)
}
