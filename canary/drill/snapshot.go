package drill

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gitgate/gitgate/flags"
)

// snapshotFile is the name, in the history directory, of the snapshot a
// drill writes (and syncs) before it changes anything and removes when it
// has put everything back: while it exists, a drill did not finish.
const snapshotFile = "in-progress.json"

// Snapshot is the routing state before a drill: enough to put it back
// exactly after a crash (Recover).
type Snapshot struct {
	ID     string    `json:"id"`
	Start  time.Time `json:"start"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	// FlagSource is the flag file; Flags its exact bytes.
	FlagSource string `json:"flag_source"`
	Flags      []byte `json:"flags"`
	// BreakerOp is the operation whose breaker the drill forces open.
	BreakerOp string            `json:"breaker_op"`
	Gateways  []GatewaySnapshot `json:"gateways"`
}

// GatewaySnapshot is one gateway's state before the drill.
type GatewaySnapshot struct {
	Name  string          `json:"name"`
	Admin string          `json:"admin_url"`
	State State           `json:"state"`
	Over  *flags.Override `json:"override,omitempty"`
	// Marked: the drill took this gateway's mark.
	Marked bool `json:"marked"`
}

// saveSnapshot writes s to dir atomically and syncs it (and the
// directory), so that it survives the machine dying right after.
func saveSnapshot(dir string, s *Snapshot) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return historyWrite(filepath.Join(dir, snapshotFile), data)
}

// loadSnapshot reads the snapshot of a drill that did not finish; nil
// when there is none.
func loadSnapshot(dir string) (*Snapshot, error) {
	data, err := os.ReadFile(filepath.Join(dir, snapshotFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("the snapshot %s is unreadable: %w", filepath.Join(dir, snapshotFile), err)
	}
	return &s, nil
}

func removeSnapshot(dir string) error {
	err := os.Remove(filepath.Join(dir, snapshotFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
