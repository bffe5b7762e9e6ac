// Package atomicfile replaces a file's content atomically and durably: a
// reader sees the old file or the new one, never part of either, and once
// Write returns a crash does not lose the new one. It is the one home of
// the write-to-a-temporary-file, sync, rename, sync-the-directory sequence
// that gitgate's file stores (flags, bindings, budget, branch records,
// drill history) share.
package atomicfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces path with data. The temporary file is made in path's
// directory with a leading dot (out of globs and directory listings that
// skip hidden files) and removed on failure. An existing file keeps its
// permissions; a new one gets perm.
func Write(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if fi, serr := os.Stat(path); serr == nil {
		perm = fi.Mode().Perm()
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The rename is durable once the directory is synced.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	defer func() { _ = d.Close() }()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

// Update runs fn on the JSON state kept at path, under an exclusive flock
// of path+".lock" (held by every process that updates it), and replaces
// the file with Write when fn reports a change. A missing file is the zero
// state; fresh fills in what a decoded state may lack (nil maps). An error
// of fn is returned as it is, and nothing is written.
func Update[T any](path string, perm fs.FileMode, fresh func(*T), fn func(*T) (bool, error)) error {
	lk, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lk.Close()
	if err := syscall.Flock(int(lk.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", path+".lock", err)
	}
	var st T
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	fresh(&st)
	changed, err := fn(&st)
	if err != nil || !changed {
		return err
	}
	out, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return Write(path, out, perm)
}
