package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/recovery"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/prometheus/client_golang/prometheus"
)

// Decider says where one call goes (flags.Evaluator).
type Decider interface {
	Decide(ctx context.Context, op, workspace string) flags.Decision
}

// RouterConfig configures a Router.
type RouterConfig struct {
	// Backends by name (backends.Approach1, backends.Approach2). Required.
	Backends map[backends.Name]backends.Executor
	// Default names the backend operations go to without Flags, and the
	// one fallback goes to (Approach 1). Required.
	Default backends.Name
	// Flags, if set, decides per call (per operation, sticky per
	// workspace); Approach 2 is then called through circuit breakers.
	Flags Decider
	// Breakers configures the breakers in front of Approach 2.
	Breakers BreakerConfig
	// Registerer receives the breaker metrics. If nil, not registered.
	Registerer prometheus.Registerer
	// Observe, if set, is handed every call once it ended, as a canary
	// record (KindCall), for the ledger and the automatic rollback
	// (canary.Recorder.Record). It must not block.
	Observe func(canary.Entry)
	// Shadow configures shadow comparison of reads (rates from the flags).
	Shadow ShadowConfig
	// Metrics records every call. If nil, calls are not measured.
	Metrics *Metrics
	// Logger logs one line per call. If nil, slog.Default().
	Logger *slog.Logger
	// Drill, if set, is the gateway's drill mark: while it holds, every
	// entry handed to Observe and Shadow.Observe carries its id.
	Drill *DrillMark
	// BreakerChanged, if set, is told of every breaker forced open or
	// released (for the flag change log). It must not block long.
	BreakerChanged func(BreakerChange)
}

// Router is the executor the gateway calls: it picks a backend per call,
// records metrics and logs, and stamps every result with the backend that
// served it. It is itself a backends.Executor, so decorators (breakers,
// shadowing) compose around and inside it.
type Router struct {
	cfg      RouterConfig
	breakers *breakers
	fallback *prometheus.CounterVec
	recovery *recovery.Metrics // fallbacks, as failure recovery
	shadow   *shadower
	inFlight atomic.Int64 // calls in Execute now (canary.Entry.InFlight)
	traffic  traffic
}

var _ backends.Executor = (*Router)(nil)

// The reasons of gitgate_fallbacks_total.
const (
	fallbackFailed     = "failed"      // Approach 2 failed a read
	fallbackForcedOpen = "forced_open" // its breaker was forced open
	fallbackNotStarted = "not_started" // it refused or was unreachable before starting the call
)

// NewRouter returns a Router.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if _, ok := cfg.Backends[cfg.Default]; !ok {
		return nil, fmt.Errorf("gateway: default backend %q is not configured", cfg.Default)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Router{}
	// Approach 2's calls are counted as they are sent, whichever path
	// sends them (routed, default backend, shadow, prediction).
	execs := make(map[backends.Name]backends.Executor, len(cfg.Backends))
	for name, ex := range cfg.Backends {
		if name == backends.Approach2 {
			ex = countSent(ex, &r.traffic)
		}
		execs[name] = ex
	}
	cfg.Backends = execs
	if observe := cfg.Shadow.Observe; observe != nil && cfg.Drill != nil {
		cfg.Shadow.Observe = func(e canary.Entry) {
			if e.Drill == "" {
				e.Drill = cfg.Drill.ID()
			}
			observe(e)
		}
	}
	*r = Router{cfg: cfg, breakers: newBreakers(backends.Approach2, cfg.Breakers, cfg.Registerer, cfg.Logger), shadow: newShadower(cfg.Shadow),
		fallback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_fallbacks_total", Help: "Calls routed to Approach 2 that Approach 1 served instead, by operation and reason.",
		}, []string{"op", "reason"})}
	for _, info := range backends.Ops() { // every series from zero, for rates and alerts
		for _, reason := range []string{fallbackFailed, fallbackForcedOpen, fallbackNotStarted} {
			r.fallback.WithLabelValues(string(info.Op), reason)
		}
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(r.fallback, newRouterCollector(r))
	}
	r.recovery = recovery.NewMetrics(cfg.Registerer)
	return r, nil
}

