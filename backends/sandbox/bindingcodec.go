package sandbox

import (
	"encoding/json"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// bindingRecord is the stored JSON of a binding, the same in every store
// that keeps bindings outside the process (Redis, the state directory);
// its tags fix the format independently of Binding's field names. Times
// are UTC and RFC 3339 with nanoseconds, so they round-trip exactly.
type bindingRecord struct {
	Project   string    `json:"project"`
	Agent     string    `json:"agent,omitempty"`
	Name      string    `json:"name"`
	SandboxID string    `json:"sandbox_id"`
	Root      string    `json:"root"`
	URL       string    `json:"url"`
	Created   time.Time `json:"created"`
	LastUsed  time.Time `json:"last_used"`
	// What a replacement sandbox could not restore (Binding). Tracked is
	// false in records written before these fields existed: they are read
	// as having uncommitted changes, so that a workspace whose state is
	// unknown is never silently cloned again.
	Tracked  bool   `json:"tracked"`
	Branch   string `json:"branch,omitempty"`
	Dirty    bool   `json:"dirty,omitempty"`
	Unpushed string `json:"unpushed,omitempty"`
	Writes   uint64 `json:"writes,omitempty"`
	// Shelf is the vault key of a shelved workspace's work. (redisbind's
	// scripts read shelf, tracked, dirty and unpushed by these names.)
	Shelf string `json:"shelf,omitempty"`
}

// EncodeBinding returns the stored JSON of b.
func EncodeBinding(b Binding) ([]byte, error) {
	data, err := json.Marshal(bindingRecord{
		Project: b.Key.Project, Agent: b.Key.Agent, Name: b.Key.Name,
		SandboxID: b.SandboxID, Root: b.Root, URL: b.URL,
		Created: b.Created.UTC(), LastUsed: b.LastUsed.UTC(),
		Tracked: true, Branch: b.Branch, Dirty: b.Dirty, Unpushed: b.Unpushed, Writes: b.Writes,
		Shelf: b.Shelf,
	})
	if err != nil {
		return nil, backends.Errorf(backends.InvalidArgument, "binding of %s cannot be stored: %w", b.Key, err)
	}
	return data, nil
}

// DecodeBinding reads a binding EncodeBinding stored.
func DecodeBinding(data []byte) (Binding, error) {
	var r bindingRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return Binding{}, backends.Errorf(backends.Internal, "a stored workspace binding is corrupt: %w", err)
	}
	return Binding{
		Key:       WorkspaceKey{Project: r.Project, Agent: r.Agent, Name: r.Name},
		SandboxID: r.SandboxID, Root: r.Root, URL: r.URL,
		Created: r.Created, LastUsed: r.LastUsed,
		Branch: r.Branch, Dirty: r.Dirty || !r.Tracked, Unpushed: r.Unpushed, Writes: r.Writes,
		Shelf: r.Shelf,
	}, nil
}
