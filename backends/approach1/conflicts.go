package approach1

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Conflicts are a state of the workspace, not an error: a merge, rebase,
// cherry-pick or revert that stops on conflicts leaves the workspace in the
// middle of it, with its unmerged paths, for the agent to resolve
// (write_file, mark_resolved) and then continue or abort. The state is read
// from the git directory (the files git keeps while an operation waits)
// and from the index (the unmerged entries), without the workspace's lock.

// The operations that can wait for the agent, as results name them.
const (
	opMerge      = "merge"
	opRebase     = "rebase"
	opCherryPick = "cherry_pick"
	opRevert     = "revert"
)

// pending is what the git directory says is in progress.
type pending struct {
	op string // opMerge, opRebase, opCherryPick, opRevert or ""
	// pickHead is set when the step that stopped waits to be committed
	// (CHERRY_PICK_HEAD or REVERT_HEAD exists); sequence when more steps
	// follow it (git's sequencer directory).
	pickHead, sequence bool
}

// maxGitDirEntries bounds the listing of the git directory's top level
// (a few dozen names in a workspace).
const maxGitDirEntries = 1000

// inProgress reads which operation waits in b (lock-free): one listing of
// the git directory's top level, and the sequencer's todo list when there
// is one.
func (e *Executor) inProgress(ctx context.Context, b sandbox.Binding) (pending, error) {
	return e.inProgressAfter(ctx, b, sandbox.ExecResult{})
}

// inProgressAfter is inProgress from the listing of the git directory res
// made after its command (sandbox.Around.List), when it made one.
func (e *Executor) inProgressAfter(ctx context.Context, b sandbox.Binding, res sandbox.ExecResult) (pending, error) {
	list := res.Around.Names
	if !res.Around.After || list == nil {
		var err error
		if list, err = e.provider().listNames(ctx, b.SandboxID, b.GitDir(), ".", maxGitDirEntries); err != nil {
			return pending{}, err
		}
	}
	names := make(map[string]bool, len(list))
	for _, name := range list {
		names[name] = true
	}
	var p pending
	switch {
	case names["rebase-merge"] || names["rebase-apply"]:
		return pending{op: opRebase}, nil
	case names["MERGE_HEAD"]:
		return pending{op: opMerge}, nil
	case names["CHERRY_PICK_HEAD"]:
		p = pending{op: opCherryPick, pickHead: true}
	case names["REVERT_HEAD"]:
		p = pending{op: opRevert, pickHead: true}
	}
	if !names["sequencer"] {
		return p, nil
	}
	todo, err := e.readGitFile(ctx, b, "sequencer/todo")
	if backends.CategoryOf(err) == backends.NotFound {
		return p, nil
	}
	if err != nil {
		return pending{}, err
	}
	if op := sequenceOp(todo); op != "" {
		p.op, p.sequence = op, true
	}
	return p, nil
}

// sequenceOp returns the operation of a sequencer todo list: its first
// instruction, pick or revert ("" for an empty list).
func sequenceOp(todo []byte) string {
	for line := range strings.SplitSeq(string(todo), "\n") {
		word, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch word {
		case "", "#":
			continue
		case "pick", "p":
			return opCherryPick
		case "revert":
			return opRevert
		}
		return ""
	}
	return ""
}

// conflicts lists b's unmerged paths (lock-free).
func (e *Executor) conflicts(ctx context.Context, b sandbox.Binding, op backends.Op) ([]backends.ConflictPath, error) {
	res, err := e.git(ctx, b, gitRun{op: op, args: []string{"ls-files", "--unmerged", "-z"}, read: true, maxOut: 16 << 20})
	if err != nil {
		return nil, err
	}
	return parseUnmerged(res.Stdout), nil
}

