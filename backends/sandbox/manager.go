package sandbox

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultIdleTTL is how long a sandbox may stay unused before it is reaped.
const DefaultIdleTTL = time.Hour

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	Provider Provider     // required
	Bindings BindingStore // required; bindings of reaped sandboxes are deleted from it
	// Creator makes and destroys the manager's sandboxes. If nil, the
	// Provider does (cold creation); a Pool hands out warm ones.
	Creator Creator
	// IdleTTL is how long a sandbox may stay unused before it is reaped. If
	// zero, DefaultIdleTTL is used.
	IdleTTL time.Duration
	// ReapInterval is how often Run looks for idle sandboxes. If zero, one
	// minute (or IdleTTL/4 when that is shorter) is used.
	ReapInterval time.Duration
	// Registerer receives the manager's metrics. If nil, they are not
	// registered.
	Registerer prometheus.Registerer
	// Logger is used for lifecycle events. If nil, slog.Default() is used.
	Logger *slog.Logger
	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time
	// KeepOnClose leaves the sandboxes alive at Close, for providers whose
	// sandboxes other processes share (they adopt them; idle ones are
	// reaped by whichever process sees them idle).
	KeepOnClose bool
	// Preserve, if set, is called before a sandbox is destroyed (reaped
	// idle, or at Close when forced is true) to save what its workspaces
	// would lose with it. When it fails the sandbox is not destroyed: an
	// idle one is retried at the next reap, and at Close it is left
	// running. See reap.go.
	Preserve func(ctx context.Context, info Info, forced bool) error
	// OnEnd, if set, is called when the manager ends a sandbox's life: it
	// destroyed it (reaped idle, at Close, an orphan swept) or forgot it
	// (found gone). life runs from when the manager created it (by its
	// clock, Now) or, for one it adopted or swept, from the provider's
	// Info.Created; costUSD is life at the provider's per-second price
	// (Coster; 0 when it bills nothing). It must not block.
	OnEnd func(id string, life time.Duration, costUSD float64)
	// Attribution bounds the project and agent labels of the cost the
	// manager attributes (Charge, and sandbox lifetimes as they end).
	Attribution Attribution
	// Usage measures the sandboxes' CPU and memory. If nil, the Provider
	// does when it is a UsageReader (a decorated provider that hides it
	// can hand over the inner one here).
	Usage UsageReader
	// UsageInterval, with a provider that can measure its sandboxes
	// (UsageReader), is how often Run samples their CPU and memory use
	// into the utilisation gauges. Zero: DefaultUsageInterval; negative:
	// never.
	UsageInterval time.Duration
}

// Manager binds owners to sandboxes: it reuses an owner's sandbox while it is
// in use, creates one when there is none, and reaps sandboxes idle for longer
// than the TTL. Safe for concurrent use.
type Manager struct {
	cfg     ManagerConfig
	metrics *managerMetrics
	attr    *attribution
	usage   *usageGauges

	mu      sync.Mutex
	slots   map[Owner]*slot
	byID    map[string]*slot
	closing bool
}

// slot is one owner's sandbox. Its mutex serialises creation so that
// concurrent first calls of an owner create one sandbox, not several.
type slot struct {
	owner    Owner
	create   sync.Mutex
	info     *Info
	born     time.Time // when info's sandbox began, for OnEnd
	lastUsed time.Time
	lastTTL  time.Time // when the provider's TTL was last extended
	inFlight int
	charged  float64 // cost of commands attributed by Charge, in US dollars
}

// NewManager returns a Manager; call Run to start reaping.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Provider == nil || cfg.Bindings == nil {
		return nil, errors.New("sandbox: ManagerConfig needs Provider and Bindings")
	}
	if cfg.Creator == nil {
		cfg.Creator = cfg.Provider
	}
	if r, ok := cfg.Provider.(UsageReader); ok && cfg.Usage == nil {
		cfg.Usage = r
	}
	if cfg.IdleTTL <= 0 {
		cfg.IdleTTL = DefaultIdleTTL
	}
	if cfg.ReapInterval <= 0 {
		cfg.ReapInterval = min(time.Minute, cfg.IdleTTL/4)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg, slots: map[Owner]*slot{}, byID: map[string]*slot{}}
	m.metrics = newManagerMetrics(cfg.Registerer, cfg.Provider.Name())
	m.attr = newAttribution(cfg.Registerer, cfg.Provider.Name(), cfg.Attribution)
	m.usage = newUsageGauges(cfg.Registerer, cfg.Provider.Name())
	return m, nil
}

