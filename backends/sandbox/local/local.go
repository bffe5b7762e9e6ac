// Package local is the sandbox provider for a single machine: each sandbox is
// a directory tree with its own empty HOME, commands run with an environment
// built from scratch and are killed with their whole process group on
// timeout. It is the embedded default; it isolates workspaces from each other
// and from the gateway's own files, but not processes from the host (use the
// E2B provider for that).
//
// Sandboxes outlive the process that made them: each describes itself in a
// metadata file (id, owner, root), so that a restarted gateway, a stdio
// process started per call, or another process sharing the directory finds
// and adopts them. Every process that uses a sandbox holds a shared lock
// (flock) on its holder file for as long as it may use it; a sandbox that
// no live process holds and that holds no workspace is an orphan (a warm
// sandbox of a process that was killed, say), which ClaimOrphan lets a
// sweeper remove safely.
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
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// markerFile marks a directory as owned by this provider, so that Open
// refuses a directory holding anything else.
const markerFile = ".gitgate-local-sandboxes"

// holderFile, in each sandbox, is locked shared by every process using the
// sandbox; an exclusive lock on it proves that none does.
const holderFile = ".gitgate-holders"

// Provider is the local sandbox provider. Safe for concurrent use.
type Provider struct {
	dir    string
	shared bool

	mu        sync.Mutex
	sandboxes map[string]sandbox.Info
	held      map[string]*os.File // holder files this process keeps locked (shared)

	usage usageBook // CPU and memory of the sandboxes' commands (usage.go)
}

var _ sandbox.Provider = (*Provider)(nil)

// Open returns a provider keeping its sandboxes under dir, which it creates
// if needed. Sandboxes an earlier process left there are found again (Find,
// Lookup, List): they outlive the process that made them.
func Open(dir string) (*Provider, error) {
	return OpenWith(dir, Options{})
}

// Options configures a Provider.
type Options struct {
	// Shared says that several processes use the directory at once (the
	// gateway and the Approach 2 service on one machine). Every provider
	// finds the sandboxes other processes made, so it changes nothing
	// today; it is kept for the configuration key sandbox.local.shared.
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
	return &Provider{dir: abs, shared: opts.Shared, sandboxes: map[string]sandbox.Info{}, held: map[string]*os.File{}}, nil
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
		return nil // sandboxes of earlier or other processes live here
	}
	return os.WriteFile(filepath.Join(dir, markerFile), []byte("gitgate local sandboxes (they outlive the processes that made them)\n"), 0o600)
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
	// The holder lock is taken before the metadata makes the sandbox
	// visible (List shows only sandboxes with it): an orphan sweep of this
	// or another process listing it in between would otherwise find it
	// held by nobody and remove it.
	holder, err := os.OpenFile(filepath.Join(root, holderFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		if err = syscall.Flock(int(holder.Fd()), syscall.LOCK_SH); err != nil {
			holder.Close()
		}
	}
	info := sandbox.Info{ID: id, Owner: opts.Owner, Root: root, Created: time.Now()}
	if err == nil {
		if err = writeMeta(info); err != nil {
			holder.Close()
		}
	}
	if err != nil {
		_ = os.RemoveAll(root)
		return sandbox.Info{}, backends.Errorf(backends.Unavailable, "create sandbox: %w", err)
	}
	p.mu.Lock()
	p.held[id] = holder
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

// Find returns owner's sandboxes, also those an earlier or another process
// made, newest first.
func (p *Provider) Find(ctx context.Context, owner sandbox.Owner) ([]sandbox.Info, error) {
	all, err := p.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []sandbox.Info
	for _, info := range all {
		if info.Owner == owner {
			out = append(out, info)
		}
	}
	return out, nil
}

// List returns every sandbox in the directory, newest first.
func (p *Provider) List(_ context.Context) ([]sandbox.Info, error) {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, backends.Errorf(backends.Unavailable, "list local sandboxes: %w", err)
	}
	var out []sandbox.Info
	for _, e := range entries {
		if !e.IsDir() || !idPattern.MatchString(e.Name()) {
			continue
		}
		if info, err := readMeta(p.dir, e.Name()); err == nil {
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b sandbox.Info) int { return b.Created.Compare(a.Created) })
	return out, nil
}

