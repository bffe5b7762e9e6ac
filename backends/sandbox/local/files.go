package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// openRoot opens root (an absolute path inside sandbox id) as an os.Root.
// It is reached through the sandbox's own root, so neither root nor any
// path below it can lead out of the sandbox, whether through ".." or a
// symbolic link; and operations on the returned root cannot leave it.
func (p *Provider) openRoot(id, root string) (*os.Root, error) {
	info, err := p.lookup(id)
	if err != nil {
		return nil, err
	}
	rel, err := sandboxRel(info, root)
	if err != nil {
		return nil, err
	}
	sb, err := os.OpenRoot(info.Root)
	if err != nil {
		return nil, fileError(err, ".")
	}
	defer sb.Close()
	r, err := sb.OpenRoot(rel)
	if err != nil {
		return nil, fileError(err, ".")
	}
	return r, nil
}

// sandboxRel returns path relative to the sandbox's root, refusing paths
// that are not below it.
func sandboxRel(info sandbox.Info, path string) (string, error) {
	rel, err := filepath.Rel(info.Root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return "", backends.Errorf(backends.Internal, "path %s is outside sandbox %s", path, info.ID)
	}
	return rel, nil
}

// fileError maps file-system errors to categorised errors that name the
// work-tree path, never the sandbox's absolute paths.
func fileError(err error, rel string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &backends.Error{Category: backends.NotFound, Message: rel + ": no such file or directory", Err: err}
	case strings.Contains(err.Error(), "path escapes from parent"):
		return &backends.Error{Category: backends.Forbidden, Message: rel + ": path leaves the work tree (through '..' or a symbolic link)", Err: err}
	case errors.Is(err, fs.ErrPermission):
		return &backends.Error{Category: backends.Forbidden, Message: rel + ": permission denied", Err: err}
	case strings.Contains(err.Error(), "is a directory"):
		return &backends.Error{Category: backends.InvalidArgument, Message: rel + ": is a directory", Err: err}
	case strings.Contains(err.Error(), "not a directory"):
		return &backends.Error{Category: backends.InvalidArgument, Message: rel + ": a parent is not a directory", Err: err}
	case strings.Contains(err.Error(), "directory not empty"):
		return &backends.Error{Category: backends.Conflict, Message: rel + ": directory is not empty", Err: err}
	}
	return &backends.Error{Category: backends.Internal, Message: rel + ": file operation failed", Err: err}
}

// ReadFile reads up to limit bytes at offset of root/rel.
func (p *Provider) ReadFile(_ context.Context, id, root, rel string, offset, limit int64) (sandbox.FileData, error) {
	r, err := p.openRoot(id, root)
	if err != nil {
		return sandbox.FileData{}, err
	}
	defer r.Close()
	f, err := r.Open(rel)
	if err != nil {
		return sandbox.FileData{}, fileError(err, rel)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return sandbox.FileData{}, fileError(err, rel)
	}
	if !st.Mode().IsRegular() {
		return sandbox.FileData{}, backends.Errorf(backends.InvalidArgument, "%s: not a regular file", rel)
	}
	data, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, offset, max(st.Size()-offset, 0)), limit))
	if err != nil {
		return sandbox.FileData{}, fileError(err, rel)
	}
	return sandbox.FileData{Data: data, Size: st.Size()}, nil
}

// WriteFile writes data to a temporary file beside root/rel and renames it
// into place, so readers never see a partial file and a symbolic link at rel
// is replaced rather than followed.
func (p *Provider) WriteFile(_ context.Context, id, root, rel string, data []byte) (bool, error) {
	r, err := p.openRoot(id, root)
	if err != nil {
		return false, err
	}
	defer r.Close()
	st, err := r.Lstat(rel)
	created := errors.Is(err, fs.ErrNotExist)
	if err == nil && st.IsDir() {
		return false, backends.Errorf(backends.InvalidArgument, "%s: is a directory", rel)
	}
	perm := fs.FileMode(0o644)
	if err == nil && st.Mode().IsRegular() {
		perm = st.Mode().Perm() // rewriting a script keeps it executable
	}
	if dir := path.Dir(rel); dir != "." {
		if err := r.MkdirAll(dir, 0o755); err != nil {
			return false, fileError(err, rel)
		}
	}
	tmp, err := writeTemp(r, path.Dir(rel), data, perm)
	if err != nil {
		return false, fileError(err, rel)
	}
	if err := r.Rename(tmp, rel); err != nil {
		_ = r.Remove(tmp)
		return false, fileError(err, rel)
	}
	return created, nil
}

