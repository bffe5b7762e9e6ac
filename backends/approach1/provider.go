package approach1

import (
	"context"
	"path"

	"github.com/gitgate/gitgate/backends/sandbox"
)

// provider is the sandbox provider as the executor uses it: an error that
// says the sandbox itself is gone (sandbox.ErrGone) makes the manager
// forget it and tells the agent the next operation replaces it (gone),
// whichever call found it.
type provider struct {
	e *Executor
	p sandbox.Provider
}

func (e *Executor) provider() provider { return provider{e: e, p: e.cfg.Sandboxes.Provider()} }

func (p provider) Exec(ctx context.Context, id string, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	res, err := p.p.Exec(ctx, id, req)
	return res, p.e.gone(ctx, id, err)
}

func (p provider) ReadFile(ctx context.Context, id, root, rel string, offset, limit int64) (sandbox.FileData, error) {
	fd, err := p.p.ReadFile(ctx, id, root, rel, offset, limit)
	return fd, p.e.gone(ctx, id, err)
}

func (p provider) WriteFile(ctx context.Context, id, root, rel string, data []byte) (bool, error) {
	created, err := p.p.WriteFile(ctx, id, root, rel, data)
	return created, p.e.gone(ctx, id, err)
}

func (p provider) ListDir(ctx context.Context, id, root, rel string, recursive bool, max int) ([]sandbox.Entry, error) {
	entries, err := p.p.ListDir(ctx, id, root, rel, recursive, max)
	return entries, p.e.gone(ctx, id, err)
}

// nameLister is a provider that lists a directory's names alone, cheaper
// than ListDir where types and sizes cost a stat each (local sandboxes).
type nameLister interface {
	ListNames(ctx context.Context, id, root, rel string, max int) ([]string, error)
}

// listNames returns the names in root/rel that ListDir (not recursive)
// would list, through the provider's ListNames when it has one.
func (p provider) listNames(ctx context.Context, id, root, rel string, max int) ([]string, error) {
	if nl, ok := p.p.(nameLister); ok {
		names, err := nl.ListNames(ctx, id, root, rel, max)
		return names, p.e.gone(ctx, id, err)
	}
	entries, err := p.ListDir(ctx, id, root, rel, false, max)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, en := range entries {
		names[i] = path.Base(en.Path)
	}
	return names, nil
}

func (p provider) Remove(ctx context.Context, id, root, rel string) (bool, error) {
	existed, err := p.p.Remove(ctx, id, root, rel)
	return existed, p.e.gone(ctx, id, err)
}

func (p provider) RemoveAll(ctx context.Context, id, path string) error {
	return p.e.gone(ctx, id, p.p.RemoveAll(ctx, id, path))
}

func (p provider) WriteSecret(ctx context.Context, id, path string, data []byte) error {
	sw, _ := p.p.(sandbox.SecretWriter)
	return p.e.gone(ctx, id, sw.WriteSecret(ctx, id, path, data))
}
