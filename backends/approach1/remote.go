package approach1

import (
	"context"
	"errors"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// RemoteRef returns the commit ref points to on a repository of principal's
// project ("" when the ref does not exist), asking the remote itself with
// git ls-remote in one of the project's sandboxes. To learn whether a
// commit is on a branch, use RemoteReach: the tip alone cannot tell once the
// branch moved on.
func (e *Executor) RemoteRef(ctx context.Context, p backends.Principal, url, ref string) (string, error) {
	remote, u, err := e.remoteFor(p, url)
	if err != nil {
		return "", err
	}
	owner := sandbox.Owner{Project: p.Project}
	if e.cfg.PerAgent {
		owner.Agent = p.Agent
	}
	info, done, err := e.acquire(ctx, owner)
	if err != nil {
		return "", err
	}
	defer done()
	inv := gitcmd.Invocation{Args: []string{"ls-remote", "--", u, ref}, Remote: remote}
	res, err := e.exec(ctx, info.ID, info.Root, gitRun{op: "ls_remote", remote: remote}, inv)
	if err == nil && res.ExitCode != 0 {
		err = gitError(res, info.Root)
	}
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if sha, name, ok := strings.Cut(line, "\t"); ok && name == ref {
			return sha, nil
		}
	}
	return "", nil
}

// RemoteReach tells what the remote shows of commit on ref: the ref's tip
// ("" when the ref does not exist) and whether commit is that tip or one of
// its ancestors. Crash recovery and the exactly-once layer use it to settle
// a push whose outcome nobody saw: the push landed if its commit is
// reachable from the branch, even when the branch moved on since.
//
// It reads the remote with the project's read-only token when it has one.
// The tip's objects are fetched into the workspace's object store (s names
// the workspace) without updating any ref or FETCH_HEAD, and git decides
// ancestry there; a workspace that no longer exists is replaced by a
// scratch repository in one of the project's sandboxes, deleted afterwards
// (a full fetch of the branch's history). A commit missing from the object
// store after the fetch is not reachable from the tip.
func (e *Executor) RemoteReach(ctx context.Context, s backends.Scope, url, ref, commit string) (tip string, contains bool, err error) {
	if !isObjectID(commit) || !strings.HasPrefix(ref, "refs/heads/") {
		return "", false, backends.Errorf(backends.InvalidArgument, "a reachability check needs a full commit id and a branch ref")
	}
	if err := gitcmd.ValidateBranch(strings.TrimPrefix(ref, "refs/heads/")); err != nil {
		return "", false, err
	}
	remote, u, err := e.remoteFor(s.Principal, url)
	if err != nil {
		return "", false, err
	}
	if proj, _ := e.cfg.Projects.Project(s.Principal.Project); proj.ReadToken != "" {
		remote.Token = proj.ReadToken
	}
	w, err := e.openRead(ctx, &s)
	switch {
	case err == nil:
		defer w.close()
		return e.reach(ctx, s.Principal.Project, w.SandboxID, w.Root, w.GitDir(), remote, u, ref, commit)
	case backends.CategoryOf(err) != backends.NotFound:
		return "", false, err
	}
	owner := sandbox.Owner{Project: s.Principal.Project}
	if e.cfg.PerAgent {
		owner.Agent = s.Principal.Agent
	}
	info, done, err := e.acquire(ctx, owner)
	if err != nil {
		return "", false, err
	}
	defer done()
	dir := info.Root + "/tmp/reach-" + secretName()
	defer func() {
		if err := e.provider().RemoveAll(context.WithoutCancel(ctx), info.ID, dir); err != nil {
			e.cfg.Logger.Warn("removing a reachability check's scratch repository failed", "err", err)
		}
	}()
	g := gitRun{op: "reconcile", noTree: true}
	res, err := e.exec(ctx, info.ID, info.Root, g, gitcmd.Invocation{Args: []string{"init", "--quiet", "--bare", "--", dir}})
	if err == nil && res.ExitCode != 0 {
		err = gitError(res, info.Root)
	}
	if err != nil {
		return "", false, err
	}
	return e.reach(ctx, s.Principal.Project, info.ID, info.Root, dir, remote, u, ref, commit)
}

// reach is RemoteReach in the repository at gitDir of sandbox id, whose
// fetch runs under project's size limits (transferlimit.go).
func (e *Executor) reach(ctx context.Context, project, id, root, gitDir string, remote *gitcmd.Remote, u, ref, commit string) (string, bool, error) {
	run := func(args []string, remote *gitcmd.Remote) (sandbox.ExecResult, error) {
		g := gitRun{op: "reconcile", remote: remote}
		return e.exec(ctx, id, root, g, gitcmd.Invocation{GitDir: gitDir, Args: args, Remote: remote})
	}
	fail := func(res sandbox.ExecResult, err error) (string, bool, error) {
		if err == nil {
			err = gitError(res, root)
		}
		return "", false, err
	}
	res, err := run([]string{"ls-remote", "--", u, ref}, remote)
	if err != nil || res.ExitCode != 0 {
		return fail(res, err)
	}
	tip := ""
	for line := range strings.SplitSeq(string(res.Stdout), "\n") {
		if sha, name, ok := strings.Cut(line, "\t"); ok && name == ref {
			tip = sha
		}
	}
	if tip == "" || tip == commit {
		return tip, tip != "", nil
	}
	// The tip by id, not by name: the answer is about the tip just read
	// even if the branch moves meanwhile. No refspec destination and no
	// FETCH_HEAD: only objects are added.
	fetch := gitRun{op: "reconcile", remote: remote, watch: &diskWatch{project: project, gitDir: gitDir}}
	res, err = e.exec(ctx, id, root, fetch, gitcmd.Invocation{GitDir: gitDir, Remote: remote,
		Args: []string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", "--", u, tip}})
	if hit, ok := asSizeLimit(err); ok {
		if !errors.Is(err, sandbox.ErrMayStillRun) {
			if rerr := e.removeTempObjects(context.WithoutCancel(ctx), id, gitDir); rerr != nil {
				e.cfg.Logger.Warn("removing a stopped fetch's temporary objects failed", "sandbox", id, "err", rerr)
			}
		}
		return "", false, limitError(hit, "the branch could not be fetched to check whether it holds the commit", err)
	}
	if err != nil || res.ExitCode != 0 {
		return fail(res, err)
	}
	res, err = run([]string{"cat-file", "-e", "--end-of-options", commit + "^{commit}"}, nil)
	if err != nil {
		return "", false, err
	}
	if res.ExitCode != 0 {
		return tip, false, nil // not here even after fetching all the tip has
	}
	res, err = run([]string{"merge-base", "--is-ancestor", "--end-of-options", commit, tip}, nil)
	if err != nil {
		return "", false, err
	}
	switch res.ExitCode {
	case 0:
		return tip, true, nil
	case 1:
		return tip, false, nil
	}
	return fail(res, nil)
}
