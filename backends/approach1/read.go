package approach1

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
)

func (e *Executor) status(ctx context.Context, r *backends.StatusRequest) (*backends.StatusResult, error) {
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	res, err := e.git(ctx, w.Binding, gitRun{op: backends.OpStatus, args: gitcmd.StatusArgs, read: true})
	if err != nil {
		return nil, err
	}
	st := gitcmd.ParseStatus(res.Stdout)
	return &st, nil
}

func (e *Executor) diff(ctx context.Context, r *backends.DiffRequest) (*backends.DiffResult, error) {
	args := []string{"diff", "--no-color"} // Build adds --no-ext-diff --no-textconv
	if r.Staged {
		args = append(args, "--cached")
	}
	args = append(args, "--end-of-options")
	if r.Ref != "" {
		if err := gitcmd.ValidateRev(r.Ref); err != nil {
			return nil, err
		}
		args = append(args, r.Ref)
	}
	paths, err := gitcmd.ValidatePaths(r.Paths)
	if err != nil {
		return nil, err
	}
	args = append(append(args, "--"), paths...)
	offset, limit, err := e.page(r.Page, e.cfg.Limits.MaxOutputBytes)
	if err != nil {
		return nil, err
	}
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	res, err := e.git(ctx, w.Binding, gitRun{op: backends.OpDiff, args: args, read: true, maxOut: offset + limit + 1})
	if err != nil {
		return nil, err
	}
	text, trunc := window(res.Stdout, offset, limit, true)
	return &backends.DiffResult{Diff: text, Truncation: trunc}, nil
}

// page checks paging arguments and applies the cap.
func (e *Executor) page(p backends.Page, capacity int) (offset, limit int, err error) {
	if p.Offset < 0 || p.Limit < 0 {
		return 0, 0, backends.Errorf(backends.InvalidArgument, "offset and limit must not be negative")
	}
	if p.Offset > 1<<30 {
		return 0, 0, backends.Errorf(backends.InvalidArgument, "offset is too large")
	}
	limit = p.Limit
	if limit == 0 || limit > capacity {
		limit = capacity
	}
	return p.Offset, limit, nil
}

// window returns out[offset:offset+limit], shortened to end on a line (when
// lines is set and a newline exists) or at least on a UTF-8 boundary, and
// says whether more follows.
func window(out []byte, offset, limit int, lines bool) (string, backends.Truncation) {
	if offset >= len(out) {
		return "", backends.Truncation{}
	}
	chunk := out[offset:]
	if len(chunk) <= limit {
		return string(chunk), backends.Truncation{}
	}
	chunk = chunk[:limit]
	if i := strings.LastIndexByte(string(chunk), '\n'); lines && i >= 0 {
		chunk = chunk[:i+1]
	}
	for len(chunk) > 0 && !utf8.Valid(chunk[max(0, len(chunk)-utf8.UTFMax):]) {
		chunk = chunk[:len(chunk)-1]
	}
	return string(chunk), backends.Truncation{Truncated: true, NextOffset: offset + len(chunk)}
}

const (
	defaultLogLimit = 20
	maxLogLimit     = 200
)

func (e *Executor) log(ctx context.Context, r *backends.LogRequest) (*backends.LogResult, error) {
	args, limit, err := logArgs(r)
	if err != nil {
		return nil, err
	}
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if r.Ref == "" {
		if _, sha, err := e.head(ctx, w.Binding); err != nil || sha == "" {
			return &backends.LogResult{Commits: []backends.Commit{}}, err
		}
	}
	res, err := e.git(ctx, w.Binding, gitRun{op: backends.OpLog, args: args, read: true, maxOut: 16 << 20})
	if err != nil {
		return nil, err
	}
	commits := gitcmd.ParseLog(res.Stdout)
	out := &backends.LogResult{Commits: commits}
	if len(commits) > limit {
		out.Commits, out.Truncated, out.NextSkip = commits[:limit], true, r.Skip+limit
	}
	return out, nil
}

func logArgs(r *backends.LogRequest) ([]string, int, error) {
	limit := r.Limit
	switch {
	case limit < 0 || r.Skip < 0:
		return nil, 0, backends.Errorf(backends.InvalidArgument, "limit and skip must not be negative")
	case limit == 0:
		limit = defaultLogLimit
	case limit > maxLogLimit:
		limit = maxLogLimit
	}
	args := []string{"log", "-z", gitcmd.LogFormat, "--max-count=" + strconv.Itoa(limit+1), "--skip=" + strconv.Itoa(r.Skip), "--end-of-options"}
	if r.Ref != "" {
		if err := gitcmd.ValidateRev(r.Ref); err != nil {
			return nil, 0, err
		}
		args = append(args, r.Ref)
	}
	paths, err := gitcmd.ValidatePaths(r.Paths)
	if err != nil {
		return nil, 0, err
	}
	return append(append(args, "--"), paths...), limit, nil
}

func (e *Executor) branches(ctx context.Context, r *backends.BranchesRequest) (*backends.BranchesResult, error) {
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	args := []string{"for-each-ref", gitcmd.BranchesFormat, "refs/heads/"}
	if r.Remote {
		args = append(args, "refs/remotes/")
	}
	res, err := e.git(ctx, w.Binding, gitRun{op: backends.OpBranches, args: args, read: true, noTree: true, maxOut: 16 << 20})
	if err != nil {
		return nil, err
	}
	out := gitcmd.ParseBranches(res.Stdout)
	if out.Current == "" {
		if branch, _, err := e.head(ctx, w.Binding); err == nil {
			out.Current = branch // an unborn branch has no ref yet
		}
	}
	return &out, nil
}
