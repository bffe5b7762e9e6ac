package local

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// execAround runs req with its Around (sandbox.Around) done directly on
// the sandbox's files, through an os.Root of the sandbox: nothing can lead
// out of it.
func (p *Provider) execAround(ctx context.Context, id string, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	a := req.Around
	if stop, err := p.guard(id, a.Guard); err != nil || stop {
		return sandbox.ExecResult{Around: sandbox.AroundResult{Stopped: stop}}, err
	}
	for _, target := range a.Remove {
		if err := p.RemoveAll(ctx, id, target); err != nil {
			return sandbox.ExecResult{}, err
		}
	}
	if err := p.create(id, a.Create); err != nil {
		return sandbox.ExecResult{}, err
	}
	var before []int64
	if len(a.Disk) > 0 {
		var err error
		if before, err = p.DiskUsage(ctx, id, diskPaths(a)); err != nil {
			return sandbox.ExecResult{}, err
		}
		if a.Full(before) {
			return sandbox.ExecResult{Around: sandbox.AroundResult{Refused: true, DiskBefore: before}}, nil
		}
		req.MaxFileBytes = a.FileCap(req.MaxFileBytes, before)
	}
	res, err := p.exec(ctx, id, req)
	if err != nil {
		return res, err
	}
	res.Around.DiskBefore = before
	if len(a.Disk) > 0 {
		res.Around.DiskAfter, _ = p.DiskUsage(context.WithoutCancel(ctx), id, diskPaths(a)) // nil on failure: the caller measures
	}
	res.Around.Files, res.Around.Names, res.Around.After = p.readAfter(id, a)
	return res, nil
}

// guard reports whether g holds in sandbox id.
func (p *Provider) guard(id string, g sandbox.Guard) (bool, error) {
	if g.If == "" {
		return false, nil
	}
	info, err := p.lookup(id)
	if err != nil {
		return false, err
	}
	sb, err := os.OpenRoot(info.Root)
	if err != nil {
		return false, fileError(err, ".")
	}
	defer sb.Close()
	exists := func(abs string) (bool, error) {
		rel, err := sandboxRel(info, abs)
		if err != nil {
			return false, err
		}
		_, err = sb.Lstat(rel)
		if errors.Is(err, fs.ErrNotExist) || (err != nil && strings.Contains(err.Error(), "not a directory")) {
			return false, nil
		}
		return err == nil, err
	}
	held, err := exists(g.If)
	if err != nil || !held || g.Unless == "" {
		return held, err
	}
	marked, err := exists(g.Unless)
	return !marked, err
}

func diskPaths(a sandbox.Around) []string {
	paths := make([]string, len(a.Disk))
	for i, d := range a.Disk {
		paths[i] = d.Path
	}
	return paths
}

// create makes the empty files (an existing one emptied), with their
// parent directories.
func (p *Provider) create(id string, files []string) error {
	if len(files) == 0 {
		return nil
	}
	info, err := p.lookup(id)
	if err != nil {
		return err
	}
	sb, err := os.OpenRoot(info.Root)
	if err != nil {
		return fileError(err, ".")
	}
	defer sb.Close()
	for _, f := range files {
		rel, err := sandboxRel(info, f)
		if err != nil {
			return err
		}
		if err := sb.MkdirAll(path.Dir(rel), 0o755); err != nil {
			return backends.Errorf(backends.Internal, "create %s: %w", rel, err)
		}
		fh, err := sb.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return backends.Errorf(backends.Internal, "create %s: %w", rel, err)
		}
		_ = fh.Close()
	}
	return nil
}

// readAfter reads a's Head, Read and List; ok is false when one could not
// be read for another reason than its absence.
func (p *Provider) readAfter(id string, a sandbox.Around) (files map[string][]byte, names []string, ok bool) {
	if a.Head == "" && len(a.Read) == 0 && a.List == "" {
		return nil, nil, true
	}
	info, err := p.lookup(id)
	if err != nil {
		return nil, nil, false
	}
	sb, err := os.OpenRoot(info.Root)
	if err != nil {
		return nil, nil, false
	}
	defer sb.Close()
	files = map[string][]byte{}
	ok = true
	read := func(abs string) []byte {
		data, found, err := readIn(info, sb, abs)
		if err != nil {
			ok = false
		}
		if found {
			files[abs] = data
		}
		return data
	}
	if a.Head != "" {
		head := strings.TrimSpace(string(read(a.Head + "/HEAD")))
		if ref, symbolic := strings.CutPrefix(head, "ref: "); symbolic && strings.HasPrefix(ref, "refs/") {
			refFile := a.Head + "/" + ref
			if read(refFile); files[refFile] == nil { // not a loose ref
				read(a.Head + "/packed-refs")
			}
		}
	}
	for _, f := range a.Read {
		read(f)
	}
	if a.List != "" {
		rel, err := sandboxRel(info, a.List)
		if err != nil {
			return files, nil, false
		}
		d, err := sb.Open(rel)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			ok = false
		default:
			all, err := d.Readdirnames(-1)
			_ = d.Close()
			if err != nil {
				ok = false
				break
			}
			slices.Sort(all)
			names = all[:min(len(all), sandbox.MaxAroundList)]
		}
	}
	return files, names, ok
}

// readIn reads the first sandbox.MaxAroundRead bytes of the regular file
// at the absolute sandbox path abs; found is false when there is none.
func readIn(info sandbox.Info, sb *os.Root, abs string) (data []byte, found bool, err error) {
	rel, err := sandboxRel(info, abs)
	if err != nil {
		return nil, false, err
	}
	f, err := sb.Open(rel)
	if errors.Is(err, fs.ErrNotExist) || (err != nil && strings.Contains(err.Error(), "not a directory")) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if !st.Mode().IsRegular() {
		return nil, false, nil
	}
	data, err = io.ReadAll(io.LimitReader(f, sandbox.MaxAroundRead))
	return data, err == nil, err
}
