package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

var _ sandbox.DiskUser = (*Provider)(nil)

// prlimitPath is util-linux's prlimit(1), which sets a file-size limit
// (RLIMIT_FSIZE) on the command it then becomes; "" when this machine has
// none (the limit is then set on the started process, see Exec).
var prlimitPath = func() string {
	for _, p := range []string{"/usr/bin/prlimit", "/bin/prlimit"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}()

// withFileLimit returns the program and arguments that run path with args
// under a file-size limit of max bytes: through prlimit(1) when present
// (the limit is in place before the program's first instruction), else
// unchanged (Exec then sets it right after the start).
func withFileLimit(max int64, path string, args []string) (string, []string, bool) {
	if max <= 0 || prlimitPath == "" {
		return path, args, false
	}
	return prlimitPath, append([]string{"--fsize=" + strconv.FormatInt(max, 10), "--", path}, args...), true
}

// setFileLimit sets RLIMIT_FSIZE on a started process (the fallback when
// prlimit(1) is missing; the processes it starts later inherit it).
func setFileLimit(pid int, max int64) error {
	lim := syscall.Rlimit{Cur: uint64(max), Max: uint64(max)}
	_, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, uintptr(unsafe.Pointer(&lim)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// DiskUsage walks each path (without following symbolic links) and sums
// the blocks allocated to what it finds, like du -s -B1 run on that path
// alone: a file hard-linked several times under the path counts once (a
// fork's objects, linked to its source's). Files that vanish during the
// walk (git renames its temporary packs) are skipped.
func (p *Provider) DiskUsage(ctx context.Context, id string, paths []string) ([]int64, error) {
	info, err := p.lookup(id)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(paths))
	for i, target := range paths {
		rel, err := sandboxRel(info, target)
		if err != nil {
			return nil, err
		}
		n, err := treeBytes(ctx, filepath.Join(info.Root, rel))
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

func treeBytes(ctx context.Context, dir string) (int64, error) {
	var total int64
	type fileID struct{ dev, ino uint64 }
	seen := map[fileID]bool{}
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if st.Nlink > 1 && !fi.IsDir() {
				id := fileID{uint64(st.Dev), st.Ino}
				if seen[id] {
					return nil
				}
				seen[id] = true
			}
			total += st.Blocks * 512
		} else {
			total += fi.Size()
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0, stopError(ctx.Err())
		}
		return 0, backends.Errorf(backends.Internal, "measure disk use: %w", err)
	}
	return total, nil
}
