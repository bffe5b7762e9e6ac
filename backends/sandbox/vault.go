package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// Vault stores what a workspace would lose with its sandbox (a git bundle of
// its commits not pushed and of its uncommitted changes) outside any
// sandbox, so that it survives the sandbox and costs no running machine.
// Every backend that may restore a workspace must reach the same vault.
// Implementations are safe for concurrent use. Errors carry a
// backends.Category: not_found for a missing key, resource_exhausted for an
// entry over the size cap.
type Vault interface {
	// Put stores r's content under key, replacing any entry, atomically:
	// a reader sees the old entry or the whole new one. It fails, storing
	// nothing, when the content exceeds the vault's size cap.
	Put(ctx context.Context, key string, r io.Reader) (n int64, err error)
	// Get opens the entry of key; the caller closes it. size is its length.
	Get(ctx context.Context, key string) (rc io.ReadCloser, size int64, err error)
	// Delete removes the entry of key; deleting a missing entry is a no-op.
	Delete(ctx context.Context, key string) error
}

// DefaultVaultMaxBytes caps one vault entry when DirVaultOptions.MaxBytes is
// zero.
const DefaultVaultMaxBytes = 128 << 20

// DirVaultOptions configures a DirVault.
type DirVaultOptions struct {
	// MaxBytes caps one entry. If zero, DefaultVaultMaxBytes.
	MaxBytes int64
}

// DirVault is a Vault in a directory of this machine: one file per key,
// mode 0600 in a directory of mode 0700, written atomically (temporary
// file, fsync, rename, fsync of the directory). Processes on other
// machines need the directory on shared storage to reach it.
type DirVault struct {
	dir string
	max int64
}

var _ Vault = (*DirVault)(nil)

// NewDirVault returns a vault in dir, creating it (mode 0700) when missing
// and tightening its mode to 0700 when it exists.
func NewDirVault(dir string, opts DirVaultOptions) (*DirVault, error) {
	if dir == "" {
		return nil, errors.New("sandbox: the vault needs a directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: vault directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: vault directory %s cannot be created: %w", abs, err)
	}
	if err := os.Chmod(abs, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: vault directory %s: %w", abs, err)
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultVaultMaxBytes
	}
	return &DirVault{dir: abs, max: opts.MaxBytes}, nil
}

// Dir returns the vault's directory.
func (v *DirVault) Dir() string { return v.dir }

// vaultKey is what a key may look like: it becomes a file name.
var vaultKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (v *DirVault) path(key string) (string, error) {
	if !vaultKey.MatchString(key) {
		return "", backends.Errorf(backends.InvalidArgument, "vault key %q is not valid (letters, digits, '.', '_', '-'; up to 128)", key)
	}
	return filepath.Join(v.dir, key), nil
}

// Put stores r under key. See Vault.
func (v *DirVault) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	path, err := v.path(key)
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(v.dir, ".tmp-"+key+"-*")
	if err != nil {
		return 0, backends.Errorf(backends.Unavailable, "the workspace vault (%s) cannot be written: %w", v.dir, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return 0, backends.Errorf(backends.Unavailable, "the workspace vault (%s) cannot be written: %w", v.dir, err)
	}
	n, err := io.Copy(f, io.LimitReader(ctxReader{ctx, r}, v.max+1))
	if err != nil {
		return n, backends.Errorf(backends.CategoryOf(err), "storing %s in the workspace vault failed: %w", key, err)
	}
	if n > v.max {
		return n, backends.Errorf(backends.ResourceExhausted, "the saved work is larger than the vault's cap of %d bytes; nothing was stored", v.max)
	}
	if err := f.Sync(); err != nil {
		return n, backends.Errorf(backends.Unavailable, "the workspace vault (%s) cannot be written: %w", v.dir, err)
	}
	if err := f.Close(); err != nil {
		return n, backends.Errorf(backends.Unavailable, "the workspace vault (%s) cannot be written: %w", v.dir, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return n, backends.Errorf(backends.Unavailable, "the workspace vault (%s) cannot be written: %w", v.dir, err)
	}
	done = true
	if err := syncDir(v.dir); err != nil {
		return n, backends.Errorf(backends.Unavailable, "the workspace vault (%s) cannot be synced: %w", v.dir, err)
	}
	return n, nil
}

// Get opens the entry of key. See Vault.
func (v *DirVault) Get(_ context.Context, key string) (io.ReadCloser, int64, error) {
	path, err := v.path(key)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, backends.Errorf(backends.NotFound, "the workspace vault has no entry %s", key)
	}
	if err != nil {
		return nil, 0, backends.Errorf(backends.Unavailable, "the workspace vault (%s) cannot be read: %w", v.dir, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, backends.Errorf(backends.Unavailable, "the workspace vault (%s) cannot be read: %w", v.dir, err)
	}
	return f, st.Size(), nil
}

// Delete removes the entry of key. See Vault.
func (v *DirVault) Delete(_ context.Context, key string) error {
	path, err := v.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return backends.Errorf(backends.Unavailable, "the workspace vault (%s) entry %s cannot be deleted: %w", v.dir, key, err)
	}
	return syncDir(v.dir)
}

// Sweep deletes the entries not written for olderThan, and temporary
// files of interrupted Puts older than an hour, and returns how many
// entries it deleted. Entries are written once, when work is saved, and
// deleted when it is restored or discarded: one older than the binding
// store's retention (redisbind.Options.Retention) belongs to a binding
// that has expired. Run it with olderThan well beyond that retention.
func (v *DirVault) Sweep(ctx context.Context, olderThan time.Duration) (int, error) {
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		return 0, backends.Errorf(backends.Unavailable, "the workspace vault (%s) cannot be listed: %w", v.dir, err)
	}
	now, n := time.Now(), 0
	for _, e := range entries {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		tmp := strings.HasPrefix(e.Name(), ".tmp-")
		age := now.Sub(info.ModTime())
		if tmp && age < time.Hour || !tmp && (age < olderThan || !vaultKey.MatchString(e.Name())) {
			continue
		}
		if err := os.Remove(filepath.Join(v.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, backends.Errorf(backends.Unavailable, "the workspace vault (%s) entry %s cannot be deleted: %w", v.dir, e.Name(), err)
		}
		if !tmp {
			n++
		}
	}
	return n, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
