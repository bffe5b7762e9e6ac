package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/canary"
)

// DrillResult is how a kill-switch drill's window on a gateway ended.
type DrillResult string

// Drill results.
const (
	DrillPass    DrillResult = "pass"
	DrillFail    DrillResult = "fail"
	DrillAborted DrillResult = "aborted"
	// DrillExpired: the mark outlived its until without being cleared
	// (the drill died); recorded when the gateway noticed.
	DrillExpired DrillResult = "expired"
)

// Valid reports whether r is a result a drill may clear its mark with
// (DrillExpired is the gateway's own).
func (r DrillResult) Valid() bool {
	return r == DrillPass || r == DrillFail || r == DrillAborted
}

// Drill is the mark of a kill-switch drill (`gitgate drill`) on this
// gateway: the fleet-wide lock of the drill, and the id the router stamps
// on every ledger entry (canary.Entry.Drill) while it holds.
type Drill struct {
	ID     string    `json:"id"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
}

// DrillHeldError is Set's answer when another, unexpired drill holds the
// mark.
type DrillHeldError struct{ Holder Drill }

func (e *DrillHeldError) Error() string {
	return fmt.Sprintf("drill %s (by %s, since %s) holds this gateway until %s", e.Holder.ID, e.Holder.By,
		e.Holder.Since.Format(time.RFC3339), e.Holder.Until.Format(time.RFC3339))
}

// ErrNoDrill is Clear's error when no drill holds the gateway.
var ErrNoDrill = errors.New("no drill holds this gateway")

// DrillMark holds this gateway's drill mark. Safe for concurrent use; reading
// it (Current, ID) takes no lock.
type DrillMark struct {
	cur    atomic.Pointer[Drill]
	mu     sync.Mutex // serialises changes
	record func(canary.Entry)
	log    *slog.Logger
}

// NewDrillMark returns an unset mark. record, if not nil, is handed the
// KindDrill ledger entry of every mark that ends (cleared or expired); it
// must not block. log nil: slog.Default().
func NewDrillMark(record func(canary.Entry), log *slog.Logger) *DrillMark {
	if log == nil {
		log = slog.Default()
	}
	return &DrillMark{record: record, log: log}
}

// Set marks the gateway as drilled by id until ttl from now. The same id
// refreshes its mark (by, reason and until; since stays); a different
// unexpired one is a *DrillHeldError naming the holder.
func (m *DrillMark) Set(id, by, reason string, ttl time.Duration) (Drill, error) {
	if id == "" || ttl <= 0 {
		return Drill{}, errors.New("a drill mark needs an id and a positive ttl")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		now := time.Now().UTC()
		old := m.liveLocked(now)
		if old != nil && old.ID != id {
			return Drill{}, &DrillHeldError{Holder: *old}
		}
		d := Drill{ID: id, By: by, Reason: reason, Since: now, Until: now.Add(ttl)}
		if old != nil {
			d.Since = old.Since
		}
		if !m.cur.CompareAndSwap(old, &d) {
			continue // the old mark expired meanwhile (Current): it is recorded, start again
		}
		if old == nil {
			m.log.Warn("drill mark set", "drill", id, "by", by, "reason", reason, "until", d.Until)
		}
		return d, nil
	}
}

// Clear ends the mark of drill id with result (and detail), recording its
// window in the ledger. ErrNoDrill when there is none, a *DrillHeldError
// when another drill holds it.
func (m *DrillMark) Clear(id string, result DrillResult, detail string) (Drill, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.liveLocked(time.Now())
	switch {
	case d == nil:
		return Drill{}, ErrNoDrill
	case d.ID != id:
		return Drill{}, &DrillHeldError{Holder: *d}
	case !m.cur.CompareAndSwap(d, nil):
		return Drill{}, ErrNoDrill // it expired meanwhile (and is recorded so)
	}
	m.log.Warn("drill mark cleared", "drill", id, "result", result, "detail", detail)
	m.end(*d, result, detail, time.Now())
	return *d, nil
}

// Current returns the mark in force, if any. A mark past its until is
// absent (and recorded as expired).
func (m *DrillMark) Current() (Drill, bool) {
	if m == nil {
		return Drill{}, false
	}
	d := m.cur.Load()
	if d == nil {
		return Drill{}, false
	}
	if now := time.Now(); !now.Before(d.Until) {
		m.expire(d)
		return Drill{}, false
	}
	return *d, true
}

// ID is the id of the drill in force, "" when none (the ledger's
// canary.Entry.Drill).
func (m *DrillMark) ID() string {
	d, _ := m.Current()
	return d.ID
}

// liveLocked returns the unexpired mark (recording an expired one); m.mu
// held.
func (m *DrillMark) liveLocked(now time.Time) *Drill {
	d := m.cur.Load()
	if d != nil && !now.Before(d.Until) {
		m.expire(d)
		return nil
	}
	return d
}

// expire ends d if it is still the mark.
func (m *DrillMark) expire(d *Drill) {
	if m.cur.CompareAndSwap(d, nil) {
		m.expired(*d)
	}
}

func (m *DrillMark) expired(d Drill) {
	m.log.Warn("drill mark expired without being cleared", "drill", d.ID, "by", d.By, "until", d.Until)
	m.end(d, DrillExpired, "the mark passed its until without being cleared", d.Until)
}

// end records d's window, which ended at.
func (m *DrillMark) end(d Drill, result DrillResult, detail string, at time.Time) {
	if m.record == nil {
		return
	}
	text := string(result)
	if detail != "" {
		text += ": " + detail
	}
	m.record(canary.Entry{At: d.Since, Kind: canary.KindDrill, Duration: at.Sub(d.Since), Drill: d.ID, Detail: text})
}