func writeTemp(r *os.Root, dir string, data []byte, perm fs.FileMode) (string, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := path.Join(dir, ".gitgate-tmp-"+hex.EncodeToString(b[:]))
	f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		_ = r.Remove(name)
		return "", err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		_ = r.Remove(name)
		return "", err
	}
	if err := f.Close(); err != nil {
		_ = r.Remove(name)
		return "", err
	}
	return name, nil
}

// ListDir lists root/rel, recursively if asked, up to max entries, in
// lexical order; symbolic links are listed, not followed.
func (p *Provider) ListDir(_ context.Context, id, root, rel string, recursive bool, max int) ([]sandbox.Entry, error) {
	r, err := p.openRoot(id, root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if st, err := r.Stat(rel); err != nil {
		return nil, fileError(err, rel)
	} else if !st.IsDir() {
		return nil, backends.Errorf(backends.InvalidArgument, "%s: not a directory", rel)
	}
	var out []sandbox.Entry
	err = fs.WalkDir(r.FS(), rel, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == rel {
			return nil
		}
		if len(out) >= max {
			return fs.SkipAll
		}
		out = append(out, entry(name, d))
		if d.IsDir() && !recursive {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fileError(err, rel)
	}
	return out, nil
}

// ListNames returns the names in root/rel (not recursive), sorted, at most
// max: the names ListDir would list, without the types and sizes ListDir
// reads (one stat per file), for callers that only look for names (the git
// directory's in-progress markers, read by every status).
func (p *Provider) ListNames(_ context.Context, id, root, rel string, limit int) ([]string, error) {
	r, err := p.openRoot(id, root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(rel)
	if err != nil {
		return nil, fileError(err, rel)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, backends.Errorf(backends.InvalidArgument, "%s: not a directory", rel)
		}
		return nil, fileError(err, rel)
	}
	slices.Sort(names)
	return names[:min(len(names), max(limit, 0))], nil
}

func entry(name string, d fs.DirEntry) sandbox.Entry {
	e := sandbox.Entry{Path: name, Type: "file"}
	switch {
	case d.Type()&fs.ModeSymlink != 0:
		e.Type = "symlink"
	case d.IsDir():
		e.Type = "dir"
	default:
		if info, err := d.Info(); err == nil {
			e.Size = info.Size()
		}
	}
	return e
}

// Remove deletes root/rel (a file, a symbolic link or an empty directory).
func (p *Provider) Remove(_ context.Context, id, root, rel string) (bool, error) {
	r, err := p.openRoot(id, root)
	if err != nil {
		return false, err
	}
	defer r.Close()
	if _, err := r.Lstat(rel); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err := r.Remove(rel); err != nil {
		return false, fileError(err, rel)
	}
	return true, nil
}

// RemoveAll deletes the tree at the absolute sandbox path target, which
// must lie strictly below the sandbox's root. It is removed through an
// os.Root of the sandbox, so a symbolic link on the way cannot redirect the
// removal outside it.
func (p *Provider) RemoveAll(_ context.Context, id, target string) error {
	info, err := p.lookup(id)
	if err != nil {
		return err
	}
	rel, err := sandboxRel(info, target)
	if err != nil {
		return err
	}
	if rel == "." {
		return backends.Errorf(backends.Internal, "refusing to remove the root of sandbox %s", id)
	}
	sb, err := os.OpenRoot(info.Root)
	if err != nil {
		return fileError(err, ".")
	}
	defer sb.Close()
	if err := sb.RemoveAll(rel); err != nil {
		return backends.Errorf(backends.Internal, "remove: %w", err)
	}
	return nil
}
