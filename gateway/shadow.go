package gateway

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
)

// ShadowConfig configures shadow comparison. Zero values take the defaults.
type ShadowConfig struct {
	// Budget bounds a shadow call; past it the shadow is abandoned and
	// recorded as such. Default 5 s.
	Budget time.Duration
	// MaxConcurrent shadow calls; more are skipped. Default 8.
	MaxConcurrent int
	// Self shadows a backend with itself (A/A), to calibrate the noise
	// comparison must ignore.
	Self bool
	// Observe receives every comparison, as a canary record
	// (KindComparison: Routed is the primary, Backend the shadow, Detail
	// the diff, not yet redacted). Required for shadowing to run.
	Observe func(canary.Entry)
}

type shadower struct {
	cfg   ShadowConfig
	slots chan struct{}
}

func newShadower(cfg ShadowConfig) *shadower {
	if cfg.Budget <= 0 {
		cfg.Budget = 5 * time.Second
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 8
	}
	return &shadower{cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrent)}
}

// maybeShadow runs req in shadow with probability rate, after the primary
// call has returned: it never delays the agent. Reads are mirrored on the
// other backend and the results compared; writes cannot be repeated, so
// the other backend predicts them without side effects
// (backends.Predictor) and its prediction is compared with what the
// primary did (design.md §3).
func (r *Router) maybeShadow(req backends.Request, d flags.Decision, primary backends.Name, res backends.Result) {
	s := r.shadow
	if s == nil || s.cfg.Observe == nil || d.ShadowRate <= 0 || rand.Float64() >= d.ShadowRate {
		return
	}
	other := r.otherBackend(primary)
	if other == "" {
		return
	}
	if _, predicts := r.cfg.Backends[other].(backends.Predictor); !req.Op().IsRead() && !predicts {
		return
	}
	select {
	case s.slots <- struct{}{}:
	default:
		skipped := comparison(time.Now(), req.Op(), primary, other, d.Stage)
		skipped.Outcome = canary.OutcomeSkipped
		s.cfg.Observe(skipped)
		return
	}
	go func() {
		defer func() { <-s.slots }()
		s.cfg.Observe(r.runShadow(req, primary, other, res, d.Stage))
	}()
}

func (r *Router) otherBackend(primary backends.Name) backends.Name {
	if r.shadow.cfg.Self {
		return primary
	}
	for name := range r.cfg.Backends {
		if name != primary {
			return name
		}
	}
	return ""
}

// staleRead is the Detail of a read shadow that looked at the workspace
// after a write the primary's read did not see.
const staleRead = "the workspace changed between the primary's read and the shadow's"

func (r *Router) runShadow(req backends.Request, primary, other backends.Name, res backends.Result, stage int) canary.Entry {
	ctx, cancel := context.WithTimeout(backends.WithShadow(context.Background()), r.shadow.cfg.Budget)
	defer cancel()
	start := time.Now()
	o := comparison(start, req.Op(), primary, other, stage)
	var diff string
	var err error
	if req.Op().IsRead() {
		var got backends.Result
		if got, err = r.call(ctx, other, req); err == nil {
			if movedOn(res, got) {
				o.Outcome, o.Detail, o.Duration = canary.OutcomeStale, staleRead, time.Since(start)
				return o
			}
			diff, err = compare(res, got)
		}
	} else {
		var p *backends.Prediction
		if p, err = r.predict(ctx, other, req, res); err == nil {
			if p.Stale != "" {
				o.Outcome, o.Detail, o.Duration = canary.OutcomeStale, p.Stale, time.Since(start)
				return o
			}
			diff, err = compare(p.Found, p.Expected)
		}
	}
	o.Duration = time.Since(start)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		o.Outcome = canary.OutcomeShadowTimeout
	case err != nil:
		o.Outcome, o.Detail = canary.OutcomeShadowError, err.Error()
	case diff != "":
		o.Outcome, o.Detail = canary.OutcomeMismatch, diff
	default:
		o.Outcome = canary.OutcomeMatch
	}
	return o
}

// movedOn reports whether a read shadow ended on a workspace written
// after the primary's read began: its write count once it finished
// (WriteSeq) differs from the one the primary read from (ReadFrom). Either
// count 0 is unknown (a backend or a workspace that does not say), and
// then the results are compared.
func movedOn(primary, shadow backends.Result) bool {
	from, seen := primary.GetServed().ReadFrom, shadow.GetServed().WriteSeq
	return from != 0 && seen != 0 && seen != from
}

// comparison is the record, its outcome still to be set, of a shadow on
// shadow of a call primary served at stage.
func comparison(at time.Time, op backends.Op, primary, shadow backends.Name, stage int) canary.Entry {
	return canary.Entry{At: at, Kind: canary.KindComparison, Op: op, Routed: primary, Backend: shadow, Stage: stage}
}

// compare returns canary.Compare's diff; a failure to compare is an
// internal error (recorded as shadow_error).
func compare(primary, shadow any) (string, error) {
	diff, err := canary.Compare(primary, shadow)
	if err != nil {
		return "", backends.Errorf(backends.Internal, "comparison failed: %w", err)
	}
	return diff, nil
}

// predict asks the named backend for a prediction of a write the primary
// made, turning a panic into an internal error.
func (r *Router) predict(ctx context.Context, name backends.Name, req backends.Request, primary backends.Result) (p *backends.Prediction, err error) {
	defer func() {
		if v := recover(); v != nil {
			p, err = nil, backends.Errorf(backends.Internal, "internal error in backend %s's prediction: %v", name, v)
		}
	}()
	p, err = r.cfg.Backends[name].(backends.Predictor).Predict(ctx, req, primary)
	if err == nil && p == nil {
		err = backends.Errorf(backends.Internal, "backend %s returned no prediction", name)
	}
	return p, err
}
