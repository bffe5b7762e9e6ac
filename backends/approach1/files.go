package approach1

import (
	"context"
	"encoding/base64"
	"unicode/utf8"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Work-tree file operations go through the sandbox provider, which confines
// them to the work tree (no '..', no symbolic link out of it). The git
// directory lives outside the work tree, so they cannot reach it either.

func (e *Executor) readFile(ctx context.Context, r *backends.ReadFileRequest) (*backends.ReadFileResult, error) {
	rel, err := gitcmd.ValidatePath(r.Path, false)
	if err != nil {
		return nil, err
	}
	offset, limit, err := e.page(r.Page, e.cfg.Limits.MaxOutputBytes)
	if err != nil {
		return nil, err
	}
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	fd, err := e.provider().ReadFile(ctx, w.SandboxID, w.WorkTree(), rel, int64(offset), int64(limit))
	if err != nil {
		return nil, err
	}
	res := &backends.ReadFileResult{Path: rel, Size: fd.Size}
	res.Content, res.Encoding, res.Truncation = textPage(fd.Data, offset, fd.Size)
	return res, nil
}

// textPage is page, the bytes of a file of size bytes read from offset, as
// a result carries them: UTF-8 text (a sequence the page end cut is left
// for the next page), or the whole page in base64 when it is not valid
// UTF-8; with where to continue when more follows.
func textPage(page []byte, offset int, size int64) (content, encoding string, t backends.Truncation) {
	data := page
	if more := int64(offset+len(data)) < size; more {
		data = trimToRune(data)
		t = backends.Truncation{Truncated: true, NextOffset: offset + len(data)}
	}
	if utf8.Valid(data) {
		return string(data), "utf-8", t
	}
	if t.Truncated {
		t.NextOffset = offset + len(page)
	}
	return base64.StdEncoding.EncodeToString(page), "base64", t
}

// trimToRune drops a UTF-8 sequence cut by the page end, when the page is
// otherwise valid text.
func trimToRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > i; i++ {
		if utf8.Valid(b[:len(b)-i]) {
			return b[:len(b)-i]
		}
	}
	return b
}

func (e *Executor) writeFile(ctx context.Context, r *backends.WriteFileRequest) (*backends.WriteFileResult, error) {
	rel, err := gitcmd.ValidatePath(r.Path, false)
	if err != nil {
		return nil, err
	}
	data, err := e.decodeContent(r)
	if err != nil {
		return nil, err
	}
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	created, err := e.provider().WriteFile(ctx, w.SandboxID, w.WorkTree(), rel, data)
	if err != nil {
		return nil, err
	}
	e.record(ctx, w, func(b *sandbox.Binding) { b.Dirty = true })
	return &backends.WriteFileResult{Served: written(w), Path: rel, Size: int64(len(data)), Created: created}, nil
}

func (e *Executor) decodeContent(r *backends.WriteFileRequest) ([]byte, error) {
	max := e.cfg.Limits.MaxFileBytes
	if len(r.Content) > max*4/3+4 {
		return nil, backends.Errorf(backends.ResourceExhausted, "content is larger than the %d-byte limit", max)
	}
	var data []byte
	switch r.Encoding {
	case "", "utf-8":
		if !utf8.ValidString(r.Content) {
			return nil, backends.Errorf(backends.InvalidArgument, "content is not valid UTF-8; send it with encoding base64")
		}
		data = []byte(r.Content)
	case "base64":
		d, err := base64.StdEncoding.DecodeString(r.Content)
		if err != nil {
			return nil, backends.Errorf(backends.InvalidArgument, "content is not valid base64: %v", err)
		}
		data = d
	default:
		return nil, backends.Errorf(backends.InvalidArgument, "encoding must be utf-8 or base64, not %q", r.Encoding)
	}
	if len(data) > max {
		return nil, backends.Errorf(backends.ResourceExhausted, "content is larger than the %d-byte limit", max)
	}
	return data, nil
}

func (e *Executor) listFiles(ctx context.Context, r *backends.ListFilesRequest) (*backends.ListFilesResult, error) {
	rel, err := gitcmd.ValidatePath(r.Path, true)
	if err != nil {
		return nil, err
	}
	offset, limit, err := e.page(r.Page, e.cfg.Limits.MaxListEntries)
	if err != nil {
		return nil, err
	}
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	entries, err := e.provider().ListDir(ctx, w.SandboxID, w.WorkTree(), rel, r.Recursive, offset+limit+1)
	if err != nil {
		return nil, err
	}
	res := &backends.ListFilesResult{Entries: []backends.FileEntry{}}
	for i := offset; i < len(entries) && i < offset+limit; i++ {
		en := entries[i]
		res.Entries = append(res.Entries, backends.FileEntry{Path: en.Path, Type: en.Type, Size: en.Size})
	}
	if len(entries) > offset+limit {
		res.Truncation = backends.Truncation{Truncated: true, NextOffset: offset + limit}
	}
	return res, nil
}

func (e *Executor) deleteFile(ctx context.Context, r *backends.DeleteFileRequest) (*backends.DeleteFileResult, error) {
	rel, err := gitcmd.ValidatePath(r.Path, false)
	if err != nil {
		return nil, err
	}
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	existed, err := e.provider().Remove(ctx, w.SandboxID, w.WorkTree(), rel)
	if err != nil {
		return nil, err
	}
	if existed {
		e.record(ctx, w, func(b *sandbox.Binding) { b.Dirty = true })
	}
	return &backends.DeleteFileResult{Served: written(w), Path: rel, Deleted: existed}, nil
}
