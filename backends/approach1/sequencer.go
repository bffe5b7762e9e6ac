package approach1

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// The merge-like operations (merge, rebase, cherry_pick, revert) and the
// three that finish what they leave (mark_resolved, continue, abort).
//
// Each starts only on a branch, with nothing in progress and no
// uncommitted change to a tracked file (untracked files may stay): abort
// then brings the workspace back exactly (git's own abort cannot always
// rebuild changes it found). One that stops on conflicts is not undone: its
// result says so (Stopped) and the workspace waits for the agent. No
// editor ever runs (the hardening sets core.editor to false, so a command
// that wanted one would fail): messages are given (--no-edit, -C, --file)
// and the steps git would commit through an editor are committed here.
// Hooks never run (core.hooksPath=/dev/null, and --no-verify where git has
// it).

// maxPicks bounds the commits of one cherry_pick or revert.
const maxPicks = 50

// rerere keeps git's recorded resolutions (off by default) from staging
// anything on their own.
const rerere = "--no-rerere-autoupdate"

func (e *Executor) merge(ctx context.Context, r *backends.MergeRequest) (*backends.MergeResult, error) {
	if r.FFOnly && r.NoFF {
		return nil, backends.Errorf(backends.InvalidArgument, "ff_only and no_ff cannot both be set")
	}
	if r.Branch != "" {
		if err := gitcmd.ValidateRev(r.Branch); err != nil {
			return nil, err
		}
	}
	args := []string{"merge", "--no-edit", "--no-verify", "--no-stat", "--no-progress", "--no-autostash", rerere}
	switch {
	case r.FFOnly:
		args = append(args, "--ff-only")
	case r.NoFF:
		args = append(args, "--no-ff")
	}
	if r.Message != "" {
		if err := gitcmd.ValidateMessage(r.Message); err != nil {
			return nil, err
		}
		args = append(args, "--cleanup=verbatim", "--message="+r.Message)
	}
	author, err := identity(r.Principal)
	if err != nil {
		return nil, err
	}
	w, lease, branch, before, err := e.begin(ctx, &r.Scope, backends.OpMerge, "merge")
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	target := r.Branch
	if target == "" {
		target = "origin/" + branch
	}
	if _, err := e.resolveCommits(ctx, w.Binding, backends.OpMerge, []string{target}, r.Branch == ""); err != nil {
		return nil, err
	}
	out := &backends.MergeResult{Branch: branch, Before: before, After: before}
	res, err := e.step(ctx, w.Binding, gitRun{op: backends.OpMerge, args: append(args, "--end-of-options", target), author: author})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		st, err := e.stoppedOn(ctx, w, res, true)
		if err != nil {
			if r.FFOnly && strings.Contains(string(res.Stderr), "Not possible to fast-forward") {
				return nil, backends.Errorf(backends.Conflict, "%s cannot be fast-forwarded to %s: they have diverged; merge without ff_only (a merge commit), or rebase onto %s", branch, target, target)
			}
			return nil, err
		}
		out.Served, out.Stopped = written(w), st
		return out, nil
	}
	_, after, err := e.head(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	out.After = after
	switch {
	case after == before:
		out.UpToDate = true
	default:
		parents, err := e.parents(ctx, w.Binding, backends.OpMerge, after)
		if err != nil {
			return nil, err
		}
		out.Merged = len(parents) > 1
		out.FastForward = !out.Merged
		e.record(ctx, w, func(b *sandbox.Binding) { b.Unpushed = addBranch(b.Unpushed, branch) })
	}
	out.Served = written(w)
	return out, nil
}

