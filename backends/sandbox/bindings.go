package sandbox

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// WorkspaceKey names a workspace: (project, name), plus the agent when
// sandboxes are per agent (then each agent has its own workspaces).
type WorkspaceKey struct {
	Project string
	Agent   string
	Name    string
}

// String returns "project/name" or "project/agent/name".
func (k WorkspaceKey) String() string {
	if k.Agent == "" {
		return k.Project + "/" + k.Name
	}
	return k.Project + "/" + k.Agent + "/" + k.Name
}

// Owner returns the owner of the sandbox that holds the workspace.
func (k WorkspaceKey) Owner() Owner { return Owner{Project: k.Project, Agent: k.Agent} }

// Binding records which sandbox holds a workspace. It is shared state: every
// backend acting on the workspace reads it.
type Binding struct {
	Key WorkspaceKey
	// SandboxID is the sandbox holding the workspace; empty while the
	// workspace is shelved (see Shelf).
	SandboxID string
	Root      string // the sandbox's Root (empty while shelved)
	URL       string // the repository URL it was cloned from (never with credentials)
	Created   time.Time
	LastUsed  time.Time
	// What a new sandbox could not restore if this one died, kept up to
	// date by the executor's writes: the branch checked out, whether the
	// work tree has uncommitted changes, and the branches with commits not
	// pushed (names separated by spaces, which branch names cannot hold).
	Branch   string
	Dirty    bool
	Unpushed string
	// Writes counts the writes made in the workspace (shadow predictions
	// use it to tell whether another write came after the one they
	// predict).
	Writes uint64
	// Shelf, when set, is the Vault key of the workspace's unsaved work
	// (commits not pushed, uncommitted changes) saved when its sandbox
	// was reaped or shut down; SandboxID is then empty, and the next
	// operation restores the work into a new sandbox.
	Shelf string
}

// Unsaved describes what would be lost with the sandbox ("" when nothing
// would: the workspace can be cloned again as it was).
func (b Binding) Unsaved() string {
	var lost []string
	if b.Dirty {
		lost = append(lost, "uncommitted changes")
	}
	if b.Unpushed != "" {
		lost = append(lost, "commits not pushed on "+strings.Join(strings.Fields(b.Unpushed), ", "))
	}
	return strings.Join(lost, " and ")
}

// WorkTree returns the absolute sandbox path of the workspace's work tree.
func (b Binding) WorkTree() string { return WorkTreePath(b.Root, b.Key.Name) }

// GitDir returns the absolute sandbox path of the workspace's git directory,
// which lies outside the work tree so that file operations cannot reach it.
func (b Binding) GitDir() string { return GitDirPath(b.Root, b.Key.Name) }

// WorkTreePath is where workspace name's work tree lives in a sandbox.
func WorkTreePath(root, name string) string { return root + "/ws/" + name }

// GitDirPath is where workspace name's git directory lives in a sandbox.
func GitDirPath(root, name string) string { return root + "/git/" + name + ".git" }

// BindingStore stores bindings. Implementations are safe for concurrent use.
type BindingStore interface {
	Get(ctx context.Context, key WorkspaceKey) (b Binding, ok bool, err error)
	Put(ctx context.Context, b Binding) error
	Delete(ctx context.Context, key WorkspaceKey) error
	// List returns the bindings of a project, sorted by key.
	List(ctx context.Context, project string) ([]Binding, error)
	// DeleteSandbox deletes every binding held by sandbox id.
	DeleteSandbox(ctx context.Context, id string) error
}

// UsageTracker is implemented by binding stores shared between processes
// that know when a sandbox's workspaces were last used by anyone. The
// Manager asks it before reaping, so that a sandbox idle here but busy in
// another process survives.
type UsageTracker interface {
	// UsedWithin reports whether any binding of sandbox id was used within
	// the store's TTL.
	UsedWithin(ctx context.Context, id string) (bool, error)
}

// MemoryBindings is an in-process BindingStore, enough while one process
// runs every backend.
type MemoryBindings struct {
	mu   sync.Mutex
	m    map[WorkspaceKey]Binding
	used map[WorkspaceKey]time.Time // last read or write of each binding
}

var _ BindingStore = (*MemoryBindings)(nil)

// NewMemoryBindings returns an empty store.
func NewMemoryBindings() *MemoryBindings { return &MemoryBindings{m: map[WorkspaceKey]Binding{}} }

// Get returns the binding of key and records the use (a read is a use:
// List reports it as LastUsed).
func (s *MemoryBindings) Get(_ context.Context, key WorkspaceKey) (Binding, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key]
	if ok {
		s.use(key)
	}
	return b, ok, nil
}

// use records that key's binding was read or stored now; the caller holds
// s.mu.
func (s *MemoryBindings) use(key WorkspaceKey) {
	if s.used == nil {
		s.used = map[WorkspaceKey]time.Time{}
	}
	s.used[key] = time.Now().UTC()
}

// Put stores b.
func (s *MemoryBindings) Put(_ context.Context, b Binding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[b.Key] = b
	s.use(b.Key)
	return nil
}

// Delete removes the binding of key.
func (s *MemoryBindings) Delete(_ context.Context, key WorkspaceKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	delete(s.used, key)
	return nil
}

// List returns project's bindings sorted by key, each with LastUsed its
// last read or write when that is later than the stored one.
func (s *MemoryBindings) List(_ context.Context, project string) ([]Binding, error) {
	s.mu.Lock()
	var out []Binding
	for k, b := range s.m {
		if k.Project == project {
			if used := s.used[k]; used.After(b.LastUsed) {
				b.LastUsed = used
			}
			out = append(out, b)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Binding) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return out, nil
}

// DeleteSandbox removes every binding held by sandbox id (shelved bindings
// are held by none and stay).
func (s *MemoryBindings) DeleteSandbox(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, b := range s.m {
		if b.SandboxID == id {
			delete(s.m, k)
		}
	}
	return nil
}
