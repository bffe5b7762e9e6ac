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
	if err := e.checkFree(ctx, k); err != nil {
		return nil, err
	}
	info, done, err := e.acquire(ctx, k.Owner())
	if err != nil {
		return nil, err
	}
	defer done()
	now := time.Now().UTC()
	b := sandbox.Binding{Key: k, SandboxID: info.ID, Root: info.Root, URL: url, Created: now, LastUsed: now}
	if err := e.cloneInto(ctx, b, args, remote); err != nil {
		return nil, err
	}
	return e.finishClone(ctx, b)
}

// checkFree fails when the workspace exists in a live sandbox. A binding to
// a reaped sandbox is stale and does not count.
func (e *Executor) checkFree(ctx context.Context, k sandbox.WorkspaceKey) error {
	b, ok, err := e.cfg.Bindings.Get(ctx, k)
	if err != nil {
		return backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
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

// cloneInto clones with the git directory kept outside the work tree, then
// removes the ".git" file clone leaves in the work tree. The transfer and
// the check-out are two commands, each under the project's size limits
// (transferlimit.go). On failure it removes whatever it created, so a
// failed clone leaves nothing behind — unless the provider could not
// confirm that the clone stopped (sandbox.ErrMayStillRun): nothing is
// removed or written beside a git that may still be writing there.
//
// Until the clone and its checkout are whole, a mark beside the git
// directory (cloneMark) says that the clone has not finished: a process
// killed part-way leaves it, and recovery then removes the half-made
// workspace instead of taking it for one (see halfMade).
func (e *Executor) cloneInto(ctx context.Context, b sandbox.Binding, args []string, remote *gitcmd.Remote) error {
	return e.makeWorkspace(ctx, b, func() error {
		args := append(args, "--no-checkout", "--separate-git-dir="+b.GitDir(), "--", b.URL, b.WorkTree())
		inv := gitcmd.Invocation{Args: args, Remote: remote}
		g := gitRun{op: backends.OpClone, remote: remote, watch: &diskWatch{project: b.Key.Project, gitDir: b.GitDir()}}
		res, err := e.exec(ctx, b.SandboxID, b.Root, g, inv)
		if err == nil && res.ExitCode != 0 {
			err = gitError(res, b.Root)
		}
		if err == nil && !strings.Contains(string(res.Stderr), "cloned an empty repository") {
			err = e.cloneCheckout(ctx, b)
		}
		return err
	})
}

// makeWorkspace makes workspace b's git directory and work tree with
// steps (a clone's or a fork's), under the half-made mark: it removes the
// leftovers of a crashed earlier attempt, writes the mark, runs steps,
// removes the ".git" file they leave in the work tree and then the mark.
// On failure it removes whatever was made — unless the provider could not
// confirm that git stopped (sandbox.ErrMayStillRun): nothing is removed
// beside a git that may still be writing there, and the mark makes the
// next use remove it. A size limit's error says what was kept.
func (e *Executor) makeWorkspace(ctx context.Context, b sandbox.Binding, steps func() error) error {
	p := e.provider()
	cleanup := func() {
		c := context.WithoutCancel(ctx)
		_ = p.RemoveAll(c, b.SandboxID, b.WorkTree())
		_ = p.RemoveAll(c, b.SandboxID, b.GitDir())
		_, _ = p.Remove(c, b.SandboxID, b.Root, cloneMark(b.Key.Name))
	}
	cleanup() // leftovers of a crashed earlier attempt
	if _, err := p.WriteFile(ctx, b.SandboxID, b.Root, cloneMark(b.Key.Name), nil); err != nil {
		return e.gone(ctx, b.SandboxID, err)
	}
	err := steps()
	if err == nil {
		_, err = p.Remove(ctx, b.SandboxID, b.WorkTree(), ".git")
	}
	if err == nil { // whole: a binding lost from now on is rebuilt from it
		_, err = p.Remove(ctx, b.SandboxID, b.Root, cloneMark(b.Key.Name))
	}
	if err != nil {
		mayRun := errors.Is(err, sandbox.ErrMayStillRun)
		if !mayRun {
			cleanup()
		}
		if hit, ok := asSizeLimit(err); ok {
			outcome := "nothing was kept"
			if mayRun {
				outcome = "gitgate could not confirm that git stopped, so its files were left in the sandbox"
			}
			return limitError(hit, outcome, err)
		}
		return err
	}
	return nil
}

// finishClone refreshes the index, records the binding and reports HEAD.
//
// The refresh matters for speed: files checked out in the same clock tick as
// the index was written are "racily clean", and since reads never rewrite
// the index (GIT_OPTIONAL_LOCKS=0), every later status would re-hash them.
func (e *Executor) finishClone(ctx context.Context, b sandbox.Binding) (*backends.CloneResult, error) {
	branch, sha, err := e.head(ctx, b)
	if err != nil {
		return nil, err
	}
	if sha != "" {
		if _, err := e.git(ctx, b, gitRun{op: backends.OpClone, args: []string{"update-index", "-q", "--refresh"}}); err != nil {
			e.cfg.Logger.Warn("index refresh after clone failed", "workspace", b.Key.String(), "err", err)
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
