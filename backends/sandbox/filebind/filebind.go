// Package filebind is the embedded implementation of sandbox.BindingStore:
// one JSON file per workspace binding in a directory (the gateway's state
// directory), so that workspaces outlive the process that made them
// without Redis, and so that several processes on one machine (a gateway
// and stdio processes, or one stdio process per MCP call) share them.
//
// Layout: <dir>/<hex(project)>/<hex(key)>.json, one file per binding. Every
// write goes to a temporary file in the same directory, is synced, and
// renamed into place (then the directory is synced), so a reader in any
// process sees either the old or the new binding, never a torn one, and a
// crash keeps one of the two. A file's modification time records when the
// binding was last stored or read, which tells the reaper of another
// process that the sandbox is in use (sandbox.UsageTracker).
package filebind

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/atomicfile"
)

// Store keeps bindings in a directory. Safe for concurrent use, also by
// several processes sharing the directory.
type Store struct {
	dir string
	ttl time.Duration
	now func() time.Time
}

var (
	_ sandbox.BindingStore = (*Store)(nil)
	_ sandbox.UsageTracker = (*Store)(nil)
)

// Options configures a Store.
type Options struct {
	// TTL is the sandbox idle TTL: UsedWithin reports a sandbox used when
	// one of its bindings was stored or read within it. If zero,
	// sandbox.DefaultIdleTTL.
	TTL time.Duration
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Open returns a store keeping its bindings under dir, created (0700) if
// needed.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filebind: create %s: %w", dir, err)
	}
	if opts.TTL <= 0 {
		opts.TTL = sandbox.DefaultIdleTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{dir: dir, ttl: opts.TTL, now: opts.Now}, nil
}

func (s *Store) projectDir(project string) string {
	return filepath.Join(s.dir, hex.EncodeToString([]byte(project)))
}

func (s *Store) path(k sandbox.WorkspaceKey) string {
	return filepath.Join(s.projectDir(k.Project), hex.EncodeToString([]byte(k.String()))+".json")
}

// Get returns the binding of key and marks it used in its file's
// modification time (List reports it as the binding's LastUsed).
func (s *Store) Get(_ context.Context, key sandbox.WorkspaceKey) (sandbox.Binding, bool, error) {
	p := s.path(key)
	b, modified, err := read(p)
	if errors.Is(err, fs.ErrNotExist) {
		return sandbox.Binding{}, false, nil
	}
	if err != nil {
		return sandbox.Binding{}, false, err
	}
	s.touch(p, modified)
	return b, true, nil
}

// touch records a use in the file's modification time (a metadata update,
// not a write of the file), at most once a second: list_workspaces shows
// the last use to the second. modified is the time the file had when it
// was read.
func (s *Store) touch(p string, modified time.Time) {
	now := s.now()
	if now.Sub(modified) >= min(time.Second, s.ttl/8) {
		_ = os.Chtimes(p, now, now)
	}
}

// read reads and decodes the binding file p, and returns its modification
// time (from the open file: no second lookup of the path).
func read(p string) (sandbox.Binding, time.Time, error) {
	data, modified, err := readFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return sandbox.Binding{}, time.Time{}, err
		}
		return sandbox.Binding{}, time.Time{}, backends.Errorf(backends.Unavailable, "workspace bindings store (%s) cannot be read: %w", filepath.Dir(p), err)
	}
	b, err := sandbox.DecodeBinding(data)
	if err != nil {
		return sandbox.Binding{}, time.Time{}, backends.Errorf(backends.Internal, "a stored workspace binding (%s) is corrupt: %w", p, err)
	}
	return b, modified, nil
}

// readFile is os.ReadFile that also returns the file's modification time.
func readFile(p string) ([]byte, time.Time, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	data := make([]byte, 0, st.Size()+1)
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, st.ModTime(), nil
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}

// Put stores b atomically.
func (s *Store) Put(_ context.Context, b sandbox.Binding) error {
	data, err := sandbox.EncodeBinding(b)
	if err != nil {
		return err
	}
	dir := s.projectDir(b.Key.Project)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return unavailable(err)
	}
	return unavailable(atomicfile.Write(s.path(b.Key), data, 0o600))
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return backends.Errorf(backends.Unavailable, "workspace bindings store cannot be written: %w", err)
}

// Delete removes the binding of key.
func (s *Store) Delete(_ context.Context, key sandbox.WorkspaceKey) error {
	err := os.Remove(s.path(key))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return unavailable(err)
}

// List returns project's bindings sorted by key.
func (s *Store) List(_ context.Context, project string) ([]sandbox.Binding, error) {
	out, err := s.listDir(s.projectDir(project))
	if err != nil {
		return nil, err
	}
	out = slices.DeleteFunc(out, func(b sandbox.Binding) bool { return b.Key.Project != project })
	slices.SortFunc(out, func(a, b sandbox.Binding) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return out, nil
}

// listDir reads every binding file of one project directory. A file
// removed meanwhile is skipped.
func (s *Store) listDir(dir string) ([]sandbox.Binding, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, backends.Errorf(backends.Unavailable, "workspace bindings store cannot be read: %w", err)
	}
	var out []sandbox.Binding
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, _, err := read(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if st, err := e.Info(); err == nil && st.ModTime().After(b.LastUsed) {
			b.LastUsed = st.ModTime().UTC() // a read since the last write
		}
		out = append(out, b)
	}
	return out, nil
}

// all reads every binding of every project.
func (s *Store) all() ([]sandbox.Binding, error) {
	projects, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, backends.Errorf(backends.Unavailable, "workspace bindings store cannot be read: %w", err)
	}
	var out []sandbox.Binding
	for _, p := range projects {
		if !p.IsDir() {
			continue
		}
		bs, err := s.listDir(filepath.Join(s.dir, p.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}

// DeleteSandbox removes every binding held by sandbox id.
func (s *Store) DeleteSandbox(ctx context.Context, id string) error {
	bs, err := s.all()
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.SandboxID == id {
			if err := s.Delete(ctx, b.Key); err != nil {
				return err
			}
		}
	}
	return nil
}

// Holds reports whether any binding names sandbox id.
func (s *Store) Holds(_ context.Context, id string) (bool, error) {
	bs, err := s.all()
	if err != nil {
		return true, err
	}
	return slices.ContainsFunc(bs, func(b sandbox.Binding) bool { return b.SandboxID == id }), nil
}

// UsedWithin reports whether a binding of sandbox id was stored or read
// within the TTL, by any process (see sandbox.UsageTracker).
func (s *Store) UsedWithin(_ context.Context, id string) (bool, error) {
	projects, err := os.ReadDir(s.dir)
	if err != nil {
		return true, backends.Errorf(backends.Unavailable, "workspace bindings store cannot be read: %w", err)
	}
	now := s.now()
	for _, p := range projects {
		if !p.IsDir() {
			continue
		}
		dir := filepath.Join(s.dir, p.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			st, err := e.Info()
			if err != nil || now.Sub(st.ModTime()) >= s.ttl {
				continue
			}
			if b, _, err := read(filepath.Join(dir, e.Name())); err == nil && b.SandboxID == id {
				return true, nil
			}
		}
	}
	return false, nil
}
