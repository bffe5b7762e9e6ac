package approach1

import (
	"context"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

func (e *Executor) commit(ctx context.Context, r *backends.CommitRequest) (*backends.CommitResult, error) {
	if err := gitcmd.ValidateMessage(r.Message); err != nil {
		return nil, err
	}
	paths, err := gitcmd.ValidatePaths(r.Paths)
	if err != nil {
		return nil, err
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
	if err := e.checkCommit(ctx, w.Binding, len(paths) > 0); err != nil {
		return nil, err
	}
	add := append([]string{"add", "-A", "--"}, paths...)
	if _, err := e.git(ctx, w.Binding, gitRun{op: backends.OpCommit, args: add}); err != nil {
		return nil, err
	}
	commit := []string{"commit", "--quiet", "--no-verify", "--cleanup=verbatim", "--file=-"}
	res, err := e.git(ctx, w.Binding, gitRun{op: backends.OpCommit, args: commit, author: author, stdin: []byte(r.Message), around: commitRead(w.Binding)})
	if err != nil {
		// Unstage what add staged, so that a failed commit does not slip
		// into the next one. The work tree is untouched either way.
		unstage := gitRun{op: backends.OpCommit, args: append([]string{"reset", "--quiet", "--"}, paths...)}
		if _, rerr := e.git(context.WithoutCancel(ctx), w.Binding, unstage); rerr != nil {
			e.cfg.Logger.Warn("unstaging after a failed commit failed", "workspace", w.Key.String(), "err", rerr)
		}
		return nil, err
	}
	branch, sha, err := e.headAfter(ctx, w.Binding, res)
	if err != nil {
		return nil, err
	}
	e.record(ctx, w, func(b *sandbox.Binding) {
		b.Unpushed = addBranch(b.Unpushed, branch)
		if len(paths) == 0 {
			b.Dirty = e.stashKeptAfter(ctx, w.Binding, res) // everything was committed; stash entries are still work (undo.go)
		}
	})
	return &backends.CommitResult{Served: written(w), SHA: sha, Branch: branch}, nil
}

func (e *Executor) checkout(ctx context.Context, r *backends.CheckoutRequest) (*backends.CheckoutResult, error) {
	validate := gitcmd.ValidateBranch
	if r.Create {
		validate = gitcmd.ValidateNewBranch
	}
	if err := validate(r.Branch); err != nil {
		return nil, err
	}
	args := []string{"switch", "--no-progress", "--end-of-options", r.Branch}
	if r.Create {
		args = []string{"switch", "--no-progress", "--create=" + r.Branch, "--end-of-options"}
		if r.StartPoint != "" {
			if err := gitcmd.ValidateRev(r.StartPoint); err != nil {
				return nil, err
			}
			args = append(args, r.StartPoint)
		}
	} else if r.StartPoint != "" {
		return nil, backends.Errorf(backends.InvalidArgument, "start_point is only used with create")
	}
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	if err := e.refuseMidOperation(ctx, w.Binding, "check out a branch"); err != nil {
		return nil, err
	}
	if r.Create {
		if err := e.checkNewBranch(ctx, w.Binding, backends.OpCheckout, r.Branch); err != nil {
			return nil, err
		}
	}
	if _, err := e.git(ctx, w.Binding, gitRun{op: backends.OpCheckout, args: args}); err != nil {
		return nil, checkoutFailed(r, err)
	}
	branch, sha, err := e.head(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	e.record(ctx, w, func(b *sandbox.Binding) {
		b.Branch = branch
		if r.Create {
			b.Unpushed = addBranch(b.Unpushed, branch) // not on the remote yet
		}
	})
	return &backends.CheckoutResult{Served: written(w), Branch: branch, Head: sha, Created: r.Create}, nil
}

func (e *Executor) push(ctx context.Context, r *backends.PushRequest) (*backends.PushResult, error) {
	if r.Branch != "" {
		if err := gitcmd.ValidateBranch(r.Branch); err != nil {
			return nil, err
		}
	}
	tags, err := validatePushTags(r.Tags) // undo.go
	if err != nil {
		return nil, err
	}
	w, lease, remote, err := e.openForRemote(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	// The configuration check push needs reads the branch's tip too, in
	// its round trip.
	checked, err := e.checkLocalConfig(ctx, w.SandboxID, w.Root, backends.OpPush, w.GitDir(), remote.URL, pushRead(w.Binding, r.Branch))
	if err != nil {
		return nil, err
	}
	branch, sha, err := e.pushTarget(ctx, w, r.Branch, checked)
	if err != nil {
		return nil, err
	}
	ref := "refs/heads/" + branch
	args := []string{"push", "--porcelain", "--progress", "--set-upstream", "origin", ref + ":" + ref}
	tagArgs, err := e.pushTagRefspecs(ctx, w, tags)
	if err != nil {
		return nil, err
	}
	res, err := e.run(ctx, w.Binding, gitRun{op: backends.OpPush, args: append(args, tagArgs...), remote: remote, checked: true})
	if err != nil {
		return nil, err
	}
	stdout, pushedTags, err := pushTagsResult(res.Stdout, tags)
	if err != nil {
		return nil, err
	}
	out, err := pushResult(stdout, res.ExitCode, gitError(res, w.Root), branch, sha)
	if err == nil {
		out.Tags = pushedTags
		e.record(ctx, w, func(b *sandbox.Binding) {
			b.Unpushed = removeBranch(b.Unpushed, branch)
		})
		out.Served = written(w)
	}
	return out, err
}

// commitRead asks for what a commit reports and records to be read after
// its git commit: HEAD and its ref, and the stash (stashKeptAfter).
func commitRead(b sandbox.Binding) sandbox.Around {
	a := headRead(b)
	a.Read = []string{b.GitDir() + "/refs/stash", b.GitDir() + "/packed-refs"}
	return a
}

// pushRead asks for what pushTarget reads to be read after a command:
// HEAD and its ref, or the named branch's ref and packed-refs.
func pushRead(b sandbox.Binding, branch string) sandbox.Around {
	if branch == "" {
		return headRead(b)
	}
	return sandbox.Around{Read: []string{b.GitDir() + "/refs/heads/" + branch, b.GitDir() + "/packed-refs"}}
}

// pushTarget returns the branch to push and its tip, from what res (a
// command run with pushRead) read, or read now when it did not.
func (e *Executor) pushTarget(ctx context.Context, w *workspace, branch string, res sandbox.ExecResult) (string, string, error) {
	if branch == "" {
		b, sha, err := e.headAfter(ctx, w.Binding, res)
		if err == nil && b == "" {
			err = backends.Errorf(backends.Conflict, "HEAD is detached; check out a branch first")
		}
		if err == nil && sha == "" {
			err = backends.Errorf(backends.Conflict, "branch %q has no commits yet; commit before pushing", b)
		}
		return b, sha, err
	}
	var sha string
	var err error
	if res.Around.After {
		sha = refIn(res.Around.Files, w.GitDir(), "refs/heads/"+branch)
	} else {
		sha, err = e.refSHA(ctx, w.Binding, "refs/heads/"+branch)
	}
	if err == nil && sha == "" {
		err = backends.Errorf(backends.NotFound, "there is no local branch %q", branch)
	}
	return branch, sha, err
}

func pushResult(stdout []byte, exit int, failure error, branch, sha string) (*backends.PushResult, error) {
	res := &backends.PushResult{Branch: branch, RemoteRef: "refs/heads/" + branch, Head: sha}
	for _, st := range gitcmd.ParsePush(stdout) {
		switch st.Flag {
		case '!':
			if strings.Contains(st.Summary, "remote rejected") {
				return nil, backends.Errorf(backends.Forbidden, "the remote refused the push of %s: %s", branch, st.Summary)
			}
			return nil, backends.Errorf(backends.Conflict, "push of %s was rejected: %s; pull first, then push again", branch, st.Summary)
		case '=':
			res.UpToDate = true
		case '*':
			res.Created = true
		}
	}
	if exit != 0 {
		return nil, failure
	}
	return res, nil
}

func (e *Executor) pull(ctx context.Context, r *backends.PullRequest) (*backends.PullResult, error) {
	mode := []string{"--ff-only"}
	switch r.Mode {
	case "", "ff-only":
	case "merge":
		mode = []string{"--no-rebase", "--no-edit"}
	default:
		return nil, backends.Errorf(backends.InvalidArgument, "mode must be ff-only or merge, not %q", r.Mode)
	}
	author, err := identity(r.Principal)
	if err != nil {
		return nil, err
	}
	w, lease, remote, err := e.openForRemote(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	if err := e.refuseMidOperation(ctx, w.Binding, "pull"); err != nil {
		return nil, err
	}
	branch, before, err := e.currentBranch(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	args := append(append([]string{"pull", "--progress", "--no-stat"}, mode...), "origin", branch)
	pullRun := gitRun{op: backends.OpPull, args: args, remote: remote, author: author}
	res, err := e.runPull(ctx, w, branch, pullRun)
	if err == nil {
		res, err = e.unlockStaleIndex(ctx, w.Binding, pullRun, res)
	}
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		st, err := e.pullFailed(ctx, w, res)
		if err != nil {
			return nil, err
		}
		return &backends.PullResult{Served: written(w), Branch: branch, Before: before, After: before,
			Upstream: "origin/" + branch, Stopped: st}, nil
	}
	_, after, err := e.head(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	merged := strings.Contains(string(res.Stdout), "Merge made by")
	e.record(ctx, w, func(b *sandbox.Binding) {
		if merged {
			b.Unpushed = addBranch(b.Unpushed, branch)
		}
	})
	return &backends.PullResult{Served: written(w), Branch: branch, Before: before, After: after, Updated: before != after,
		Merged: merged, Upstream: "origin/" + branch}, nil
}

// pullFailed returns the merge a pull in merge mode left waiting for the
// agent on conflicts (it is not undone: the result says what to resolve,
// then continue or abort), or the pull's error when nothing waits.
func (e *Executor) pullFailed(ctx context.Context, w *workspace, res sandbox.ExecResult) (backends.Stopped, error) {
	if !strings.Contains(string(res.Stdout), "Automatic merge failed") {
		return backends.Stopped{}, gitError(res, w.Root)
	}
	return e.stoppedOn(ctx, w, res, false)
}

// unlockStaleIndex handles a write that git refused because index.lock
// exists (res is its failed result). Every write of a workspace runs under
// the workspace's write lock, and reads never take the index lock
// (GIT_OPTIONAL_LOCKS=0), so the file is stale: a git that crashed or was
// killed left it. It is removed, with a warning, and the command runs once
// more; any other failure, or a read, is returned as it was.
func (e *Executor) unlockStaleIndex(ctx context.Context, b sandbox.Binding, g gitRun, res sandbox.ExecResult) (sandbox.ExecResult, error) {
	if g.read || res.ExitCode == 0 || !gitcmd.IsIndexLocked(res.Stderr) {
		return res, nil
	}
	if _, err := e.provider().Remove(ctx, b.SandboxID, b.GitDir(), "index.lock"); err != nil {
		e.cfg.Logger.Warn("a stale index.lock could not be removed", "workspace", b.Key.String(), "op", g.op, "err", err)
		return res, nil
	}
	e.cfg.Logger.Warn("removed a stale index.lock left by an earlier git (gitgate holds the workspace's lock) and ran the command again",
		"workspace", b.Key.String(), "op", g.op)
	return e.run(ctx, b, g)
}
