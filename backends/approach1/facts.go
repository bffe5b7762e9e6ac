package approach1

import (
	"context"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// callFacts accumulates, over one call, what its result's Served reports
// besides the answer: the sandbox commands' cost, the time spent queueing
// for the workspace lock (and, with Config.PooledSandboxes, for a sandbox), and
// for a read the workspace and its write count when the read opened it.
// Commands of one call may run concurrently (a transfer's disk watch), so
// it is guarded.
type callFacts struct {
	caller   sandbox.Owner // the calling agent, whom the commands' cost is charged to
	mu       sync.Mutex
	cost     float64
	wait     time.Duration
	read     bool
	readKey  sandbox.WorkspaceKey
	readFrom uint64
}

type callFactsKey struct{}

// withCallFacts returns a context carrying a new accumulator for one call
// of caller.
func withCallFacts(ctx context.Context, caller backends.Principal) (context.Context, *callFacts) {
	f := &callFacts{caller: sandbox.Owner{Project: caller.Project, Agent: caller.Agent}}
	return context.WithValue(ctx, callFactsKey{}, f), f
}

// factsOf returns the call's accumulator, or nil outside Execute (a
// prediction, a reachability check): the methods below do nothing on nil.
func factsOf(ctx context.Context) *callFacts {
	f, _ := ctx.Value(callFactsKey{}).(*callFacts)
	return f
}

func (f *callFacts) addCost(usd float64) {
	if f == nil || usd == 0 {
		return
	}
	f.mu.Lock()
	f.cost += usd
	f.mu.Unlock()
}

// costSoFar is what the call's commands have cost until now (0 outside a
// call).
func (f *callFacts) costSoFar() float64 {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cost
}

// who is the calling agent (zero outside a call: the cost then stays with
// the sandbox's owner, see sandbox.Manager.Charge).
func (f *callFacts) who() sandbox.Owner {
	if f == nil {
		return sandbox.Owner{}
	}
	return f.caller
}

func (f *callFacts) addWait(d time.Duration) {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.wait += d
	f.mu.Unlock()
}

// opened notes that a read opened workspace k at write count writes; the
// first open counts.
func (f *callFacts) opened(k sandbox.WorkspaceKey, writes uint64) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.read {
		f.read, f.readKey, f.readFrom = true, k, writes
	}
}

// fill sets served's cost and wait and, for a read, ReadFrom and WriteSeq:
// the write count when the read opened the workspace, and the count read
// again now that it has finished (left 0, unknown, when the bindings
// cannot be read or the workspace is gone).
func (f *callFacts) fill(ctx context.Context, bindings sandbox.BindingStore, served *backends.Served) {
	f.mu.Lock()
	cost, wait, read, k, from := f.cost, f.wait, f.read, f.readKey, f.readFrom
	f.mu.Unlock()
	served.CostUSD, served.Wait = cost, wait
	if !read {
		return
	}
	served.ReadFrom = from
	if b, ok, err := bindings.Get(context.WithoutCancel(ctx), k); err == nil && ok {
		served.WriteSeq = b.Writes
	}
}
