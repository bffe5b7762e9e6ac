package gateway

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
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
	// Observe receives every comparison. Required for shadowing to run.
	Observe func(ShadowObservation)
}

// ShadowObservation is one comparison.
type ShadowObservation struct {
	At       time.Time
	Op       backends.Op
	Primary  string // the backend that served the agent
	Shadow   string // the backend that ran the shadow
	Outcome  string // match, mismatch, shadow_error, shadow_timeout, skipped
	Diff     string // for mismatches: what differed (not yet redacted)
	Duration time.Duration
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

// maybe runs req in shadow with probability rate, after the primary call
// has returned: it never delays the agent. Only reads are mirrored; writes
// would need side-effect-free predictions.
func (r *Router) maybeShadow(req backends.Request, rate float64, primary string, res backends.Result) {
	s := r.shadow
	if s == nil || s.cfg.Observe == nil || rate <= 0 || !req.Op().IsRead() || rand.Float64() >= rate {
		return
	}
	other := r.otherBackend(primary)
	if other == "" {
		return
	}
	select {
	case s.slots <- struct{}{}:
	default:
		s.cfg.Observe(ShadowObservation{At: time.Now(), Op: req.Op(), Primary: primary, Shadow: other, Outcome: "skipped"})
		return
	}
	go func() {
		defer func() { <-s.slots }()
		s.cfg.Observe(r.runShadow(req, primary, other, res))
	}()
}

func (r *Router) otherBackend(primary string) string {
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

func (r *Router) runShadow(req backends.Request, primary, other string, res backends.Result) ShadowObservation {
	ctx, cancel := context.WithTimeout(context.Background(), r.shadow.cfg.Budget)
	defer cancel()
	start := time.Now()
	o := ShadowObservation{At: start, Op: req.Op(), Primary: primary, Shadow: other}
	got, err := r.call(ctx, other, req)
	o.Duration = time.Since(start)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		o.Outcome = "shadow_timeout"
	case err != nil:
		o.Outcome, o.Diff = "shadow_error", err.Error()
	default:
		o.Diff, err = canary.Compare(res, got)
		o.Outcome = "match"
		if err != nil || o.Diff != "" {
			o.Outcome = "mismatch"
		}
	}
	return o
}
