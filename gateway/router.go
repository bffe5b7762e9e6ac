package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// RouterConfig configures a Router.
type RouterConfig struct {
	// Backends by name ("approach1", later "approach2"). Required.
	Backends map[string]backends.Executor
	// Default names the backend every operation goes to. Required.
	Default string
	// Metrics records every call. If nil, calls are not measured.
	Metrics *Metrics
	// Logger logs one line per call. If nil, slog.Default().
	Logger *slog.Logger
}

// Router is the executor the gateway calls: it picks a backend per call,
// records metrics and logs, and stamps every result with the backend that
// served it. It is itself a backends.Executor, so decorators (breakers,
// shadowing) compose around and inside it.
type Router struct {
	cfg RouterConfig
}

var _ backends.Executor = (*Router)(nil)

// NewRouter returns a Router.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if _, ok := cfg.Backends[cfg.Default]; !ok {
		return nil, fmt.Errorf("gateway: default backend %q is not configured", cfg.Default)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Router{cfg: cfg}, nil
}

// Execute routes req.
func (r *Router) Execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	name := r.pick(req)
	start := time.Now()
	var done func(string, error, time.Duration)
	if r.cfg.Metrics != nil {
		done = r.cfg.Metrics.begin(req.Op())
	}
	res, err := r.call(ctx, name, req)
	d := time.Since(start)
	if done != nil {
		done(name, err, d)
	}
	r.log(ctx, req, name, d, err)
	if err != nil {
		return nil, err
	}
	res.GetServed().Backend = name
	return res, nil
}

// pick chooses the backend. Today every operation goes to the default.
func (r *Router) pick(backends.Request) string { return r.cfg.Default }

// call runs req on the named backend, turning a panic into an internal
// error so that no panic reaches a client.
func (r *Router) call(ctx context.Context, name string, req backends.Request) (res backends.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.cfg.Logger.ErrorContext(ctx, "backend panicked", "op", req.Op(), "backend", name, "panic", fmt.Sprint(p))
			res, err = nil, backends.Errorf(backends.Internal, "internal error in backend %s", name)
		}
	}()
	return r.cfg.Backends[name].Execute(ctx, req)
}

func (r *Router) log(ctx context.Context, req backends.Request, backend string, d time.Duration, err error) {
	level, msg := slog.LevelInfo, "operation served"
	if err != nil {
		msg = "operation failed"
		if !backends.CategoryOf(err).IsClientMistake() {
			level = slog.LevelWarn
		}
	} else if req.Op().IsRead() {
		level = slog.LevelDebug // reads are counted in metrics; a line per read would drown the log
	}
	if !r.cfg.Logger.Enabled(ctx, level) {
		return
	}
	s := req.GetScope()
	attrs := []slog.Attr{slog.String("op", string(req.Op())), slog.String("backend", backend),
		slog.String("project", s.Principal.Project), slog.String("agent", s.Principal.Agent),
		slog.String("workspace", s.Workspace), slog.Int64("duration_ms", d.Milliseconds())}
	if err != nil {
		attrs = append(attrs, slog.String("category", string(backends.CategoryOf(err))), slog.String("err", err.Error()))
	}
	r.cfg.Logger.LogAttrs(ctx, level, msg, attrs...)
}
