package approach1

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

func (e *Executor) status(ctx context.Context, r *backends.StatusRequest) (*backends.StatusResult, error) {
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	res, err := e.git(ctx, w.Binding, gitRun{op: backends.OpStatus, args: gitcmd.StatusArgs, read: true, around: sandbox.Around{List: w.GitDir()}})
	if err != nil {
		return nil, err
	}
	st := gitcmd.ParseStatus(res.Stdout)
	p, err := e.inProgressAfter(ctx, w.Binding, res) // the git directory, listed after status
	if err != nil {
		return nil, err
	}
	st.InProgress = p.op
	if hasUnmerged(st.Entries) { // the stages need ls-files; most statuses have no conflict
		if st.Conflicts, err = e.conflicts(ctx, w.Binding, backends.OpStatus); err != nil {
			return nil, err
		}
	}
	return &st, nil
}

// hasUnmerged reports whether a status lists an unmerged path (git's XY
// pairs DD, AU, UD, UA, DU, AA, UU).
func hasUnmerged(entries []backends.StatusEntry) bool {
	for _, en := range entries {
		switch en.Staged + en.Unstaged {
		case "DD", "AU", "UD", "UA", "DU", "AA", "UU":
			return true
		}
	}
	return false
}

// diff shows the changes of the work tree (or of the index, with Staged)
// and, unless Staged, the new files git does not track yet, which are part
// of the agent's change too: git's diff of the tracked files, followed by
// the new files' diffs (as added files, also when Ref is given). Both are
// streamed: the offset's bytes are skipped as git writes them, and at most
// one page is kept, so a call's memory does not depend on its offset.
func (e *Executor) diff(ctx context.Context, r *backends.DiffRequest) (*backends.DiffResult, error) {
	args := []string{"diff", "--no-color"} // Build adds --no-ext-diff --no-textconv
	if r.Staged {
		args = append(args, "--cached")
	}
	args = append(args, "--end-of-options")
	if r.Ref != "" {
		if err := validateReflogRev(r.Ref); err != nil {
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
	res, err := e.git(ctx, w.Binding, gitRun{op: backends.OpDiff, args: args, read: true, maxOut: limit + 1, skip: int64(offset)})
	if err != nil {
		return nil, err
	}
	out := res.Stdout
	if !r.Staged && len(out) <= limit { // the page is not full: the new files follow
		more, err := e.diffNewFiles(ctx, w, paths, max(0, int64(offset)-res.StdoutTotalBytes), limit+1-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	text, trunc := window(out, 0, limit, true)
	if trunc.Truncated {
		trunc.NextOffset += offset
	}
	return &backends.DiffResult{Diff: text, Truncation: trunc}, nil
}

// maxNewFileList bounds the list of untracked files diff reads (NUL
// separated paths); the files past it are not shown.
const maxNewFileList = 4 << 20

// diffNewFiles returns the diff of the untracked, not ignored files under
// paths as new files, skipping its first skip bytes and keeping at most
// keep. The files are added with intent-to-add to a scratch index (an
// empty one in the sandbox's temporary directory), so the workspace's own
// index is never written: reads run beside writers.
func (e *Executor) diffNewFiles(ctx context.Context, w *workspace, paths []string, skip int64, keep int) ([]byte, error) {
	ls := append([]string{"ls-files", "-z", "--others", "--exclude-standard", "--"}, paths...)
	res, err := e.git(ctx, w.Binding, gitRun{op: backends.OpDiff, args: ls, read: true, maxOut: maxNewFileList})
	if err != nil || len(res.Stdout) == 0 {
		return nil, err
	}
	list := res.Stdout
	if res.StdoutTruncated { // keep whole names only
		list = list[:bytes.LastIndexByte(list, 0)+1]
	}
	sc, cleanup, err := e.scratch(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	run := func(g gitRun) (sandbox.ExecResult, error) {
		g.op, g.read = backends.OpDiff, true
		inv := gitcmd.Invocation{GitDir: w.GitDir(), WorkTree: w.WorkTree(), Args: g.args, ReadOnly: true, Scratch: sc}
		res, err := e.exec(ctx, w.SandboxID, w.Root, g, inv)
		if err == nil && res.ExitCode != 0 {
			err = gitError(res, w.Root)
		}
		return res, err
	}
	add := []string{"add", "--intent-to-add", "--pathspec-from-file=-", "--pathspec-file-nul"}
	// Build makes every pathspec literal: the names go as listed.
	if _, err := run(gitRun{args: add, stdin: list}); err != nil {
		return nil, err
	}
	diff := append([]string{"diff", "--no-color", "--end-of-options", "--"}, paths...)
	res, err = run(gitRun{args: diff, maxOut: keep, skip: skip})
	return res.Stdout, err
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
	g := gitRun{op: backends.OpLog, args: args, read: true, maxOut: 16 << 20}
	if r.Ref == "" {
		g.around = headRead(w.Binding) // HEAD, read with the log: a branch without commits has none
	}
	res, err := e.git(ctx, w.Binding, g)
	if r.Ref == "" && (err != nil || res.ExitCode != 0) {
		if _, sha, herr := e.headAfter(ctx, w.Binding, res); herr != nil || sha == "" {
			return &backends.LogResult{Commits: []backends.Commit{}}, herr
		}
	}
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
		if err := validateReflogRev(r.Ref); err != nil {
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