// Execute routes req.
func (r *Router) Execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	inFlight := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	r.traffic.calls.Add(1)
	drill := r.cfg.Drill.ID() // a call begun during a drill is the drill's
	name, d := r.pick(ctx, req)
	start := time.Now()
	var done func(backends.Name, error, time.Duration)
	if r.cfg.Metrics != nil {
		done = r.cfg.Metrics.begin(req)
	}
	res, served, fell, err := r.route(ctx, name, req)
	took := time.Since(start)
	if backends.CategoryOf(err).IsBackendFailure() {
		r.traffic.failed.Add(1)
	}
	if done != nil {
		done(served, err, took)
	}
	if r.cfg.Observe != nil {
		e := canary.Entry{At: start, Kind: canary.KindCall, Op: req.Op(), Routed: name, Backend: served, FellBack: fell,
			Category: backends.CategoryOf(err), Duration: took, Stage: d.Stage, InFlight: int(inFlight), Drill: drill}
		if e.Drill == "" {
			e.Drill = r.cfg.Drill.ID() // and so is one that ended during it
		}
		if err == nil {
			e.CostUSD, e.Wait = res.GetServed().CostUSD, res.GetServed().Wait
		}
		r.cfg.Observe(e)
	}
	r.log(ctx, req, served, fell, took, err)
	if err != nil {
		return nil, err
	}
	s := res.GetServed()
	s.Backend, s.FellBack = served.String(), fell
	if !fell {
		r.maybeShadow(req, d, served, res)
	}
	return res, nil
}

// pick chooses the backend, and returns the flags' decision (its shadow
// rate and stage; the zero value without flags): the decision's backend
// when configured, the default otherwise (or when the flags name a backend
// that is not configured).
func (r *Router) pick(ctx context.Context, req backends.Request) (backends.Name, flags.Decision) {
	if r.cfg.Flags == nil {
		return r.cfg.Default, flags.Decision{}
	}
	s := req.GetScope()
	d := r.cfg.Flags.Decide(ctx, string(req.Op()), s.Principal.Project+"/"+s.Workspace)
	if _, ok := r.cfg.Backends[d.Backend]; !ok {
		return r.cfg.Default, d
	}
	return d.Backend, d
}

// route calls the chosen backend; Approach 2 goes through its breaker and
// falls back to the default backend only where that cannot apply a write
// twice (design.md §4): reads always, writes only when Approach 2 provably
// never started them (refused, unreachable, breaker open).
func (r *Router) route(ctx context.Context, name backends.Name, req backends.Request) (backends.Result, backends.Name, bool, error) {
	if name == r.cfg.Default || r.cfg.Flags == nil {
		res, err := r.call(ctx, name, req)
		return res, name, false, err
	}
	res, err := r.breakers.call(req.Op(), func() (backends.Result, error) {
		res, err := r.call(ctx, name, req)
		if err != nil && ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
			err = fmt.Errorf("%w (%w)", err, context.Canceled) // the caller gave up: not the backend's failure
		}
		return res, err
	})
	if err == nil || !r.mayFallBack(ctx, req, err) {
		return res, name, false, err
	}
	reason := fallbackFailed
	switch {
	case errors.Is(err, errForcedOpen):
		reason = fallbackForcedOpen
	case errors.Is(err, backends.ErrNotStarted):
		reason = fallbackNotStarted
	}
	r.fallback.WithLabelValues(string(req.Op()), reason).Inc()
	res, err = r.call(ctx, r.cfg.Default, req)
	var cost float64
	if err == nil {
		cost = res.GetServed().CostUSD
	}
	r.recovery.Record(recovery.Fallback, cost)
	return res, r.cfg.Default, true, err
}

// mayFallBack reports whether err from Approach 2 may be retried on the
// default backend.
func (r *Router) mayFallBack(ctx context.Context, req backends.Request, err error) bool {
	if ctx.Err() != nil {
		return false // the caller gave up
	}
	cat := backends.CategoryOf(err)
	if cat.IsClientMistake() {
		return false // Approach 1 would answer the same
	}
	if errors.Is(err, backends.ErrNotStarted) {
		return true
	}
	return req.Op().IsRead()
}

// call runs req on the named backend, turning a panic into an internal
// error so that no panic reaches a client.
func (r *Router) call(ctx context.Context, name backends.Name, req backends.Request) (res backends.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.cfg.Logger.ErrorContext(ctx, "backend panicked", "op", req.Op(), "backend", name, "panic", fmt.Sprint(p))
			res, err = nil, backends.Errorf(backends.Internal, "internal error in backend %s", name)
		}
	}()
	return r.cfg.Backends[name].Execute(ctx, req)
}

func (r *Router) log(ctx context.Context, req backends.Request, backend backends.Name, fell bool, d time.Duration, err error) {
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
	attrs := []slog.Attr{slog.String("op", string(req.Op())), slog.String("backend", backend.String()),
		slog.String("project", s.Principal.Project), slog.String("agent", s.Principal.Agent),
		slog.String("workspace", s.Workspace), slog.Int64("duration_ms", d.Milliseconds()), slog.Bool("fell_back", fell)}
	if err != nil {
		attrs = append(attrs, slog.String("category", string(backends.CategoryOf(err))), slog.String("err", err.Error()))
	}
	r.cfg.Logger.LogAttrs(ctx, level, msg, attrs...)
}