func (e *Executor) rebase(ctx context.Context, r *backends.RebaseRequest) (*backends.RebaseResult, error) {
	if r.Onto != "" {
		if err := gitcmd.ValidateRev(r.Onto); err != nil {
			return nil, err
		}
	}
	author, err := identity(r.Principal)
	if err != nil {
		return nil, err
	}
	w, lease, branch, before, err := e.begin(ctx, &r.Scope, backends.OpRebase, "rebase")
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	onto := r.Onto
	if onto == "" {
		onto = "origin/" + branch
	}
	ontoSHA, err := e.resolveCommits(ctx, w.Binding, backends.OpRebase, []string{onto}, r.Onto == "")
	if err != nil {
		return nil, err
	}
	args := []string{"rebase", "--merge", "--no-autosquash", "--no-autostash", "--no-update-refs", "--no-fork-point",
		"--no-verify", "--no-stat", rerere, "--end-of-options", onto}
	res, err := e.step(ctx, w.Binding, gitRun{op: backends.OpRebase, args: args, author: author})
	if err != nil {
		return nil, err
	}
	out := &backends.RebaseResult{Branch: branch, Before: before, After: before}
	if res.ExitCode != 0 {
		st, err := e.stoppedOn(ctx, w, res, true)
		if err != nil {
			return nil, err
		}
		out.Served, out.Stopped = written(w), st
		out.Replayed = e.rebaseDone(ctx, w.Binding)
		return out, nil
	}
	_, after, err := e.head(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	out.After = after
	if after == before {
		out.UpToDate = true
	} else {
		mine, err := e.commitsBetween(ctx, w.Binding, backends.OpRebase, ontoSHA[0], after)
		if err != nil {
			return nil, err
		}
		out.Replayed = len(mine)
		e.record(ctx, w, func(b *sandbox.Binding) { b.Unpushed = addBranch(b.Unpushed, branch) })
	}
	out.Served = written(w)
	return out, nil
}

func (e *Executor) cherryPick(ctx context.Context, r *backends.CherryPickRequest) (*backends.CherryPickResult, error) {
	res, err := e.pick(ctx, &r.Scope, backends.OpCherryPick, r.Commits)
	if err != nil {
		return nil, err
	}
	return &backends.CherryPickResult{Served: res.served, Branch: res.branch, Before: res.before, After: res.after, Created: res.created, Stopped: res.stopped}, nil
}

func (e *Executor) revert(ctx context.Context, r *backends.RevertRequest) (*backends.RevertResult, error) {
	res, err := e.pick(ctx, &r.Scope, backends.OpRevert, r.Commits)
	if err != nil {
		return nil, err
	}
	return &backends.RevertResult{Served: res.served, Branch: res.branch, Before: res.before, After: res.after, Created: res.created, Stopped: res.stopped}, nil
}

// picked is the result of a cherry-pick or revert.
type picked struct {
	served                backends.Served
	branch, before, after string
	created               []string
	stopped               backends.Stopped
}

// pick cherry-picks (OpCherryPick) or reverts (OpRevert) commits, in order,
// on the current branch.
func (e *Executor) pick(ctx context.Context, s *backends.Scope, op backends.Op, commits []string) (*picked, error) {
	if len(commits) == 0 || len(commits) > maxPicks {
		return nil, backends.Errorf(backends.InvalidArgument, "commits must name 1 to %d commits", maxPicks)
	}
	for _, c := range commits {
		if err := gitcmd.ValidateRev(c); err != nil {
			return nil, err
		}
	}
	author, err := identity(s.Principal)
	if err != nil {
		return nil, err
	}
	args := []string{"cherry-pick", rerere}
	doing := "cherry-pick"
	if op == backends.OpRevert {
		args, doing = []string{"revert", "--no-edit", rerere}, "revert"
	}
	w, lease, branch, before, err := e.begin(ctx, s, op, doing)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	if _, err := e.resolveCommits(ctx, w.Binding, op, commits, false); err != nil {
		return nil, err
	}
	res, err := e.step(ctx, w.Binding, gitRun{op: op, args: append(append(args, "--end-of-options"), commits...), author: author})
	if err != nil {
		return nil, err
	}
	out := &picked{branch: branch, before: before}
	if res.ExitCode != 0 {
		if out.stopped, err = e.stoppedOn(ctx, w, res, true); err != nil {
			if m := mergeCommit.FindSubmatch(res.Stderr); m != nil {
				return nil, backends.Errorf(backends.InvalidArgument, "commit %s is a merge commit; %s takes ordinary commits only (name the commits the merge brought in instead)", m[1], op)
			}
			return nil, err
		}
	}
	if _, out.after, err = e.head(ctx, w.Binding); err != nil {
		return nil, err
	}
	if out.created, err = e.commitsBetween(ctx, w.Binding, op, before, out.after); err != nil {
		return nil, err
	}
	if res.ExitCode == 0 && out.after != before {
		e.record(ctx, w, func(b *sandbox.Binding) { b.Unpushed = addBranch(b.Unpushed, branch) })
	}
	out.served = written(w)
	return out, nil
}

func (e *Executor) markResolved(ctx context.Context, r *backends.MarkResolvedRequest) (*backends.MarkResolvedResult, error) {
	if len(r.Paths) == 0 {
		return nil, backends.Errorf(backends.InvalidArgument, "paths must name at least one conflicted path")
	}
	paths, err := gitcmd.ValidatePaths(r.Paths)
	if err != nil {
		return nil, err
	}
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	conflicts, err := e.conflicts(ctx, w.Binding, backends.OpMarkResolved)
	if err != nil {
		return nil, err
	}
	conflicted := pathsOf(conflicts)
	var not []string
	for _, p := range paths {
		if !slices.Contains(conflicted, p) {
			not = append(not, p)
		}
	}
	if len(not) > 0 {
		// A path already resolved (a retry) is marked again: git keeps
		// what it resolved until the operation's commit.
		res, err := e.git(ctx, w.Binding, gitRun{op: backends.OpMarkResolved, args: []string{"ls-files", "--resolve-undo", "-z"}, read: true, maxOut: 16 << 20})
		if err != nil {
			return nil, err
		}
		resolved := pathsOf(parseUnmerged(res.Stdout))
		not = slices.DeleteFunc(not, func(p string) bool { return slices.Contains(resolved, p) })
	}
	if len(not) > 0 {
		if len(conflicted) == 0 {
			return nil, backends.Errorf(backends.InvalidArgument, "not conflicted: %s; the workspace has no conflicts", listed(not))
		}
		return nil, backends.Errorf(backends.InvalidArgument, "not conflicted: %s; the conflicted paths are: %s", listed(not), listed(conflicted))
	}
	// add -A stages each path as the work tree has it: its content, or
	// its deletion when the file is gone.
	if _, err := e.git(ctx, w.Binding, gitRun{op: backends.OpMarkResolved, args: append([]string{"add", "-A", "--"}, paths...)}); err != nil {
		return nil, err
	}
	e.record(ctx, w, func(b *sandbox.Binding) { b.Dirty = true })
	remaining, err := e.conflicts(ctx, w.Binding, backends.OpMarkResolved)
	if err != nil {
		return nil, err
	}
	return &backends.MarkResolvedResult{Served: written(w), Resolved: paths, Remaining: remaining}, nil
}

func (e *Executor) continueOp(ctx context.Context, r *backends.ContinueRequest) (*backends.ContinueResult, error) {
	if r.Message != "" {
		if err := gitcmd.ValidateMessage(r.Message); err != nil {
			return nil, err
		}
	}
	author, err := identity(r.Principal)
	if err != nil {
		return nil, err
	}
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	p, err := e.inProgress(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	if p.op == "" {
		return nil, backends.Errorf(backends.Conflict, "nothing to continue: no merge, rebase, cherry-pick or revert is in progress")
	}
	if r.Message != "" && p.op != opMerge {
		return nil, backends.Errorf(backends.InvalidArgument, "message is only used to continue a merge; a %s keeps its commits' messages: call continue without it", opWords(p.op))
	}
	conflicts, err := e.conflicts(ctx, w.Binding, backends.OpContinue)
	if err != nil {
		return nil, err
	}
	if len(conflicts) > 0 {
		return nil, backends.Errorf(backends.Conflict, "%s still conflicted: %s; edit each with write_file, then call mark_resolved with its path, then continue (or abort)",
			plural(len(conflicts), "a path is", "paths are"), listed(pathsOf(conflicts)))
	}
	branch, err := e.opBranch(ctx, w.Binding, p.op)
	if err != nil {
		return nil, err
	}
	steps, err := e.continueSteps(ctx, w.Binding, p, r.Message)
	if err != nil {
		return nil, err
	}
	out := &backends.ContinueResult{Operation: p.op, Branch: branch}
	for i, g := range steps {
		g.op, g.author = backends.OpContinue, author
		if i > 0 && g.args[len(g.args)-1] == "--continue" {
			// The commit before may have ended the sequence: git removes
			// its directory when the step that stopped was the last one,
			// and --continue would then fail after the work is done.
			now, err := e.inProgress(ctx, w.Binding)
			if err != nil {
				return nil, err
			}
			if now.op == "" {
				continue
			}
		}
		res, err := e.step(ctx, w.Binding, g)
		if err != nil {
			return nil, err
		}
		if res.ExitCode == 0 {
			continue
		}
		st, err := e.stoppedOn(ctx, w, res, false)
		if err != nil {
			return nil, err
		}
		_, out.Head, err = e.head(ctx, w.Binding)
		if err != nil {
			return nil, err
		}
		out.Served, out.Stopped = written(w), st
		return out, nil
	}
	branch, head, err := e.head(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	dirty, err := e.dirty(ctx, w.Binding, backends.OpContinue)
	if err != nil {
		return nil, err
	}
	e.record(ctx, w, func(b *sandbox.Binding) {
		b.Unpushed = addBranch(b.Unpushed, branch)
		b.Dirty = dirty
	})
	out.Branch, out.Head, out.Done, out.Served = branch, head, true, written(w)
	return out, nil
}

// continueSteps are the commands that finish the step that stopped and
// go on: the commit git would make through an editor, made here with the
// message git prepared (or message, for a merge), then the sequence's own
// continue when more steps follow.
func (e *Executor) continueSteps(ctx context.Context, b sandbox.Binding, p pending, message string) ([]gitRun, error) {
	commit := func(more ...string) []string {
		return append([]string{"commit", "--quiet", "--no-verify"}, more...)
	}
	// git's prepared message lists the conflicts in comment lines, which
	// strip removes.
	prepared := commit("--no-edit", "--cleanup=strip")
	switch p.op {
	case opMerge:
		if message != "" {
			return []gitRun{{args: commit("--cleanup=verbatim", "--file=-"), stdin: []byte(message)}}, nil
		}
		return []gitRun{{args: prepared}}, nil
	case opRebase:
		var steps []gitRun
		staged, err := e.staged(ctx, b, backends.OpContinue)
		if err != nil {
			return nil, err
		}
		if staged { // the resolution, as the commit being replayed (its message and author)
			steps = append(steps, gitRun{args: commit("--reuse-message=REBASE_HEAD")})
		}
		return append(steps, gitRun{args: []string{"rebase", "--continue"}}), nil
	default:
		var steps []gitRun
		if p.pickHead {
			// --allow-empty: a resolution that leaves the step's change
			// out still concludes it.
			steps = append(steps, gitRun{args: commit("--no-edit", "--cleanup=strip", "--allow-empty")})
		}
		if p.sequence {
			steps = append(steps, gitRun{args: []string{strings.ReplaceAll(p.op, "_", "-"), "--continue"}})
		}
		return steps, nil
	}
}

func (e *Executor) abort(ctx context.Context, r *backends.AbortRequest) (*backends.AbortResult, error) {
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	p, err := e.inProgress(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	if p.op == "" {
		return nil, backends.Errorf(backends.Conflict, "nothing to abort: no merge, rebase, cherry-pick or revert is in progress")
	}
	args := []string{strings.ReplaceAll(p.op, "_", "-"), "--abort"}
	if _, err := e.git(ctx, w.Binding, gitRun{op: backends.OpAbort, args: args}); err != nil {
		return nil, err
	}
	branch, head, err := e.head(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	dirty, err := e.dirty(ctx, w.Binding, backends.OpAbort)
	if err != nil {
		return nil, err
	}
	e.record(ctx, w, func(b *sandbox.Binding) { b.Dirty = dirty })
	return &backends.AbortResult{Served: written(w), Operation: p.op, Branch: branch, Head: head}, nil
}

// begin takes the workspace's lock for a merge-like operation (doing, in
// words) and checks that it may start: on a branch, nothing in progress,
// no uncommitted change to a tracked file. It returns the branch and its
// tip.
func (e *Executor) begin(ctx context.Context, s *backends.Scope, op backends.Op, doing string) (*workspace, lock.Lease, string, string, error) {
	w, lease, err := e.openLocked(ctx, s)
	if err != nil {
		return nil, nil, "", "", err
	}
	fail := func(err error) (*workspace, lock.Lease, string, string, error) {
		finish(ctx, w, lease)
		return nil, nil, "", "", err
	}
	if err := e.refuseMidOperation(ctx, w.Binding, doing); err != nil {
		return fail(err)
	}
	branch, before, err := e.currentBranch(ctx, w.Binding)
	if err != nil {
		return fail(err)
	}
	if before == "" {
		return fail(backends.Errorf(backends.Conflict, "branch %q has no commits yet; commit first", branch))
	}
	args := []string{"status", "--porcelain=v2", "-z", "--untracked-files=no", "--ignore-submodules=all"}
	res, err := e.git(ctx, w.Binding, gitRun{op: op, args: args, read: true, maxOut: 1 << 20})
	if err != nil {
		return fail(err)
	}
	if st := gitcmd.ParseStatus(res.Stdout); len(st.Entries) > 0 {
		changed := make([]string, len(st.Entries))
		for i, en := range st.Entries {
			changed[i] = en.Path
		}
		return fail(backends.Errorf(backends.Conflict, "uncommitted changes to tracked files (%s): commit them (or stash them) before you %s, so that abort can bring the workspace back exactly",
			listed(changed), doing))
	}
	return w, lease, branch, before, nil
}

// mergeCommit finds the merge commit git refuses to cherry-pick or revert
// without a mainline.
var mergeCommit = regexp.MustCompile(`commit ([0-9a-f]+) is a merge but no -m option was given`)

// badRevision finds the name git could not resolve.
var badRevision = regexp.MustCompile(`bad revision '([^']*)\^\{commit\}'`)

// resolveCommits resolves revs to commits, refusing (not found) a name that
// is none; upstream says the single rev is the branch's default upstream.
func (e *Executor) resolveCommits(ctx context.Context, b sandbox.Binding, op backends.Op, revs []string, upstream bool) ([]string, error) {
	args := []string{"rev-parse"}
	for _, r := range revs {
		args = append(args, r+"^{commit}") // revs are validated: none looks like an option
	}
	res, err := e.run(ctx, b, gitRun{op: op, args: append(args, "--"), read: true, noTree: true})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		name := revs[0]
		if m := badRevision.FindSubmatch(res.Stderr); m != nil {
			name = string(m[1])
		}
		if upstream {
			return nil, backends.Errorf(backends.NotFound, "the current branch has no upstream %s in this workspace; fetch, or name the branch to use", name)
		}
		return nil, backends.Errorf(backends.NotFound, "%q is not a branch, tag or commit of this workspace (a remote branch is origin/<name>; fetch first if it is new)", name)
	}
	var shas []string
	for line := range strings.SplitSeq(string(res.Stdout), "\n") {
		if isObjectID(line) {
			shas = append(shas, line)
		}
	}
	if len(shas) != len(revs) {
		return nil, backends.Errorf(backends.Internal, "resolving %d revisions gave %d commits", len(revs), len(shas))
	}
	return shas, nil
}

// step runs one command of a merge-like operation and returns its result
// whatever its exit code (a stale index.lock removed, as for any write).
func (e *Executor) step(ctx context.Context, b sandbox.Binding, g gitRun) (sandbox.ExecResult, error) {
	res, err := e.run(ctx, b, g)
	if err != nil {
		return res, err
	}
	return e.unlockStaleIndex(ctx, b, g, res)
}

// stoppedOn reads what a merge-like command that failed (res) left: the
// operation waiting for the agent, recorded as uncommitted work, or the
// command's error when nothing waits (or, unless anyWait, when nothing
// conflicts: a continue that failed for another reason).
func (e *Executor) stoppedOn(ctx context.Context, w *workspace, res sandbox.ExecResult, anyWait bool) (backends.Stopped, error) {
	failure := gitError(res, w.Root)
	p, err := e.inProgress(ctx, w.Binding)
	if err != nil {
		return backends.Stopped{}, err
	}
	if p.op == "" {
		return backends.Stopped{}, failure
	}
	conflicts, err := e.conflicts(ctx, w.Binding, backends.OpStatus)
	if err != nil {
		return backends.Stopped{}, err
	}
	if len(conflicts) == 0 && !anyWait {
		return backends.Stopped{}, failure
	}
	// Until it is continued or aborted, the workspace holds work a
	// replacement sandbox could not rebuild.
	e.record(ctx, w, func(b *sandbox.Binding) { b.Dirty = true })
	st := stopped(p.op, conflicts)
	switch {
	case len(conflicts) > 0:
	case strings.Contains(string(res.Stderr)+string(res.Stdout), "is now empty"):
		st.Next = "the " + opWords(p.op) + " stopped on a commit whose changes the branch already has: call continue to commit it anyway (an empty commit), or abort to go back to where the workspace was before it"
	default:
		st.Next = "the " + opWords(p.op) + " stopped (" + backends.MessageOf(failure) + "); call continue to go on, or abort to go back to where the workspace was before it"
	}
	return st, nil
}

// opBranch is the branch an operation in progress works on (a rebase
// detaches HEAD until it is done).
func (e *Executor) opBranch(ctx context.Context, b sandbox.Binding, op string) (string, error) {
	branch, _, err := e.head(ctx, b)
	if err != nil || branch != "" || op != opRebase {
		return branch, err
	}
	for _, dir := range []string{"rebase-merge", "rebase-apply"} {
		data, err := e.readGitFile(ctx, b, dir+"/head-name")
		if err == nil {
			return strings.TrimPrefix(strings.TrimSpace(string(data)), "refs/heads/"), nil
		}
	}
	return "", nil
}

// rebaseDone counts the commits a stopped rebase replayed before the one
// that stopped it (0 when unknown).
func (e *Executor) rebaseDone(ctx context.Context, b sandbox.Binding) int {
	data, err := e.readGitFile(ctx, b, "rebase-merge/done")
	if err != nil {
		return 0
	}
	n := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		if word, _, _ := strings.Cut(strings.TrimSpace(line), " "); word == "pick" || word == "p" {
			n++
		}
	}
	return max(n-1, 0)
}

// commitsBetween lists the commits of to that from lacks, oldest first.
func (e *Executor) commitsBetween(ctx context.Context, b sandbox.Binding, op backends.Op, from, to string) ([]string, error) {
	if from == to {
		return []string{}, nil
	}
	args := []string{"rev-list", "--reverse", to, "--not", from, "--"}
	res, err := e.git(ctx, b, gitRun{op: op, args: args, read: true, noTree: true, maxOut: 16 << 20})
	if err != nil {
		return nil, err
	}
	out := strings.Fields(string(res.Stdout))
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// parents returns a commit's parents.
func (e *Executor) parents(ctx context.Context, b sandbox.Binding, op backends.Op, sha string) ([]string, error) {
	res, err := e.git(ctx, b, gitRun{op: op, args: []string{"rev-list", "--parents", "--max-count=1", sha, "--"}, read: true, noTree: true})
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) == 0 {
		return nil, backends.Errorf(backends.Internal, "commit %s not found", sha)
	}
	return f[1:], nil
}

// staged reports whether the index differs from HEAD.
func (e *Executor) staged(ctx context.Context, b sandbox.Binding, op backends.Op) (bool, error) {
	res, err := e.run(ctx, b, gitRun{op: op, args: []string{"diff", "--cached", "--quiet", "HEAD", "--"}, read: true})
	if err != nil {
		return false, err
	}
	switch res.ExitCode {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, gitError(res, b.Root)
}

// dirty reports whether the workspace holds uncommitted work: changes in
// the work tree or the index (untracked files included), or stash entries.
func (e *Executor) dirty(ctx context.Context, b sandbox.Binding, op backends.Op) (bool, error) {
	res, err := e.git(ctx, b, gitRun{op: op, args: gitcmd.StatusArgs, read: true, maxOut: 1 << 20})
	if err != nil {
		return false, err
	}
	if res.StdoutTruncated || !gitcmd.ParseStatus(res.Stdout).Clean {
		return true, nil
	}
	stash, err := e.refSHA(ctx, b, "refs/stash")
	return stash != "", err
}

// checkCommit refuses a commit while paths are unmerged (adding them would
// record their conflict markers as the resolution), and a commit of some
// paths only (partial) while a merge, cherry-pick or revert waits, which
// git refuses: every change is part of concluding it.
func (e *Executor) checkCommit(ctx context.Context, b sandbox.Binding, partial bool) error {
	conflicts, err := e.conflicts(ctx, b, backends.OpCommit)
	if err != nil {
		return err
	}
	if len(conflicts) > 0 {
		return backends.Errorf(backends.Conflict, "%s still conflicted: %s; edit each with write_file and call mark_resolved first, then commit (or continue)",
			plural(len(conflicts), "a path is", "paths are"), listed(pathsOf(conflicts)))
	}
	if !partial {
		return nil
	}
	p, err := e.inProgress(ctx, b)
	if err != nil {
		return err
	}
	if p.op == opMerge || p.pickHead {
		return backends.Errorf(backends.InvalidArgument, "a %s is in progress: commit without paths to conclude it (every change is part of it), or call continue", opWords(p.op))
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
