package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/prometheus/client_golang/prometheus"
)

// Creator makes sandboxes for a Manager and takes them back: the Provider
// itself (cold creation), or a Pool of warm ones.
type Creator interface {
	Create(ctx context.Context, opts CreateOptions) (Info, error)
	Destroy(ctx context.Context, id string) error
}

// PoolConfig configures a Pool. Zero values take the documented defaults.
type PoolConfig struct {
	Provider Provider // required
	// MinIdle is how many unbound sandboxes are kept ready; 0 keeps none
	// (sandboxes are created on demand: on E2B every idle one is billed).
	MinIdle int
	// MaxSize bounds all live sandboxes, idle and bound. Default 16.
	MaxSize int
	// MaxQueue bounds callers waiting for a sandbox; more get
	// resource_exhausted at once. Default 64.
	MaxQueue int
	// AcquireTimeout bounds a wait in the queue. Default 10 s.
	AcquireTimeout time.Duration
	// RefillBackoff is the first delay after a failed refill; it doubles up
	// to MaxRefillBackoff (default 100 ms and 30 s).
	RefillBackoff, MaxRefillBackoff time.Duration
	// Prepare, if set, readies each new idle sandbox before it counts as
	// ready (it clones seed repositories into it, say: approach1's
	// Executor.Seeds) and returns its Info as the pool hands it out. A
	// sandbox it fails on is destroyed, and the failure counts as a failed
	// refill. Sandboxes created cold for a caller that found none idle are
	// not prepared: the caller would wait for it. If nil, none is.
	Prepare    func(ctx context.Context, info Info) (Info, error)
	Registerer prometheus.Registerer // if nil, metrics are not registered
	Logger     *slog.Logger          // if nil, slog.Default()
}

// Pool keeps warm sandboxes. A sandbox is handed out unbound and belongs to
// the owner it is handed to until it is destroyed; it never goes back to
// the idle set, so it can never serve another project.
type Pool struct {
	cfg     PoolConfig
	metrics *poolMetrics
	refill  chan struct{}

	mu      sync.Mutex
	idle    []Info
	live    int           // idle + bound + being created
	waiters int           // callers in the queue
	freed   chan struct{} // closed and replaced whenever capacity may have appeared
	closed  bool
}

var _ Creator = (*Pool)(nil)

// NewPool returns a Pool; call Run to fill it and keep it filled.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if cfg.Provider == nil {
		return nil, errors.New("sandbox: PoolConfig needs a Provider")
	}
	cfg = cfg.withDefaults()
	p := &Pool{cfg: cfg, refill: make(chan struct{}, 1), freed: make(chan struct{})}
	p.metrics = newPoolMetrics(cfg.Registerer, cfg.Provider.Name(), p.sizes)
	return p, nil
}

func (c PoolConfig) withDefaults() PoolConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	c.MinIdle = max(c.MinIdle, 0)
	def(&c.MaxSize, 16)
	def(&c.MaxQueue, 64)
	c.MinIdle = min(c.MinIdle, c.MaxSize)
	if c.AcquireTimeout <= 0 {
		c.AcquireTimeout = 10 * time.Second
	}
	if c.RefillBackoff <= 0 {
		c.RefillBackoff = 100 * time.Millisecond
	}
	if c.MaxRefillBackoff <= 0 {
		c.MaxRefillBackoff = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Create hands out a warm sandbox bound to opts.Owner, or creates one when
// none is idle and the pool has room, or waits in the bounded queue.
func (p *Pool) Create(ctx context.Context, opts CreateOptions) (Info, error) {
	start := time.Now()
	info, warm, err := p.take(ctx)
	if err == nil && !warm {
		info, err = p.createCold(ctx, opts)
	}
	p.metrics.observe(time.Since(start), warm, err)
	if err != nil {
		return Info{}, err
	}
	info.Owner = opts.Owner
	p.kick()
	return info, nil
}

// take returns an idle sandbox (warm), or reserves room for a cold one, or
// waits in the queue for either.
func (p *Pool) take(ctx context.Context) (Info, bool, error) {
	if info, warm, ok, err := p.tryTake(false); ok || err != nil {
		return info, warm, err
	}
	defer func() {
		p.mu.Lock()
		p.waiters--
		p.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.AcquireTimeout)
	defer cancel()
	for {
		p.mu.Lock()
		freed := p.freed
		p.mu.Unlock()
		if info, warm, ok, err := p.tryTake(true); ok || err != nil {
			return info, warm, err
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return Info{}, false, p.exhausted("no sandbox became free within " + p.cfg.AcquireTimeout.String())
		}
	}
}

// tryTake takes an idle sandbox or reserves room without waiting; ok is
// false when the caller must wait. The first failed try of a caller joins
// the queue (queued false), or is refused when the queue is full.
func (p *Pool) tryTake(queued bool) (info Info, warm, ok bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return Info{}, false, false, backends.Errorf(backends.Unavailable, "the sandbox pool is closed")
	case len(p.idle) > 0:
		info = p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		return info, true, true, nil
	case p.live < p.cfg.MaxSize:
		p.live++
		return Info{}, false, true, nil
	case queued:
		return Info{}, false, false, nil
	case p.waiters >= p.cfg.MaxQueue:
		return Info{}, false, false, p.exhausted("the wait queue is full")
	}
	p.waiters++
	return Info{}, false, false, nil
}

