package admit

import (
	"context"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// Executor returns inner behind l: every call is admitted by l before
// inner.Execute runs, and holds its slot until inner returns. Put it
// outside whatever takes the workspace lock (approach2.Once), so that a
// call waits for a slot before it holds any lock. Reads and writes share
// the slots. The time a call waited for its slot is added to its result's
// Served.Wait.
//
// When inner is also a backends.Predictor, so is the result: a prediction
// is shadow work, admitted only when a slot is free at once (see
// Predictor). With a nil l, Executor returns inner.
func Executor(inner backends.Executor, l *Limiter) backends.Executor {
	if l == nil {
		return inner
	}
	ex := executor{inner: inner, l: l}
	if p, ok := inner.(backends.Predictor); ok {
		return predictingExecutor{executor: ex, p: p}
	}
	return ex
}

// Predictor returns inner behind l: a prediction runs git, so it takes a
// slot; being shadow work, it is admitted only when one is free at once,
// and refused as unavailable otherwise. With a nil l, Predictor returns
// inner.
func Predictor(inner backends.Predictor, l *Limiter) backends.Predictor {
	if l == nil {
		return inner
	}
	return predictor{p: inner, l: l}
}

type executor struct {
	inner backends.Executor
	l     *Limiter
}

// Execute admits the call, then runs it on inner.
func (e executor) Execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	start := time.Now()
	release, err := e.l.Admit(ctx)
	if err != nil {
		return nil, refusal(req.Op(), err)
	}
	defer release()
	waited := time.Since(start)
	res, err := e.inner.Execute(ctx, req)
	if res != nil {
		res.GetServed().Wait += waited
	}
	return res, err
}

type predictor struct {
	p backends.Predictor
	l *Limiter
}

// Predict admits the prediction as shadow work, then asks p.
func (p predictor) Predict(ctx context.Context, req backends.Request, primary backends.Result) (*backends.Prediction, error) {
	release, err := p.l.Admit(backends.WithShadow(ctx))
	if err != nil {
		return nil, refusal(req.Op(), err)
	}
	defer release()
	return p.p.Predict(ctx, req, primary)
}

type predictingExecutor struct {
	executor
	p backends.Predictor
}

// Predict is Predictor's.
func (e predictingExecutor) Predict(ctx context.Context, req backends.Request, primary backends.Result) (*backends.Prediction, error) {
	return predictor{p: e.p, l: e.l}.Predict(ctx, req, primary)
}

// refusal names op in Admit's error, keeping its not-started mark
// (backends.WithOp would drop it).
func refusal(op backends.Op, err error) error {
	return backends.NotStarted(backends.WithOp(op, err))
}

var (
	_ backends.Executor  = executor{}
	_ backends.Predictor = predictor{}
	_ backends.Predictor = predictingExecutor{}
)
