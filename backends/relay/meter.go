package relay

import "sync"

// Meter tallies the bytes relayed for each capability, so that the engine
// that minted one can price its command's transfer (egress) when it ends:
// Config.Meter and the engine share it in one process. A request another
// replica relayed (a fleet behind one public URL) is counted there, in
// gitgate_relay_bytes_total, not in the call's cost.
type Meter struct {
	mu sync.Mutex
	m  map[string]int64
}

// NewMeter returns an empty Meter.
func NewMeter() *Meter { return &Meter{m: map[string]int64{}} }

func (m *Meter) add(capability string, n int64) {
	if m == nil || n == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[capability] += n
}

// Take returns the bytes relayed for the capability of secret so far and
// forgets them.
func (m *Meter) Take(secret string) int64 {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := id(secret)
	n := m.m[key]
	delete(m.m, key)
	return n
}