func (p *Pool) exhausted(why string) error {
	return backends.Errorf(backends.ResourceExhausted, "no sandbox available: all %d are in use and %s; retry later", p.cfg.MaxSize, why)
}

func (p *Pool) createCold(ctx context.Context, opts CreateOptions) (Info, error) {
	info, err := p.cfg.Provider.Create(ctx, opts)
	if err != nil {
		p.release()
	}
	return info, err
}

// Destroy destroys a sandbox handed out by the pool and frees its room.
func (p *Pool) Destroy(ctx context.Context, id string) error {
	err := p.cfg.Provider.Destroy(ctx, id)
	p.release()
	p.kick()
	return err
}

// release gives back one unit of room and wakes the queue.
func (p *Pool) release() {
	p.mu.Lock()
	p.live--
	close(p.freed)
	p.freed = make(chan struct{})
	p.mu.Unlock()
}

func (p *Pool) kick() {
	select {
	case p.refill <- struct{}{}:
	default:
	}
}

func (p *Pool) sizes() (idle, bound, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle), p.live - len(p.idle), p.waiters
}

// QueueDepth returns how many callers wait for a sandbox.
func (p *Pool) QueueDepth() int {
	_, _, w := p.sizes()
	return w
}

// Ready reports whether the pool holds at least MinIdle warm sandboxes
// (or is at its maximum size), for readiness checks.
func (p *Pool) Ready() bool {
	idle, bound, _ := p.sizes()
	return idle >= p.cfg.MinIdle || idle+bound >= p.cfg.MaxSize
}

// Run fills the pool to MinIdle and keeps it there until ctx ends, backing
// off (doubling, with jitter) while the provider fails. On return the idle
// sandboxes are destroyed.
func (p *Pool) Run(ctx context.Context) {
	backoff := p.cfg.RefillBackoff
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer p.drain(context.WithoutCancel(ctx))
	for {
		if err := p.fill(ctx); err != nil {
			p.cfg.Logger.Warn("sandbox pool refill failed; backing off", "err", err, "backoff", backoff)
			if !pause.For(ctx, backoff+time.Duration(rand.Int64N(int64(backoff)/2+1))) {
				return
			}
			backoff = min(2*backoff, p.cfg.MaxRefillBackoff)
			continue
		}
		backoff = p.cfg.RefillBackoff
		select {
		case <-ctx.Done():
			return
		case <-p.refill:
		case <-tick.C:
		}
	}
}

// fill creates sandboxes until MinIdle are idle or the pool is full.
func (p *Pool) fill(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.closed || len(p.idle) >= p.cfg.MinIdle || p.live >= p.cfg.MaxSize {
			p.mu.Unlock()
			return nil
		}
		p.live++
		p.mu.Unlock()
		info, err := p.newIdle(ctx)
		if err != nil {
			p.release()
			return err
		}
		p.mu.Lock()
		p.idle = append(p.idle, info)
		close(p.freed)
		p.freed = make(chan struct{})
		p.mu.Unlock()
	}
}

// newIdle creates a sandbox for the idle set and prepares it; one the
// preparation failed on is destroyed.
func (p *Pool) newIdle(ctx context.Context) (Info, error) {
	info, err := p.cfg.Provider.Create(ctx, CreateOptions{})
	if err != nil || p.cfg.Prepare == nil {
		return info, err
	}
	ready, err := p.cfg.Prepare(ctx, info)
	if err != nil {
		if derr := p.cfg.Provider.Destroy(context.WithoutCancel(ctx), info.ID); derr != nil {
			p.cfg.Logger.Warn("destroying a sandbox whose preparation failed failed", "sandbox", info.ID, "err", derr)
		}
		return Info{}, fmt.Errorf("preparing a new warm sandbox: %w", err)
	}
	return ready, nil
}

func (p *Pool) drain(ctx context.Context) {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, info := range idle {
		_ = p.Destroy(ctx, info.ID)
	}
}
