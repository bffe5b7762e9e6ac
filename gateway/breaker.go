package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// BreakerConfig configures the circuit breakers in front of Approach 2, one
// per operation. Zero values take the defaults.
type BreakerConfig struct {
	// ConsecutiveFailures trips the breaker. Default 5.
	ConsecutiveFailures uint32
	// FailureRatio over at least MinRequests in Interval trips it too.
	// Defaults 0.5 and 20.
	FailureRatio float64
	MinRequests  uint32
	// Interval is the rolling window of counts (in 10 buckets). Default
	// 60 s. A run of ConsecutiveFailures trips the breaker however long it
	// took.
	Interval time.Duration
	// OpenFor is how long an open breaker refuses before a probe. Default 30 s.
	OpenFor time.Duration
	// Probes are the calls let through when half open. Default 1.
	Probes uint32
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = 5
	}
	if c.FailureRatio == 0 {
		c.FailureRatio = 0.5
	}
	if c.MinRequests == 0 {
		c.MinRequests = 20
	}
	if c.Interval == 0 {
		c.Interval = time.Minute
	}
	if c.OpenFor == 0 {
		c.OpenFor = 30 * time.Second
	}
	if c.Probes == 0 {
		c.Probes = 1
	}
	return c
}

// breakers holds one breaker per operation for a backend.
type breakers struct {
	backend backends.Name
	cfg     BreakerConfig
	log     *slog.Logger
	state   *prometheus.GaugeVec

	mu sync.Mutex
	by map[backends.Op]*breaker
}

// breaker is one operation's breaker with its run of consecutive failures.
// gobreaker's counts forget what is older than Interval, so failures that
// each take long (calls timing out in a silent partition) could never add
// up to ConsecutiveFailures; the run kept here ends only with a success
// (or the breaker opening).
type breaker struct {
	cb     *gobreaker.CircuitBreaker[backends.Result]
	streak atomic.Uint32
	// forced, when set and unexpired, holds the breaker open whatever
	// gobreaker says (ForceBreaker).
	forced atomic.Pointer[ForcedBreaker]
}

// State is the breaker's state.
func (br *breaker) State() gobreaker.State { return br.cb.State() }

// forcedNow returns the force in effect, if any.
func (br *breaker) forcedNow() (*ForcedBreaker, bool) {
	f := br.forced.Load()
	return f, f != nil && time.Now().Before(f.Until)
}

func newBreakers(backend backends.Name, cfg BreakerConfig, reg prometheus.Registerer, log *slog.Logger) *breakers {
	b := &breakers{backend: backend, cfg: cfg.withDefaults(), log: log, by: map[backends.Op]*breaker{},
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitgate_breaker_state", Help: "Circuit breaker state per backend and operation: 0 closed, 1 half-open, 2 open.",
			ConstLabels: prometheus.Labels{"backend": backend.String()},
		}, []string{"op"})}
	if reg != nil {
		reg.MustRegister(b.state)
	}
	for _, info := range backends.Ops() {
		b.state.WithLabelValues(string(info.Op)).Set(0)
	}
	return b
}

func (b *breakers) get(op backends.Op) *breaker {
	b.mu.Lock()
	defer b.mu.Unlock()
	br := b.by[op]
	if br == nil {
		br = &breaker{}
		br.cb = gobreaker.NewCircuitBreaker[backends.Result](b.settings(op, br))
		b.by[op] = br
	}
	return br
}

// isSuccessful: timeouts (the client's per-call deadlines, which turn a
// silent partition into failures) and unavailability count as failures; a
// caller's mistakes say the backend works.
func isSuccessful(err error) bool {
	return err == nil || backends.CategoryOf(err).IsClientMistake()
}

// isExcluded: the caller's own cancellation says nothing about the
// backend, either way: it neither counts as a failure nor breaks a run of
// them.
func isExcluded(err error) bool {
	return errors.Is(err, context.Canceled) || backends.CategoryOf(err) == backends.Canceled
}

func (b *breakers) settings(op backends.Op, br *breaker) gobreaker.Settings {
	c, streak := b.cfg, &br.streak
	return gobreaker.Settings{
		// A rolling window (of 10 buckets) rather than gobreaker's fixed one:
		// a new fixed window starts a new generation, which drops the
		// outcome of every call that straddles it, so calls slower than
		// the window could never trip the breaker.
		Name: b.backend.String() + "/" + string(op), MaxRequests: c.Probes, Interval: c.Interval, BucketPeriod: max(c.Interval/10, time.Millisecond),
		Timeout: c.OpenFor,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			return n.ConsecutiveFailures >= c.ConsecutiveFailures || streak.Load() >= c.ConsecutiveFailures ||
				(n.Requests >= c.MinRequests && float64(n.TotalFailures) >= c.FailureRatio*float64(n.Requests))
		},
		IsSuccessful: isSuccessful,
		IsExcluded:   isExcluded,
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				streak.Store(0) // a new run starts after the open period
			}
			if _, forced := br.forcedNow(); !forced { // a forced breaker shows open
				b.state.WithLabelValues(string(op)).Set(float64(to))
			}
			b.log.Warn("circuit breaker changed state", "breaker", name, "from", from.String(), "to", to.String())
		},
	}
}