// parseUnmerged parses "git ls-files --unmerged -z" ("<mode> <object>
// <stage>\t<path>" records) into the paths with their stages and git's
// name for each combination, in path order.
func parseUnmerged(out []byte) []backends.ConflictPath {
	stages := map[string][]int{}
	var order []string
	for rec := range bytes.SplitSeq(out, []byte{0}) {
		meta, path, ok := bytes.Cut(rec, []byte{'\t'})
		if !ok || len(path) == 0 {
			continue
		}
		f := bytes.Fields(meta)
		if len(f) != 3 {
			continue
		}
		stage, err := strconv.Atoi(string(f[2]))
		if err != nil || stage < 1 || stage > 3 {
			continue
		}
		p := string(path)
		if _, seen := stages[p]; !seen {
			order = append(order, p)
		}
		if !slices.Contains(stages[p], stage) {
			stages[p] = append(stages[p], stage)
		}
	}
	slices.Sort(order)
	out2 := make([]backends.ConflictPath, 0, len(order))
	for _, p := range order {
		s := stages[p]
		slices.Sort(s)
		out2 = append(out2, backends.ConflictPath{Path: p, Kind: conflictKind(s), Stages: s})
	}
	return out2
}

// conflictKind names an unmerged path's stages as git status does.
func conflictKind(stages []int) string {
	has := func(n int) bool { return slices.Contains(stages, n) }
	switch {
	case has(2) && has(3) && has(1):
		return "both_modified"
	case has(2) && has(3):
		return "both_added"
	case has(1) && has(2):
		return "deleted_by_them"
	case has(1) && has(3):
		return "deleted_by_us"
	case has(2):
		return "added_by_us"
	case has(3):
		return "added_by_them"
	default:
		return "both_deleted"
	}
}

// stoppedState reads, lock-free (a read), what the workspace b is in the
// middle of: the merge, rebase, cherry-pick or revert waiting for the
// agent (InProgress), its unmerged paths (Conflicts) and what to do next
// (Next). A workspace with nothing in progress and no unmerged path gives
// a zero Stopped.
func (e *Executor) stoppedState(ctx context.Context, b sandbox.Binding) (backends.Stopped, error) {
	p, err := e.inProgress(ctx, b)
	if err != nil {
		return backends.Stopped{}, err
	}
	paths, err := e.conflicts(ctx, b, backends.OpStatus)
	if err != nil {
		return backends.Stopped{}, err
	}
	return stopped(p.op, paths), nil
}

// stopped is the Stopped of operation op (or none) with conflicts paths.
func stopped(op string, paths []backends.ConflictPath) backends.Stopped {
	s := backends.Stopped{InProgress: op, Conflicts: paths}
	switch {
	case op != "" && len(paths) > 0:
		s.Next = "resolve the conflicts: edit each conflicted file with write_file (or delete it with delete_file), then call mark_resolved with its path; when none is left, call continue to finish the " + opWords(op) + ", or call abort to go back to where the workspace was before it"
	case op != "":
		s.Next = "every conflict is resolved: call continue to finish the " + opWords(op) + ", or abort to go back to where the workspace was before it"
	case len(paths) > 0:
		s.Next = "resolve the conflicts: edit each conflicted file with write_file (or delete it with delete_file), then call mark_resolved with its path"
	}
	return s
}

// opWords is an operation as a sentence names it.
func opWords(op string) string { return strings.ReplaceAll(op, "_", "-") }

// refuseMidOperation refuses what cannot run while an operation waits for
// the agent (another merge-like operation, a checkout, a pull): doing is
// what it refuses, in words ("merge", "check out a branch").
func (e *Executor) refuseMidOperation(ctx context.Context, b sandbox.Binding, doing string) error {
	p, err := e.inProgress(ctx, b)
	if err != nil {
		return err
	}
	if p.op == "" {
		return nil
	}
	return backends.Errorf(backends.Conflict, "a %s is in progress: resolve its conflicts and continue, or abort, before you %s", opWords(p.op), doing)
}

// pathsOf returns the paths of conflicts.
func pathsOf(conflicts []backends.ConflictPath) []string {
	out := make([]string, len(conflicts))
	for i, c := range conflicts {
		out[i] = c.Path
	}
	return out
}

// listed joins names for a message, at most ten of them.
func listed(names []string) string {
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + " and " + strconv.Itoa(len(names)-10) + " more"
	}
	return strings.Join(names, ", ")
}
