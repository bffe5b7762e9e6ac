package approach1

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

const maxDepth = 1_000_000

func (e *Executor) clone(ctx context.Context, r *backends.CloneRequest) (*backends.CloneResult, error) {
	k, args, remote, url, err := e.cloneArgs(r)
	if err != nil {
		return nil, err
	}
	lease, err := e.lock(ctx, k)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
	if res, ok, err := e.cloneFromSeed(ctx, r, k, remote, url); ok { // seed_clone.go
		return res, err
	}
	search, err := e.checkFree(ctx, k)
	if err != nil {
		return nil, err
	}
	info, done, err := e.acquire(ctx, k.Owner())
	if err != nil {
		return nil, err
	}
	defer done()
	now := time.Now().UTC()
	b := sandbox.Binding{Key: k, SandboxID: info.ID, Root: info.Root, URL: url, Created: now, LastUsed: now}
	tail, err := e.cloneInto(ctx, b, args, remote, search)
	if err != nil {
		return nil, err
	}
	return e.finishClone(ctx, b, tail)
}

// checkFree fails when the workspace exists in a live sandbox. A binding to
// a reaped sandbox is stale and does not count. The caller holds k's lock.
//
// A workspace the bindings store does not know may still exist (the store
// may have lost its binding): search true leaves the search of the
// owner's sandboxes for it to makeWorkspace, which does it beside its
// first command (stepsCheckingFree), so that a clone of a new workspace
// waits for no round trip of its own.
func (e *Executor) checkFree(ctx context.Context, k sandbox.WorkspaceKey) (search bool, err error) {
	b, ok, err := e.cfg.Bindings.Get(ctx, k)
	if err != nil {
		return false, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	if !ok {
		return true, nil
	}
	return false, e.checkBound(ctx, k, b, true)
}

// checkFreeNow is checkFree with the search of the sandboxes done now.
func (e *Executor) checkFreeNow(ctx context.Context, k sandbox.WorkspaceKey) error {
	b, ok, err := e.cfg.Bindings.Get(ctx, k)
	if err != nil {
		return backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	return e.checkBound(ctx, k, b, ok)
}

// checkBound is checkFree given the store's binding of k (ok false: none).
func (e *Executor) checkBound(ctx context.Context, k sandbox.WorkspaceKey, b sandbox.Binding, ok bool) error {
	var err error
	if !ok { // the store may have lost it: never clone over a workspace that exists
		if b, ok, err = e.recoverBinding(ctx, k, true); errors.Is(err, errHalfMade) {
			return nil // removed: clone again
		} else if err != nil || !ok {
			return err
		}
	}
	if b.Shelf != "" { // its work waits in the vault (shelf.go)
		return backends.Errorf(backends.Conflict, "workspace %q already exists (cloned from %s; its saved work is restored on its next use); release it or choose another name", k.Name, b.URL)
	}
	if done, alive := e.cfg.Sandboxes.Use(ctx, b.SandboxID); alive {
		defer done()
		if e.brokenRepo(ctx, b) {
			e.removeHalfMade(ctx, b, "clone over a workspace whose git directory git cannot use")
			return nil
		}
		return backends.Errorf(backends.Conflict, "workspace %q already exists (cloned from %s); release it or choose another name", k.Name, b.URL)
	}
	return nil
}

// brokenRepo reports whether the bound workspace b has no git directory
// git can use (a clone a killed process left, whose git removed its files
// after the binding was recorded): git rev-parse answers "not a git
// repository" there. The caller holds b's lock.
func (e *Executor) brokenRepo(ctx context.Context, b sandbox.Binding) bool {
	_, err := e.git(ctx, b, gitRun{op: backends.OpClone, args: []string{"rev-parse", "--git-dir"}, read: true, noTree: true})
	return errors.Is(err, errHalfMade)
}

func (e *Executor) cloneArgs(r *backends.CloneRequest) (sandbox.WorkspaceKey, []string, *gitcmd.Remote, string, error) {
	k, err := e.key(&r.Scope)
	if err != nil {
		return k, nil, nil, "", err
	}
	remote, url, err := e.remoteFor(r.Principal, r.URL)
	if err != nil {
		return k, nil, nil, "", err
	}
	args := []string{"clone", "--no-recurse-submodules", "--progress"}
	if r.Branch != "" {
		if err := gitcmd.ValidateBranch(r.Branch); err != nil {
			return k, nil, nil, "", err
		}
		args = append(args, "--branch="+r.Branch)
	}
	if r.Depth < 0 || r.Depth > maxDepth {
		return k, nil, nil, "", backends.Errorf(backends.InvalidArgument, "depth must be between 0 and %d", maxDepth)
	}
	if r.Depth > 0 {
		args = append(args, "--depth="+strconv.Itoa(r.Depth))
	}
	return k, args, remote, url, nil
}

// cloneInto clones with the git directory kept outside the work tree.
// The transfer and the check-out are two commands, each under the
// project's size limits (transferlimit.go). On failure it removes
// whatever it created, so a failed clone leaves nothing behind — unless
// the provider could not confirm that the clone stopped
// (sandbox.ErrMayStillRun): nothing is removed or written beside a git
// that may still be writing there.
//
// Until the clone and its checkout are whole, a mark beside the git
// directory (cloneMark) says that the clone has not finished: a process
// killed part-way leaves it, and recovery then removes the half-made
// workspace instead of taking it for one (see halfMade). cloneInto leaves
// the mark, and the ".git" file clone writes in the work tree, in its
// cloneTail for finishClone to remove with the command it runs next (or
// sealClone, for a caller that runs none), with the check-out's reading
// of HEAD for finishClone to report: each file operation rides on a git
// command's round trip. search is checkFree's (see makeWorkspace).
func (e *Executor) cloneInto(ctx context.Context, b sandbox.Binding, args []string, remote *gitcmd.Remote, search bool) (cloneTail, error) {
	var last sandbox.ExecResult
	seal, err := e.makeWorkspace(ctx, b, search, func(prep sandbox.Around) error {
		args := append(args, "--no-checkout", "--separate-git-dir="+b.GitDir(), "--", b.URL, b.WorkTree())
		inv := gitcmd.Invocation{Args: args, Remote: remote}
		g := gitRun{op: backends.OpClone, remote: remote, watch: &diskWatch{project: b.Key.Project, gitDir: b.GitDir()}, around: prep}
		res, err := e.exec(ctx, b.SandboxID, b.Root, g, inv)
		if err == nil && res.ExitCode != 0 {
			err = gitError(res, b.Root)
		}
		if err == nil && !strings.Contains(string(res.Stderr), "cloned an empty repository") {
			last, err = e.cloneCheckout(ctx, b)
		}
		return err
	})
	return cloneTail{last: last, seal: seal}, err
}

// cloneTail is what cloneInto leaves for finishClone: the check-out's
// result (with HEAD read after it; zero for an empty repository) and the
// removals that seal the workspace (makeWorkspace).
type cloneTail struct {
	last sandbox.ExecResult
	seal sandbox.Around
}

// sealClone removes what cloneInto left in workspace b (tail) for
// finishClone, for callers that do not call it.
func (e *Executor) sealClone(ctx context.Context, b sandbox.Binding, tail cloneTail) error {
	return e.sealWorkspace(ctx, b, tail.seal)
}

// makeWorkspace makes workspace b's git directory and work tree with
// steps (a clone's or a fork's), under the half-made mark: steps' first
// command runs with prep, which removes the leftovers of a crashed earlier
// attempt and writes the mark. On success it returns the removals that
// seal the workspace — the ".git" file steps leave in the work tree, then
// the mark — which the caller does with its next command
// (sandbox.Around.Remove) or with sealWorkspace. On failure it removes
// whatever was made — unless the provider could not confirm that git
// stopped (sandbox.ErrMayStillRun): nothing is removed beside a git that
// may still be writing there, and the mark makes the next use remove it.
// A size limit's error says what was kept. search (checkFree's) makes it
// search the owner's sandboxes for the workspace beside the first command
// (stepsCheckingFree).
func (e *Executor) makeWorkspace(ctx context.Context, b sandbox.Binding, search bool, steps func(prep sandbox.Around) error) (sandbox.Around, error) {
	mark := b.Root + "/" + cloneMark(b.Key.Name)
	prep := sandbox.Around{Remove: []string{b.WorkTree(), b.GitDir(), mark}, Create: []string{mark}}
	var err error
	if search {
		err = e.stepsCheckingFree(ctx, b, prep, steps)
	} else {
		err = steps(prep)
	}
	var kept untouched
	if errors.As(err, &kept) {
		return sandbox.Around{}, kept.error
	}
	if err != nil {
		mayRun := errors.Is(err, sandbox.ErrMayStillRun)
		if !mayRun && !errors.Is(err, errGuarded) { // a guard that held made nothing
			e.discardWorkspace(ctx, b)
		}
		if hit, ok := asSizeLimit(err); ok {
			outcome := "nothing was kept"
			if mayRun {
				outcome = "gitgate could not confirm that git stopped, so its files were left in the sandbox"
			}
			return sandbox.Around{}, limitError(hit, outcome, err)
		}
		return sandbox.Around{}, err
	}
	return sandbox.Around{Remove: []string{b.WorkTree() + "/.git", mark}}, nil
}

// errGuarded marks the error of a command a sandbox.Guard stopped.
var errGuarded = errors.New("the command's guard held: nothing was done")

// stepsCheckingFree runs steps (see makeWorkspace) for a workspace the
// bindings store does not know, searching the owner's sandboxes for it
// (checkFree) at the same time: the search of the sandbox steps run in is
// their first command's guard (its git directory's HEAD, without the
// half-made mark: a workspace that exists there stops them before they
// touch anything), and the owner's sandboxes are listed beside it. When
// the guard held, or another sandbox of the owner may hold the workspace,
// or the listing failed, what steps made is removed and the search is
// done as checkFree did it before any step (checkFreeNow); a workspace it
// finds free is then made again.
func (e *Executor) stepsCheckingFree(ctx context.Context, b sandbox.Binding, prep sandbox.Around, steps func(prep sandbox.Around) error) error {
	prep.Guard = sandbox.Guard{If: b.GitDir() + "/HEAD", Unless: prep.Create[0]}
	var others bool
	var listErr error
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		candidates, err := e.cfg.Sandboxes.Candidates(ctx, b.Key.Owner())
		listErr = err
		for _, info := range candidates {
			others = others || (info.Owner == b.Key.Owner() && info.ID != b.SandboxID)
		}
	}()
	err := steps(prep)
	<-listed
	guarded := errors.Is(err, errGuarded)
	if err != nil && !guarded {
		return err // makeWorkspace removes what was made
	}
	if !guarded && !others && listErr == nil {
		return nil
	}
	if !guarded {
		e.discardWorkspace(ctx, b)
	}
	if err := e.checkFreeNow(ctx, b.Key); err != nil {
		return untouched{err} // the workspace may exist: nothing of it is removed
	}
	prep.Guard = sandbox.Guard{} // free: made as after checkFree's own search
	return steps(prep)
}

// untouched is the error of makeWorkspace's steps that left nothing to
// remove.
type untouched struct{ error }

func (u untouched) Unwrap() error { return u.error }

// discardWorkspace removes what a failed makeWorkspace made (the mark
// last). Errors are ignored: the mark, if left, makes the next use remove
// the rest.
func (e *Executor) discardWorkspace(ctx context.Context, b sandbox.Binding) {
	p := e.provider()
	c := context.WithoutCancel(ctx)
	_ = p.RemoveAll(c, b.SandboxID, b.WorkTree())
	_ = p.RemoveAll(c, b.SandboxID, b.GitDir())
	_, _ = p.Remove(c, b.SandboxID, b.Root, cloneMark(b.Key.Name))
}

// sealWorkspace does seal (makeWorkspace) with calls of its own: the
// ".git" file, then the mark. When that fails, the workspace is discarded.
func (e *Executor) sealWorkspace(ctx context.Context, b sandbox.Binding, seal sandbox.Around) error {
	if len(seal.Remove) == 0 {
		return nil
	}
	p := e.provider()
	_, err := p.Remove(ctx, b.SandboxID, b.WorkTree(), ".git")
	if err == nil { // whole: a binding lost from now on is rebuilt from it
		_, err = p.Remove(ctx, b.SandboxID, b.Root, cloneMark(b.Key.Name))
	}
	if err != nil {
		e.discardWorkspace(ctx, b)
	}
	return err
}

// finishClone refreshes the index, seals the workspace (the refresh
// carries the removals, see makeWorkspace), records the binding and
// reports HEAD.
//
// The refresh matters for speed: files checked out in the same clock tick as
// the index was written are "racily clean", and since reads never rewrite
// the index (GIT_OPTIONAL_LOCKS=0), every later status would re-hash them.
func (e *Executor) finishClone(ctx context.Context, b sandbox.Binding, tail cloneTail) (*backends.CloneResult, error) {
	branch, sha, err := e.headAfter(ctx, b, tail.last)
	if err != nil {
		return nil, err
	}
	sealed := len(tail.seal.Remove) == 0
	if sha != "" {
		g := gitRun{op: backends.OpClone, args: []string{"update-index", "-q", "--refresh"}, around: tail.seal}
		if _, err := e.git(ctx, b, g); err != nil {
			e.cfg.Logger.Warn("index refresh after clone failed", "workspace", b.Key.String(), "err", err)
		} else {
			sealed = true
		}
	}
	if !sealed {
		if err := e.sealWorkspace(ctx, b, tail.seal); err != nil {
			return nil, err
		}
	}
	b.Branch = branch
	b.Writes++
	if err := e.cfg.Bindings.Put(ctx, b); err != nil {
		return nil, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	return &backends.CloneResult{Served: backends.Served{WriteSeq: b.Writes}, Workspace: b.Key.Name, Branch: branch, Head: sha}, nil
}

// cloneMark is the sandbox path, relative to its root, of the file that
// says a clone into workspace name has not finished. It lies beside the
// git directories, where listing workspaces passes it over.
func cloneMark(name string) string { return "git/" + name + ".cloning" }

// errHalfMade marks the error of a workspace whose clone did not finish.
var errHalfMade = errors.New("the clone did not finish")

// halfMade returns the answer to an operation in workspace name whose
// clone did not finish (the process cloning it was killed part-way).
func halfMade(name string) error {
	return &backends.Error{Category: backends.NotFound, Err: errHalfMade,
		Message: "the clone into workspace " + strconv.Quote(name) + " did not finish; clone again"}
}

// cloneUnfinished reports whether workspace name in the sandbox at root
// bears the mark of a clone that did not finish.
func (e *Executor) cloneUnfinished(ctx context.Context, sandboxID, root, name string) bool {
	_, err := e.provider().ReadFile(ctx, sandboxID, root, cloneMark(name), 0, 1)
	return err == nil
}

// removeHalfMade removes what an unfinished clone left of workspace b
// (the mark last) and its binding. The caller holds b's lock.
func (e *Executor) removeHalfMade(ctx context.Context, b sandbox.Binding, why string) {
	p := e.provider()
	_ = e.cfg.Bindings.Delete(ctx, b.Key)
	_ = p.RemoveAll(ctx, b.SandboxID, b.WorkTree())
	_ = p.RemoveAll(ctx, b.SandboxID, b.GitDir())
	_, _ = p.Remove(ctx, b.SandboxID, b.Root, cloneMark(b.Key.Name))
	e.cfg.Logger.Warn("removed a half-made workspace: its clone did not finish", "workspace", b.Key.String(), "sandbox", b.SandboxID, "why", why)
}

// hideSandboxPaths removes the sandbox's absolute paths under root from a
// text an agent sees (git's progress, such as "Cloning into '<root>/ws/x'"):
// a work tree or git directory becomes the workspace's name, anything else
// under root a path relative to it. Agents see workspace-relative paths
// only (gitError does the same for error messages).
func hideSandboxPaths(text, root string) string {
	if root == "" || !strings.Contains(text, root) {
		return text
	}
	return strings.NewReplacer(root+"/ws/", "", root+"/git/", "", root+"/", "", root, "").Replace(text)
}