// Provider returns the provider the manager creates sandboxes with.
func (m *Manager) Provider() Provider { return m.cfg.Provider }

// IdleTTL returns the idle TTL in force.
func (m *Manager) IdleTTL() time.Duration { return m.cfg.IdleTTL }

// Acquire returns owner's sandbox, creating it if needed, and marks it busy
// until release is called. A busy sandbox is never reaped.
func (m *Manager) Acquire(ctx context.Context, owner Owner) (info Info, release func(), err error) {
	s, err := m.lockedSlot(owner)
	if err != nil {
		return Info{}, nil, err
	}
	defer s.create.Unlock()
	source := Reused
	if s.info == nil {
		source = Adopted
		if !m.adoptOwned(ctx, owner, s) {
			if err := m.create(ctx, owner, s); err != nil {
				return Info{}, nil, err
			}
			source = Created
		}
	}
	m.attr.acquired(source)
	m.markBusy(s)
	m.extendTTL(ctx, s)
	return *s.info, m.releaser(s), nil
}

// Use marks the sandbox with the given id busy, for operations on a workspace
// that is already bound to it. A sandbox this manager did not create (another
// process shares the provider and the bindings) is adopted. ok is false when
// the sandbox is gone (reaped or destroyed).
func (m *Manager) Use(ctx context.Context, id string) (release func(), ok bool) {
	m.mu.Lock()
	s := m.byID[id]
	m.mu.Unlock()
	source := Reused
	if s == nil {
		if s = m.adopt(ctx, id); s == nil {
			return nil, false
		}
		source = Adopted
	}
	s.create.Lock()
	defer s.create.Unlock()
	if s.info == nil || s.info.ID != id {
		return nil, false
	}
	m.attr.acquired(source)
	m.markBusy(s)
	m.extendTTL(ctx, s)
	return m.releaser(s), true
}

// Forget drops a sandbox its provider found gone: its owner gets a new one
// on the next Acquire, and it is destroyed where the provider still knows
// it. Its bindings stay, for the executor to repair or report on the
// workspace's next operation.
func (m *Manager) Forget(ctx context.Context, id string) {
	m.mu.Lock()
	s := m.byID[id]
	if s != nil {
		delete(m.byID, id)
		if m.slots[s.owner] == s {
			delete(m.slots, s.owner)
		}
	}
	m.mu.Unlock()
	if s == nil {
		return
	}
	s.create.Lock()
	ended := s.info != nil && s.info.ID == id
	if ended {
		s.info = nil
		m.metrics.active.Dec()
	}
	born := s.born
	s.create.Unlock()
	m.mu.Lock()
	charged := s.charged
	m.mu.Unlock()
	var life time.Duration
	var cost float64
	if ended {
		life, cost = m.lifeOf(id, born)
	}
	if err := m.cfg.Creator.Destroy(context.WithoutCancel(ctx), id); err != nil {
		m.cfg.Logger.Debug("destroying a sandbox that is gone failed", "sandbox", id, "err", err)
	}
	if ended {
		m.ended(id, s.owner, charged, life, cost)
	}
	m.cfg.Logger.Warn("sandbox gone; its owner gets a new one", "sandbox", id, "owner", s.owner.String())
}

// adopt takes charge of a live sandbox another process created. Adopted
// sandboxes are found by id only: the owner keeps getting its own sandbox
// from Acquire.
func (m *Manager) adopt(ctx context.Context, id string) *slot {
	info, err := m.cfg.Provider.Lookup(ctx, id)
	if err != nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return nil
	}
	if s := m.byID[id]; s != nil {
		return s
	}
	s := &slot{owner: info.Owner, info: &info, born: m.bornAt(info), lastUsed: m.cfg.Now(), lastTTL: m.cfg.Now()}
	m.byID[id] = s
	m.metrics.active.Inc()
	m.cfg.Logger.Info("sandbox adopted", "sandbox", id, "owner", info.Owner.String())
	return s
}