func (p *Provider) lookup(id string) (sandbox.Info, error) {
	p.mu.Lock()
	info, ok := p.sandboxes[id]
	p.mu.Unlock()
	if ok {
		return info, nil
	}
	info, err := p.describe(id)
	if err != nil {
		return sandbox.Info{}, err
	}
	if err := p.hold(id); err != nil {
		return sandbox.Info{}, backends.Errorf(backends.NotFound, "sandbox %s does not exist (it may have been reaped)", id)
	}
	p.mu.Lock()
	p.sandboxes[id] = info
	p.mu.Unlock()
	return info, nil
}

// describe returns what is known of sandbox id, without holding it.
func (p *Provider) describe(id string) (sandbox.Info, error) {
	p.mu.Lock()
	info, ok := p.sandboxes[id]
	p.mu.Unlock()
	if ok {
		return info, nil
	}
	if info, err := readMeta(p.dir, id); err == nil {
		return info, nil
	}
	return sandbox.Info{}, backends.Errorf(backends.NotFound, "sandbox %s does not exist (it may have been reaped)", id)
}

// Lookup returns the sandbox id: one this provider created, or one an
// earlier or another process created (which this process then holds).
func (p *Provider) Lookup(_ context.Context, id string) (sandbox.Info, error) {
	return p.lookup(id)
}

// hold takes this process's shared lock on the sandbox's holder file, once.
// The sandbox's metadata is read again under the lock: a sweeper that
// removed the sandbox meanwhile leaves nothing to hold.
func (p *Provider) hold(id string) error {
	p.mu.Lock()
	_, ok := p.held[id]
	p.mu.Unlock()
	if ok {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(p.dir, id, holderFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return err
	}
	if _, err := readMeta(p.dir, id); err != nil {
		f.Close()
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.held[id]; ok {
		f.Close()
		return nil
	}
	p.held[id] = f
	return nil
}

// unhold releases this process's lock on the sandbox.
func (p *Provider) unhold(id string) {
	p.mu.Lock()
	f := p.held[id]
	delete(p.held, id)
	p.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// Release lets go of a sandbox without destroying it: this process stops
// holding it (another may adopt or sweep it).
func (p *Provider) Release(id string) {
	p.unhold(id)
	p.mu.Lock()
	delete(p.sandboxes, id)
	p.mu.Unlock()
}

// RecordOwner records the owner a sandbox was handed to (a warm sandbox is
// made without one), so that Find and recovery find it by its owner.
func (p *Provider) RecordOwner(_ context.Context, id string, owner sandbox.Owner) error {
	info, err := p.lookup(id)
	if err != nil {
		return err
	}
	if info.Owner == owner {
		return nil
	}
	info.Owner = owner
	if err := writeMeta(info); err != nil {
		return backends.Errorf(backends.Unavailable, "record the sandbox's owner: %w", err)
	}
	p.mu.Lock()
	p.sandboxes[id] = info
	p.mu.Unlock()
	return nil
}

// ClaimOrphan takes the sandbox for removal when no live process holds it
// (an exclusive lock on its holder file succeeds) and it holds no
// workspace; release gives the claim back. A claimed sandbox cannot be
// adopted until released or destroyed.
func (p *Provider) ClaimOrphan(_ context.Context, id string) (release func(), ok bool) {
	if !idPattern.MatchString(id) {
		return nil, false
	}
	f, err := os.OpenFile(filepath.Join(p.dir, id, holderFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	if ws, err := os.ReadDir(filepath.Join(p.dir, id, "git")); err != nil || len(ws) > 0 {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}

// metaFile describes a sandbox inside its directory, so that a later or
// another process sharing the directory can find it.
const metaFile = ".gitgate-sandbox.json"

// writeMeta replaces the metadata file atomically.
func writeMeta(info sandbox.Info) error {
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	tmp := filepath.Join(info.Root, metaFile+".tmp-"+strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(info.Root, metaFile))
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
	info, err := p.describe(id)
	if err != nil {
		return err
	}
	p.Release(id)
	p.usage.forget(id)
	if err := os.RemoveAll(info.Root); err != nil {
		return backends.Errorf(backends.Internal, "destroy sandbox: %w", err)
	}
	return nil
}