// call runs fn through op's breaker. A refusal by the breaker (open or
// half-open and busy) is an unavailable error marked as never started.
func (b *breakers) call(op backends.Op, fn func() (backends.Result, error)) (backends.Result, error) {
	br := b.get(op)
	if f, on := br.forcedNow(); on {
		return nil, backends.NotStarted(backends.Errorf(backends.Unavailable, "%s is unavailable for %s (circuit breaker forced open by %s: %w)",
			b.backend, op, f.By, errForcedOpen))
	}
	res, err := br.cb.Execute(func() (backends.Result, error) {
		res, err := fn()
		switch {
		case isExcluded(err):
		case isSuccessful(err):
			br.streak.Store(0)
		default:
			br.streak.Add(1) // before gobreaker counts it, so that ReadyToTrip sees it
		}
		return res, err
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, backends.NotStarted(backends.Errorf(backends.Unavailable, "%s is unavailable for %s (circuit breaker open)", b.backend, op))
	}
	return res, err
}

// errForcedOpen is the cause of a call refused by a breaker forced open.
var errForcedOpen = errors.New("forced open")

// ForcedBreaker is an operation's Approach 2 breaker held open by an
// operator (Hystrix's forceOpen): its calls fall back to Approach 1 as
// with an open breaker, until released or Until.
type ForcedBreaker struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
}

// Breaker states shown besides gobreaker's.
const breakerForcedOpen = "forced-open"

// ErrUnknownOp is ForceBreaker's and ReleaseBreaker's error for an
// operation that does not exist.
var ErrUnknownOp = errors.New("unknown operation")

// ForceBreaker holds op's Approach 2 breaker open on this gateway for ttl
// (or until ReleaseBreaker): op's calls routed to Approach 2 are refused
// before they start and served by Approach 1. Forcing it again replaces
// the force (by, reason, until).
func (r *Router) ForceBreaker(op backends.Op, by, reason string, ttl time.Duration) (ForcedBreaker, error) {
	if _, ok := backends.Info(op); !ok {
		return ForcedBreaker{}, fmt.Errorf("%w %q", ErrUnknownOp, op)
	}
	if ttl <= 0 {
		return ForcedBreaker{}, errors.New("forcing a breaker open needs a positive ttl")
	}
	b := r.breakers
	br := b.get(op)
	now := time.Now().UTC()
	f := &ForcedBreaker{By: by, Reason: reason, Since: now, Until: now.Add(ttl)}
	old := br.forced.Swap(f)
	b.state.WithLabelValues(string(op)).Set(float64(gobreaker.StateOpen))
	b.log.Warn("circuit breaker forced open", "breaker", b.backend.String()+"/"+string(op), "by", by, "reason", reason, "until", f.Until)
	if old == nil {
		r.breakerChanged(BreakerChange{Op: op, Forced: true, By: by, Reason: reason})
	}
	time.AfterFunc(ttl, func() {
		if br.forced.CompareAndSwap(f, nil) {
			const why = "the force's ttl passed"
			b.unforced(op, br, f.By, why)
			r.breakerChanged(BreakerChange{Op: op, By: f.By, Reason: why})
		}
	})
	return *f, nil
}

// ReleaseBreaker ends the force on op's breaker; it then follows its
// calls again (in the state gobreaker has). released is false when it was
// not forced.
func (r *Router) ReleaseBreaker(op backends.Op, by, reason string) (released bool, err error) {
	if _, ok := backends.Info(op); !ok {
		return false, fmt.Errorf("%w %q", ErrUnknownOp, op)
	}
	br := r.breakers.get(op)
	f := br.forced.Swap(nil)
	if f == nil {
		return false, nil
	}
	r.breakers.unforced(op, br, by, reason)
	r.breakerChanged(BreakerChange{Op: op, By: by, Reason: reason})
	return true, nil
}

// unforced shows op's breaker's own state again once its force ended.
func (b *breakers) unforced(op backends.Op, br *breaker, by, reason string) {
	b.state.WithLabelValues(string(op)).Set(float64(br.State()))
	b.log.Warn("circuit breaker released from forced open", "breaker", b.backend.String()+"/"+string(op), "by", by, "reason", reason,
		"state", br.State().String())
}

// breakerChanged hands a force's start or end to RouterConfig.BreakerChanged.
func (r *Router) breakerChanged(c BreakerChange) {
	if r.cfg.BreakerChanged != nil {
		r.cfg.BreakerChanged(c)
	}
}

// BreakerChange is a breaker forced open (Forced) or released, by whom and
// why, for the flag change log.
type BreakerChange struct {
	Op         backends.Op
	Forced     bool
	By, Reason string
}

// ForcedBreakers returns the breakers forced open now, by operation.
func (r *Router) ForcedBreakers() map[string]ForcedBreaker {
	out := map[string]ForcedBreaker{}
	r.breakers.mu.Lock()
	defer r.breakers.mu.Unlock()
	for op, br := range r.breakers.by {
		if f, on := br.forcedNow(); on {
			out[string(op)] = *f
		}
	}
	return out
}
