package sandbox

import (
	"context"
	"slices"
)

// Lister is implemented by providers that can list every sandbox gitgate
// made with them, also those of earlier or other processes.
type Lister interface {
	List(ctx context.Context) ([]Info, error)
}

// OrphanClaimer is implemented by providers that can tell a sandbox no live
// process holds: ClaimOrphan takes it for removal when no process holds it
// and it holds no workspace (release gives the claim back; Destroy may be
// called while it is held).
type OrphanClaimer interface {
	ClaimOrphan(ctx context.Context, id string) (release func(), ok bool)
}

// OwnerRecorder is implemented by providers that record a sandbox's owner
// in the sandbox, so that a sandbox made without one (a warm sandbox of a
// pool) is found by its owner once it is handed out.
type OwnerRecorder interface {
	RecordOwner(ctx context.Context, id string, owner Owner) error
}

// Releaser is implemented by providers where a process holds the sandboxes
// it uses: Release lets go of one without destroying it.
type Releaser interface {
	Release(id string)
}

// adoptOwned gives s, owner's empty slot, the newest live sandbox the owner
// already has (made by an earlier or another process), so that a restarted
// gateway keeps using the sandbox that holds the owner's workspaces instead
// of making a new one. It reports whether it found one. Called with
// s.create held.
func (m *Manager) adoptOwned(ctx context.Context, owner Owner, s *slot) bool {
	found, err := m.cfg.Provider.Find(ctx, owner)
	if err != nil || len(found) == 0 {
		return false
	}
	slices.SortFunc(found, func(a, b Info) int { return b.Created.Compare(a.Created) })
	for _, cand := range found {
		info, err := m.cfg.Provider.Lookup(ctx, cand.ID)
		if err != nil || info.Owner != owner {
			continue
		}
		m.mu.Lock()
		if m.closing {
			m.mu.Unlock()
			return false
		}
		if other := m.byID[info.ID]; other != nil && other != s {
			if other.owner == owner && other.info != nil { // adopted by id earlier: make it the owner's
				delete(m.byID, info.ID)
				m.metrics.active.Dec()
			} else {
				m.mu.Unlock()
				continue
			}
		}
		s.info, s.born, s.lastTTL = &info, m.bornAt(info), m.cfg.Now()
		m.byID[info.ID] = s
		m.mu.Unlock()
		m.metrics.active.Inc()
		m.cfg.Logger.Info("sandbox adopted for its owner", "sandbox", info.ID, "owner", owner.String())
		return true
	}
	return false
}

// recordOwner tells the provider whom a sandbox made by the Creator (a warm
// one from a pool) now belongs to.
func (m *Manager) recordOwner(ctx context.Context, info Info) {
	rec, ok := m.cfg.Provider.(OwnerRecorder)
	if !ok {
		return
	}
	if err := rec.RecordOwner(ctx, info.ID, info.Owner); err != nil {
		m.cfg.Logger.Warn("the sandbox's owner was not recorded in it; a restart may not find it by owner", "sandbox", info.ID, "err", err)
	}
}

// Candidates returns the live sandboxes that may hold owner's workspaces:
// those the provider finds for the owner (also ones of earlier or other
// processes), newest first. Recovery of bindings a store lost looks in them.
func (m *Manager) Candidates(ctx context.Context, owner Owner) ([]Info, error) {
	found, err := m.cfg.Provider.Find(ctx, owner)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(found, func(a, b Info) int { return b.Created.Compare(a.Created) })
	return found, nil
}

// SweepOrphans destroys the sandboxes no live process holds and that hold
// no workspace — warm sandboxes of a process that was killed, say — where
// the provider can tell (OrphanClaimer and Lister). It returns how many it
// destroyed. Sandboxes that hold workspaces are never swept: their
// workspaces can be found again (bindings recovered from the sandbox), and
// the reaper ends them once idle, keeping what they hold.
func (m *Manager) SweepOrphans(ctx context.Context) int {
	lister, ok1 := m.cfg.Provider.(Lister)
	claimer, ok2 := m.cfg.Provider.(OrphanClaimer)
	if !ok1 || !ok2 {
		return 0
	}
	all, err := lister.List(ctx)
	if err != nil {
		m.cfg.Logger.Warn("orphan sweep: sandboxes not listed", "err", err)
		return 0
	}
	n := 0
	for _, info := range all {
		m.mu.Lock()
		mine := m.byID[info.ID] != nil
		m.mu.Unlock()
		if mine {
			continue
		}
		release, ok := claimer.ClaimOrphan(ctx, info.ID)
		if !ok {
			continue
		}
		life, cost := m.lifeOf(info.ID, m.bornAt(info))
		err := m.cfg.Provider.Destroy(ctx, info.ID)
		release()
		if err != nil {
			m.cfg.Logger.Warn("orphan sweep: sandbox not destroyed", "sandbox", info.ID, "err", err)
			continue
		}
		m.ended(info.ID, info.Owner, 0, life, cost)
		n++
		m.metrics.swept.Inc()
		m.cfg.Logger.Info("orphaned sandbox swept (no process held it and it held no workspace)", "sandbox", info.ID, "owner", info.Owner.String())
	}
	return n
}
