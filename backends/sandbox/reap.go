package sandbox

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Run reaps idle sandboxes every ReapInterval, and samples their CPU and
// memory use every UsageInterval (SampleUsage), until ctx is done.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.ReapInterval)
	defer t.Stop()
	var sample <-chan time.Time // nil (never) unless the provider measures usage
	if d := m.usageInterval(); d > 0 {
		st := time.NewTicker(d)
		defer st.Stop()
		sample = st.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.ReapIdle(ctx)
		case <-sample:
			m.SampleUsage(ctx)
		}
	}
}

// ReapIdle destroys every sandbox that is not busy and has been idle for at
// least the TTL, deleting its workspace bindings; ManagerConfig.Preserve
// first saves what its workspaces would lose, and a sandbox whose work
// could not be saved is kept until a later reap succeeds (one found gone
// meanwhile is dropped, its bindings kept for the executor to report the
// loss). It then keeps the provider's own lifetime of the remaining
// sandboxes ahead of the reaper (outliveProviderTTL). It returns how many
// sandboxes it dropped.
func (m *Manager) ReapIdle(ctx context.Context) int {
	n := 0
	for _, s := range m.idleSlots() {
		if m.reap(ctx, s, false) {
			n++
		}
	}
	m.outliveProviderTTL(ctx)
	return n
}

// outliveProviderTTL keeps the reaper ahead of providers that end a
// sandbox at its own TTL (E2B), when work is saved before reaping
// (ManagerConfig.Preserve): the provider's lifetime runs from the last
// extension (see extendTTL), which may come before the last use, so it
// could end before the sandbox has idled for IdleTTL — taking unsaved work
// with it before Preserve could save it. An idle sandbox whose provider
// lifetime ends within a margin (two reap intervals and a minute, at most
// a quarter of the TTL) is extended by IdleTTL; so is one kept because its
// work could not be saved, for the next attempt. Sandboxes being created
// are skipped until the next reap.
func (m *Manager) outliveProviderTTL(ctx context.Context) {
	if m.cfg.Preserve == nil {
		return
	}
	margin := min(2*m.cfg.ReapInterval+time.Minute, m.cfg.IdleTTL/4)
	m.mu.Lock()
	slots := make([]*slot, 0, len(m.byID))
	for _, s := range m.byID {
		slots = append(slots, s)
	}
	m.mu.Unlock()
	for _, s := range slots {
		if !s.create.TryLock() {
			continue
		}
		now := m.cfg.Now()
		if s.info != nil && now.Sub(s.lastTTL) >= m.cfg.IdleTTL-margin {
			if err := m.cfg.Provider.SetTTL(ctx, s.info.ID, m.cfg.IdleTTL); err != nil {
				m.cfg.Logger.Warn("idle sandbox's lifetime not extended; the provider may end it before its work is saved",
					"sandbox", s.info.ID, "err", err)
			} else {
				s.lastTTL = now
			}
		}
		s.create.Unlock()
	}
}

// Close destroys every sandbox the manager created (unless KeepOnClose),
// after ManagerConfig.Preserve has saved their unsaved work; a sandbox
// whose work could not be saved is left running, with a WARN line.
// Sandboxes of the local provider do not outlive the process that made them;
// remote ones would be reaped by their own TTL, but closing frees them at
// once.
func (m *Manager) Close(ctx context.Context) {
	m.mu.Lock()
	m.closing = true
	if m.cfg.KeepOnClose {
		m.mu.Unlock()
		return
	}
	slots := make([]*slot, 0, len(m.byID))
	for _, s := range m.byID {
		slots = append(slots, s)
	}
	m.mu.Unlock()
	for _, s := range slots {
		m.reap(ctx, s, true)
	}
}

func (m *Manager) idleSlots() []*slot {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	var idle []*slot
	for _, s := range m.byID {
		if s.inFlight == 0 && now.Sub(s.lastUsed) >= m.cfg.IdleTTL {
			idle = append(idle, s)
		}
	}
	return idle
}

