// Package local is the sandbox provider for a single machine: each sandbox is
// a directory tree with its own empty HOME, commands run with an environment
// built from scratch and are killed with their whole process group on
// timeout. It is the embedded default; it isolates workspaces from each other
// and from the gateway's own files, but not processes from the host (use the
// E2B provider for that).
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// markerFile marks a directory as owned by this provider, so that Open may
// clear sandboxes left by an earlier process without risking other data.
const markerFile = ".gitgate-local-sandboxes"

// Provider is the local sandbox provider. Safe for concurrent use.
type Provider struct {
	dir    string
	shared bool

	mu        sync.Mutex
	sandboxes map[string]sandbox.Info
}

var _ sandbox.Provider = (*Provider)(nil)

// Open returns a provider keeping its sandboxes under dir, which it creates
// if needed. Sandboxes left there by an earlier process are removed: local
// sandboxes do not outlive the process that made them (nor do the workspace
// bindings of the in-process store).
func Open(dir string) (*Provider, error) {
	return OpenWith(dir, Options{})
}

// Options configures a Provider.
type Options struct {
	// Shared makes the directory shared by several processes (the gateway
	// and the Approach 2 service on one machine): it is not cleared at
	// start, and sandboxes another process created are found by id (see
	// Lookup). Their bindings live in Redis then.
	Shared bool
}

// OpenWith is Open with options.
func OpenWith(dir string, opts Options) (*Provider, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local sandbox dir %q: %w", dir, err)
	}
	if err := prepareDir(abs, opts.Shared); err != nil {
		return nil, err
	}
	return &Provider{dir: abs, shared: opts.Shared, sandboxes: map[string]sandbox.Info{}}, nil
}

func prepareDir(dir string, shared bool) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create local sandbox dir: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read local sandbox dir: %w", err)
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
			return fmt.Errorf("local sandbox dir %s is not empty and not gitgate's (no %s); choose another sandbox.local.dir", dir, markerFile)
		}
		if shared {
			return nil // other processes' sandboxes live here
		}
		for _, e := range entries {
			if e.Name() != markerFile {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					return fmt.Errorf("clear stale sandbox: %w", err)
				}
			}
		}
	}
	return os.WriteFile(filepath.Join(dir, markerFile), []byte("gitgate local sandboxes; removed at start\n"), 0o600)
}

// Name returns "local".
func (p *Provider) Name() string { return "local" }

// Dir returns the directory holding the sandboxes.
func (p *Provider) Dir() string { return p.dir }

// Create makes a new sandbox directory with home, ws and git subdirectories.
func (p *Provider) Create(_ context.Context, opts sandbox.CreateOptions) (sandbox.Info, error) {
	id, err := newID()
	if err != nil {
		return sandbox.Info{}, err
	}
	root := filepath.Join(p.dir, id)
	for _, sub := range []string{"", "home", "ws", "git", "tmp"} {
		if err := os.Mkdir(filepath.Join(root, sub), 0o700); err != nil {
			_ = os.RemoveAll(root)
			return sandbox.Info{}, backends.Errorf(backends.Unavailable, "create sandbox: %w", err)
		}
	}
	info := sandbox.Info{ID: id, Owner: opts.Owner, Root: root, Created: time.Now()}
	if err := writeMeta(info); err != nil {
		_ = os.RemoveAll(root)
		return sandbox.Info{}, backends.Errorf(backends.Unavailable, "create sandbox: %w", err)
	}
	p.mu.Lock()
	p.sandboxes[id] = info
	p.mu.Unlock()
	return info, nil
}

func newID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("sandbox id: %w", err)
	}
	return "sbx-" + hex.EncodeToString(b[:]), nil
}

// Find returns owner's sandboxes.
func (p *Provider) Find(_ context.Context, owner sandbox.Owner) ([]sandbox.Info, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []sandbox.Info
	for _, info := range p.sandboxes {
		if info.Owner == owner {
			out = append(out, info)
		}
	}
	return out, nil
}

func (p *Provider) lookup(id string) (sandbox.Info, error) {
	p.mu.Lock()
	info, ok := p.sandboxes[id]
	p.mu.Unlock()
	if ok {
		return info, nil
	}
	if p.shared {
		if info, err := readMeta(p.dir, id); err == nil {
			p.mu.Lock()
			p.sandboxes[id] = info
			p.mu.Unlock()
			return info, nil
		}
	}
	return sandbox.Info{}, backends.Errorf(backends.NotFound, "sandbox %s does not exist (it may have been reaped)", id)
}

// Lookup returns the sandbox id: one this provider created, or, in a shared
// directory, one another process created.
func (p *Provider) Lookup(_ context.Context, id string) (sandbox.Info, error) {
	return p.lookup(id)
}

// metaFile describes a sandbox inside its directory, so that another
// process sharing the directory can find it.
const metaFile = ".gitgate-sandbox.json"

func writeMeta(info sandbox.Info) error {
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(info.Root, metaFile), data, 0o600)
}

func readMeta(dir, id string) (sandbox.Info, error) {
	if !idPattern.MatchString(id) {
		return sandbox.Info{}, fmt.Errorf("bad sandbox id %q", id)
	}
	data, err := os.ReadFile(filepath.Join(dir, id, metaFile))
	if err != nil {
		return sandbox.Info{}, err
	}
	var info sandbox.Info
	if err := json.Unmarshal(data, &info); err != nil || info.ID != id || info.Root != filepath.Join(dir, id) {
		return sandbox.Info{}, fmt.Errorf("sandbox %s: bad metadata", id)
	}
	return info, nil
}

var idPattern = regexp.MustCompile(`^sbx-[0-9a-f]{16}$`)

// SetTTL does nothing: local sandboxes are reaped by the Manager.
func (p *Provider) SetTTL(_ context.Context, id string, _ time.Duration) error {
	_, err := p.lookup(id)
	return err
}

// Destroy removes the sandbox directory.
func (p *Provider) Destroy(_ context.Context, id string) error {
	info, err := p.lookup(id)
	if err != nil {
		return err
	}
	p.mu.Lock()
	delete(p.sandboxes, id)
	p.mu.Unlock()
	if err := os.RemoveAll(info.Root); err != nil {
		return backends.Errorf(backends.Internal, "destroy sandbox: %w", err)
	}
	return nil
}