// bornAt is when a sandbox the manager did not create began: the
// provider's Info.Created, or now when the provider does not say.
func (m *Manager) bornAt(info Info) time.Time {
	if !info.Created.IsZero() {
		return info.Created
	}
	return m.cfg.Now()
}

// lifeOf is how long sandbox id has lived since born, and what that cost
// at the provider's price; ask before destroying it (a provider may forget
// a destroyed sandbox's price).
func (m *Manager) lifeOf(id string, born time.Time) (time.Duration, float64) {
	life := max(0, m.cfg.Now().Sub(born))
	var cost float64
	if c, ok := m.cfg.Provider.(Coster); ok {
		cost = life.Seconds() * c.CostPerSecond(id)
	}
	return life, cost
}

// ended reports a sandbox's end to OnEnd, and attributes to its owner
// what its life cost beyond the commands already charged to its users.
func (m *Manager) ended(id string, owner Owner, charged float64, life time.Duration, cost float64) {
	m.attr.charge(owner, cost-charged)
	if m.cfg.OnEnd != nil {
		m.cfg.OnEnd(id, life, cost)
	}
}

// releaser returns the release function of one use of s; calling it more
// than once has no further effect, so a double release can never make a
// busy sandbox look idle.
func (m *Manager) releaser(s *slot) func() {
	var once sync.Once
	return func() { once.Do(func() { m.markDone(s) }) }
}

// lockedSlot returns owner's slot with its create lock held. A slot may be
// dropped from the map by the reaper between lookup and locking; then the
// lookup is repeated, so that an owner never has two live slots.
func (m *Manager) lockedSlot(owner Owner) (*slot, error) {
	for {
		s, err := m.slotFor(owner)
		if err != nil {
			return nil, err
		}
		s.create.Lock()
		m.mu.Lock()
		current := m.slots[owner] == s
		m.mu.Unlock()
		if current {
			return s, nil
		}
		s.create.Unlock()
	}
}

func (m *Manager) slotFor(owner Owner) (*slot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return nil, errors.New("sandbox: manager is closed")
	}
	s := m.slots[owner]
	if s == nil {
		s = &slot{owner: owner}
		m.slots[owner] = s
	}
	return s, nil
}

func (m *Manager) create(ctx context.Context, owner Owner, s *slot) error {
	start := m.cfg.Now()
	info, err := m.cfg.Creator.Create(ctx, CreateOptions{Owner: owner, TTL: m.cfg.IdleTTL})
	m.metrics.observeCreate(m.cfg.Now().Sub(start), err)
	if err != nil {
		return err
	}
	m.mu.Lock()
	closing := m.closing
	if !closing {
		s.info, s.born = &info, start
		s.lastTTL = m.cfg.Now()
		m.byID[info.ID] = s
	}
	m.mu.Unlock()
	if closing { // Close ran while the provider was creating: nothing may outlive it
		_ = m.cfg.Creator.Destroy(context.WithoutCancel(ctx), info.ID)
		return errors.New("sandbox: manager is closed")
	}
	m.metrics.active.Inc()
	m.recordOwner(ctx, info)
	m.cfg.Logger.Info("sandbox created", "sandbox", info.ID, "owner", owner.String(),
		"provider", m.cfg.Provider.Name(), "duration_ms", m.cfg.Now().Sub(start).Milliseconds())
	return nil
}

func (m *Manager) markBusy(s *slot) {
	m.mu.Lock()
	s.inFlight++
	s.lastUsed = m.cfg.Now()
	m.mu.Unlock()
}

func (m *Manager) markDone(s *slot) {
	m.mu.Lock()
	s.inFlight--
	s.lastUsed = m.cfg.Now()
	m.mu.Unlock()
}

// extendTTL tells the provider the sandbox is in use, at most four times per
// TTL so that providers with a remote API are not called on every operation.
// Called with s.create held.
func (m *Manager) extendTTL(ctx context.Context, s *slot) {
	now := m.cfg.Now()
	if now.Sub(s.lastTTL) < m.cfg.IdleTTL/4 {
		return
	}
	if err := m.cfg.Provider.SetTTL(ctx, s.info.ID, m.cfg.IdleTTL); err != nil {
		m.cfg.Logger.Warn("sandbox TTL not extended", "sandbox", s.info.ID, "err", err)
		return
	}
	s.lastTTL = now
}