// reap destroys s's sandbox unless it became busy meanwhile (or force).
func (m *Manager) reap(ctx context.Context, s *slot, force bool) bool {
	s.create.Lock()
	defer s.create.Unlock()
	m.mu.Lock()
	busy := s.inFlight > 0 || m.cfg.Now().Sub(s.lastUsed) < m.cfg.IdleTTL
	info := s.info
	m.mu.Unlock()
	if info == nil || (busy && !force) {
		return false
	}
	if !force && m.usedElsewhere(ctx, info.ID) {
		m.mu.Lock()
		s.lastUsed = m.cfg.Now()
		m.mu.Unlock()
		return false
	}
	saved, gone := m.preserve(ctx, *info, force)
	if !saved && !gone {
		return false
	}
	// A sandbox found gone while saving keeps its bindings, as Forget
	// does: the executor tells the agent what was lost on its next call.
	if !gone {
		if err := m.cfg.Bindings.DeleteSandbox(ctx, info.ID); err != nil {
			m.cfg.Logger.Warn("sandbox bindings not deleted; keeping sandbox", "sandbox", info.ID, "err", err)
			return false
		}
	}
	life, cost := m.lifeOf(info.ID, s.born)
	if err := m.cfg.Creator.Destroy(ctx, info.ID); err != nil {
		m.cfg.Logger.Warn("sandbox destroy failed", "sandbox", info.ID, "err", err)
	}
	m.mu.Lock()
	charged := s.charged
	m.mu.Unlock()
	m.ended(info.ID, s.owner, charged, life, cost) // the manager drops it either way
	m.mu.Lock()
	delete(m.byID, info.ID)
	if m.slots[s.owner] == s {
		delete(m.slots, s.owner) // callers holding s re-check (lockedSlot)
	}
	s.info = nil
	m.mu.Unlock()
	m.metrics.active.Dec()
	m.metrics.reaped.Inc()
	m.cfg.Logger.Info("sandbox reaped", "sandbox", info.ID, "owner", info.Owner.String(), "forced", force)
	return true
}

// preserve runs ManagerConfig.Preserve before info's sandbox is destroyed
// and reports whether the work was saved (the sandbox may go) or the
// sandbox was found gone (ErrGone: there is nothing left to save or keep).
// Any other failure keeps the sandbox: never is unsaved work destroyed
// silently.
func (m *Manager) preserve(ctx context.Context, info Info, force bool) (saved, gone bool) {
	if m.cfg.Preserve == nil {
		return true, false
	}
	err := m.cfg.Preserve(ctx, info, force)
	if err == nil {
		return true, false
	}
	if errors.Is(err, ErrGone) {
		m.cfg.Logger.Warn("sandbox gone before the unsaved work of its workspaces could be saved; their next operations report the loss",
			"sandbox", info.ID, "owner", info.Owner.String(), "err", err)
		return false, true
	}
	m.metrics.preserveFailed.Inc()
	if force {
		m.cfg.Logger.Warn("sandbox left running at shutdown: the unsaved work of its workspaces could not be saved",
			"sandbox", info.ID, "owner", info.Owner.String(), "err", err)
	} else {
		m.cfg.Logger.Warn("idle sandbox kept: the unsaved work of its workspaces could not be saved; retrying at the next reap",
			"sandbox", info.ID, "owner", info.Owner.String(), "err", err)
	}
	return false, false
}

// usedElsewhere reports whether the shared binding store saw the sandbox
// used recently (by another process); on doubt it says yes.
func (m *Manager) usedElsewhere(ctx context.Context, id string) bool {
	tracker, ok := m.cfg.Bindings.(UsageTracker)
	if !ok {
		return false
	}
	used, err := tracker.UsedWithin(ctx, id)
	return used || err != nil
}

type managerMetrics struct {
	createSeconds *prometheus.HistogramVec
	active        prometheus.Gauge
	reaped        prometheus.Counter
	swept         prometheus.Counter
	// preserveFailed counts sandboxes kept because Preserve failed.
	preserveFailed prometheus.Counter
}

func newManagerMetrics(reg prometheus.Registerer, provider string) *managerMetrics {
	labels := prometheus.Labels{"provider": provider}
	mm := &managerMetrics{
		createSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gitgate_sandbox_create_seconds", Help: "Time to create a sandbox, by outcome.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}, []string{"outcome"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitgate_sandboxes_active", Help: "Sandboxes currently alive.", ConstLabels: labels,
		}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitgate_sandboxes_reaped_total", Help: "Sandboxes destroyed after idling past the TTL or at shutdown.", ConstLabels: labels,
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitgate_sandboxes_swept_total", Help: "Orphaned sandboxes destroyed: no live process held them and they held no workspace (warm sandboxes of a killed process).", ConstLabels: labels,
		}),
		preserveFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitgate_sandbox_preserve_failures_total", Help: "Times a sandbox was kept (not destroyed) because the unsaved work of its workspaces could not be saved.", ConstLabels: labels,
		}),
	}
	if reg != nil {
		reg.MustRegister(mm.createSeconds, mm.active, mm.reaped, mm.swept, mm.preserveFailed)
	}
	return mm
}

func (mm *managerMetrics) observeCreate(d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	mm.createSeconds.WithLabelValues(outcome).Observe(d.Seconds())
}
