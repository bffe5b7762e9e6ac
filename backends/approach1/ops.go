package approach1

import (
	"context"

	"github.com/gitgate/gitgate/backends"
)

// handler runs one operation's request on the engine.
type handler func(e *Executor, ctx context.Context, req backends.Request) (backends.Result, error)

// predictor predicts one write from its request and the primary's result.
type predictor func(e *Executor, ctx context.Context, req backends.Request, primary backends.Result) (*backends.Prediction, error)

// handlers are the engine's operations, one for each operation of the
// table (backends.Ops); TestEveryOperationHasAHandler walks the table
// against them.
var handlers = map[backends.Op]handler{
	backends.OpClone:            handle((*Executor).clone),
	backends.OpPull:             handle((*Executor).pull),
	backends.OpPush:             handle((*Executor).push),
	backends.OpCommit:           handle((*Executor).commit),
	backends.OpCheckout:         handle((*Executor).checkout),
	backends.OpStatus:           handle((*Executor).status),
	backends.OpDiff:             handle((*Executor).diff),
	backends.OpLog:              handle((*Executor).log),
	backends.OpBranches:         handle((*Executor).branches),
	backends.OpReadFile:         handle((*Executor).readFile),
	backends.OpWriteFile:        handle((*Executor).writeFile),
	backends.OpListFiles:        handle((*Executor).listFiles),
	backends.OpDeleteFile:       handle((*Executor).deleteFile),
	backends.OpDeleteBranch:     handle((*Executor).deleteBranch),
	backends.OpListWorkspaces:   handle((*Executor).listWorkspaces),
	backends.OpReleaseWorkspace: handle((*Executor).release),
	backends.OpFetch:            handle((*Executor).fetch),
	backends.OpShow:             handle((*Executor).show),
	backends.OpBlame:            handle((*Executor).blame),
	backends.OpTags:             handle((*Executor).tags),
	backends.OpReflog:           handle((*Executor).reflog),
	backends.OpStashes:          handle((*Executor).stashes),
	backends.OpMerge:            handle((*Executor).merge),
	backends.OpRebase:           handle((*Executor).rebase),
	backends.OpCherryPick:       handle((*Executor).cherryPick),
	backends.OpRevert:           handle((*Executor).revert),
	backends.OpMarkResolved:     handle((*Executor).markResolved),
	backends.OpContinue:         handle((*Executor).continueOp),
	backends.OpAbort:            handle((*Executor).abort),
	backends.OpReset:            handle((*Executor).reset),
	backends.OpRestore:          handle((*Executor).restorePaths),
	backends.OpStash:            handle((*Executor).stash),
	backends.OpTag:              handle((*Executor).tag),
	backends.OpForkWorkspace:    handle((*Executor).forkWorkspace),
}

// predictors are the shadow predictions, one for each write of the table.
var predictors = map[backends.Op]predictor{
	backends.OpClone:         predict((*Executor).predictClone),
	backends.OpPull:          predict((*Executor).predictPull),
	backends.OpPush:          predict((*Executor).predictPush),
	backends.OpCommit:        predict((*Executor).predictCommit),
	backends.OpCheckout:      predict((*Executor).predictCheckout),
	backends.OpWriteFile:     predict((*Executor).predictWriteFile),
	backends.OpDeleteFile:    predict((*Executor).predictDeleteFile),
	backends.OpDeleteBranch:  predict((*Executor).predictDeleteBranch),
	backends.OpFetch:         predict((*Executor).predictFetch),
	backends.OpMerge:         predict((*Executor).predictMergeOp),
	backends.OpRebase:        predict((*Executor).predictRebase),
	backends.OpCherryPick:    predict((*Executor).predictCherryPick),
	backends.OpRevert:        predict((*Executor).predictRevert),
	backends.OpMarkResolved:  predict((*Executor).predictMarkResolved),
	backends.OpContinue:      predict((*Executor).predictContinue),
	backends.OpAbort:         predict((*Executor).predictAbort),
	backends.OpReset:         predict((*Executor).predictReset),
	backends.OpRestore:       predict((*Executor).predictRestore),
	backends.OpStash:         predict((*Executor).predictStash),
	backends.OpTag:           predict((*Executor).predictTag),
	backends.OpForkWorkspace: predict((*Executor).predictForkWorkspace),
	backends.OpReleaseWorkspace: func(e *Executor, ctx context.Context, req backends.Request, _ backends.Result) (*backends.Prediction, error) {
		r, err := requestAs[*backends.ReleaseWorkspaceRequest](req)
		if err != nil {
			return nil, err
		}
		return e.predictRelease(ctx, r)
	},
}

// handle adapts an operation's method to a handler.
func handle[Q backends.Request, R backends.Result](f func(*Executor, context.Context, Q) (R, error)) handler {
	return func(e *Executor, ctx context.Context, req backends.Request) (backends.Result, error) {
		r, err := requestAs[Q](req)
		if err != nil {
			return nil, err
		}
		res, err := f(e, ctx, r)
		if err != nil {
			return nil, err
		}
		return res, nil
	}
}

// predict adapts a write's prediction method to a predictor.
func predict[Q backends.Request, R backends.Result](f func(*Executor, context.Context, Q, R) (*backends.Prediction, error)) predictor {
	return func(e *Executor, ctx context.Context, req backends.Request, primary backends.Result) (*backends.Prediction, error) {
		r, err := requestAs[Q](req)
		if err != nil {
			return nil, err
		}
		return withResult(primary, func(res R) (*backends.Prediction, error) { return f(e, ctx, r, res) })
	}
}

// requestAs returns req as the operation's own request type.
func requestAs[Q backends.Request](req backends.Request) (Q, error) {
	r, ok := req.(Q)
	if !ok {
		var want Q
		return r, backends.Errorf(backends.Internal, "a %s request of type %T, want %T", req.Op(), req, want)
	}
	return r, nil
}
