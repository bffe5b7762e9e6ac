package gateway

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// Traffic is what the router has done since it started: the agents' calls,
// those that ended with a backend failure, and every call it actually sent
// to Approach 2 (routed calls its breaker let through, and shadow calls and
// predictions run there), counted as they were sent. A drill reads it to
// tell when no new call reaches Approach 2 any more.
type Traffic struct {
	// Calls are the agents' calls routed.
	Calls int64 `json:"calls"`
	// Failed are those that ended with a backend failure
	// (backends.Category.IsBackendFailure; an agent's mistake is not one).
	Failed int64 `json:"failed"`
	// Approach2Sent are the calls sent to Approach 2.
	Approach2Sent int64 `json:"approach2_sent"`
	// Approach2LastSent is when the last of them was sent (this gateway's
	// clock); nil before the first.
	Approach2LastSent *time.Time `json:"approach2_last_sent,omitempty"`
}

// traffic holds the counters of Traffic.
type traffic struct {
	calls, failed, a2Sent atomic.Int64
	a2Last                atomic.Int64 // Unix nanoseconds; 0: never
}

func (t *traffic) snapshot() Traffic {
	// The time first: a snapshot never shows a count without the send
	// that made it.
	last := t.a2Last.Load()
	out := Traffic{Calls: t.calls.Load(), Failed: t.failed.Load(), Approach2Sent: t.a2Sent.Load()}
	if last != 0 {
		at := time.Unix(0, last).UTC()
		out.Approach2LastSent = &at
	}
	return out
}

// sent counts a call sent to Approach 2 now.
func (t *traffic) sent() {
	t.a2Last.Store(time.Now().UnixNano())
	t.a2Sent.Add(1)
}

// Traffic returns the router's counters now.
func (r *Router) Traffic() Traffic { return r.traffic.snapshot() }

// counted is a backend whose every call (and prediction) is counted as
// sent to Approach 2.
type counted struct {
	backends.Executor
	t *traffic
}

func (c counted) Execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	c.t.sent()
	return c.Executor.Execute(ctx, req)
}

// countedPredictor is counted for a backend that predicts writes.
type countedPredictor struct {
	counted
	p backends.Predictor
}

func (c countedPredictor) Predict(ctx context.Context, req backends.Request, primary backends.Result) (*backends.Prediction, error) {
	c.t.sent()
	return c.p.Predict(ctx, req, primary)
}

// countSent returns ex counting what is sent to it, keeping its Predictor
// side.
func countSent(ex backends.Executor, t *traffic) backends.Executor {
	c := counted{Executor: ex, t: t}
	if p, ok := ex.(backends.Predictor); ok {
		return countedPredictor{counted: c, p: p}
	}
	return c
}
