package backends

import (
	"context"
	"fmt"
)

// Executor runs operations. Implementations are safe for concurrent use.
//
// Execute returns the *XxxResult type matching the request's *XxxRequest
// type (a *CloneRequest yields a *CloneResult), or an error that carries a
// [Category] (use [CategoryOf]). It never panics on bad input: every refusal
// is an error, and a refused request changes nothing.
type Executor interface {
	Execute(ctx context.Context, req Request) (Result, error)
}

// ExecutorFunc adapts a function to [Executor].
type ExecutorFunc func(ctx context.Context, req Request) (Result, error)

// Execute calls f.
func (f ExecutorFunc) Execute(ctx context.Context, req Request) (Result, error) { return f(ctx, req) }

// Do runs req on ex and returns its result as the concrete type R.
func Do[R Result](ctx context.Context, ex Executor, req Request) (R, error) {
	var zero R
	res, err := ex.Execute(ctx, req)
	if err != nil {
		return zero, err
	}
	typed, ok := res.(R)
	if !ok {
		return zero, Errorf(Internal, "%s returned %T, want %T", req.Op(), res, zero)
	}
	return typed, nil
}

// ProgressFunc receives progress text while an operation runs (for example
// git's "Receiving objects: 42% (21/50)"). It must be cheap and must not
// block; it may be called from another goroutine.
type ProgressFunc func(message string)

type progressKey struct{}

// WithProgress returns a context whose operations report progress to fn.
func WithProgress(ctx context.Context, fn ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ProgressFrom returns the progress function of ctx, or nil.
func ProgressFrom(ctx context.Context) ProgressFunc {
	fn, _ := ctx.Value(progressKey{}).(ProgressFunc)
	return fn
}

type shadowKey struct{}

// WithShadow marks ctx as shadow work (a mirrored read or a prediction):
// backends run it at the lowest CPU priority, so that it competes as
// little as possible with the calls agents wait for.
func WithShadow(ctx context.Context) context.Context {
	return context.WithValue(ctx, shadowKey{}, true)
}

// IsShadow reports whether ctx is shadow work.
func IsShadow(ctx context.Context) bool {
	v, _ := ctx.Value(shadowKey{}).(bool)
	return v
}

// String describes a principal for logs: "project/agent".
func (p Principal) String() string { return fmt.Sprintf("%s/%s", p.Project, p.Agent) }
