package approach1

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// fork_workspace makes a new workspace on a new branch from an existing
// workspace of the same owner (its source), without cloning the
// repository again.
//
// How the objects are shared. The fork lives in the source's sandbox and
// is made by "git clone --local" from the source's git directory: git
// hard-links the object files (packs and loose objects) instead of copying
// them, so the fork costs the disk of its work tree and a few small files,
// and takes no network. Hard links were chosen over alternates ("git clone
// --shared", objects/info/alternates): git never rewrites an object file
// in place, so a hard-linked file is as immutable as a shared one, but the
// fork holds its own links: releasing the source (or its sandbox's
// shelving it, or anything that removes the source's files) leaves the
// fork whole, and nothing has to refuse a release or copy objects first.
// With alternates, a fork would break as soon as its source's git
// directory went, which every release and every shelf would have to know
// about.
//
// Why a local clone is safe here although threats.md §1.4 warns against
// local clones: that warning is about clones of paths an agent names
// (another tenant's repository, a crafted one whose objects directory
// holds symbolic links). The path cloned here is built by the gateway from
// a validated workspace name: the git directory of a workspace of the same
// owner, in the same sandbox, which the gateway owns (agents reach work
// trees only) and into which only git has written. The file transport is
// allowed for that one command only (every other command keeps
// protocol.file.allow=never), with no credentials.
//
// Then the fork is made to look exactly like a clone of the real remote:
// origin's URL is the source's (the gateway's record of it, re-validated
// against the project's policy, never with a token), its remote-tracking
// refs and origin's fetch refspec are the source's, its only local branch
// is the new branch, created at the start point and checked out, and
// every command in it runs with the same hardening as any other
// workspace's (gitcmd.Build). The clone's refs to the source (its local
// branches as origin's) and the branch configuration clone wrote are
// removed. Tags are the source's (clone copies them).
//
// The source is only read, without its lock: git objects are immutable,
// and its refs are read before the clone, so every object they name is in
// what the clone links. Until the fork is whole, the clone's mark
// (cloneMark) lies beside its git directory: a fork stopped part-way is
// removed like a half-made clone (halfMade, rebuild), and a failed fork
// removes what it made.

// forkRecord is the file in a fork's git directory that says which
// workspace it was forked from and that workspace's write count then
// (predictForkWorkspace tells from it whether the source moved since).
const forkRecord = "gitgate-fork"

// defaultFetch is the fetch refspec git clone writes for a full clone.
const defaultFetch = "+refs/heads/*:refs/remotes/origin/*"

// forkSource is what a fork takes from its source, read before the clone.
type forkSource struct {
	w          *workspace
	start      string      // the start point's commit
	tracking   [][2]string // the source's refs/remotes/origin/* (name, commit), symbolic refs excepted
	originHead string      // what the source's refs/remotes/origin/HEAD points to ("" if none)
	fetch      []string    // the source's remote.origin.fetch values
	url        string      // origin's URL, re-validated
}

func (e *Executor) forkWorkspace(ctx context.Context, r *backends.ForkWorkspaceRequest) (*backends.ForkWorkspaceResult, error) {
	k, sk, err := e.forkKeys(r)
	if err != nil {
		return nil, err
	}
	// The source is opened before the new workspace is locked: opening may
	// take the source's lock (to restore it), and holding one workspace's
	// lock while waiting for another's could deadlock.
	src, err := e.open(ctx, sk, r.Principal, false)
	if err != nil {
		if backends.CategoryOf(err) == backends.NotFound {
			return nil, &backends.Error{Category: backends.NotFound, Err: err,
				Message: "cannot fork workspace " + strconv.Quote(r.Source) + ": " + backends.MessageOf(err)}
		}
		return nil, err
	}
	defer src.close()
	lease, err := e.lock(ctx, k)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
	search, err := e.checkFree(ctx, k)
	if err != nil {
		return nil, err
	}
	fs, err := e.readForkSource(ctx, src, r)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	b := sandbox.Binding{Key: k, SandboxID: src.SandboxID, Root: src.Root, URL: fs.url, Created: now, LastUsed: now}
	if err := e.forkInto(ctx, b, fs, r.Branch, search); err != nil {
		return nil, err
	}
	branch, sha, err := e.head(ctx, b)
	if err != nil {
		return nil, err
	}
	b.Branch = branch
	b.Unpushed = addBranch("", branch) // not on the remote yet
	b.Writes++
	if err := e.cfg.Bindings.Put(ctx, b); err != nil {
		return nil, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	return &backends.ForkWorkspaceResult{Served: backends.Served{WriteSeq: b.Writes}, Workspace: k.Name, Branch: branch, Head: sha}, nil
}

// forkKeys validates a fork's request before anything runs and returns
// the new workspace's key and the source's.
func (e *Executor) forkKeys(r *backends.ForkWorkspaceRequest) (k, sk sandbox.WorkspaceKey, err error) {
	if k, err = e.key(&r.Scope); err != nil {
		return k, sk, err
	}
	if r.Source == "" {
		return k, sk, backends.Errorf(backends.InvalidArgument, "source is required: the existing workspace to fork")
	}
	if sk, err = e.key(&backends.Scope{Principal: r.Principal, Workspace: r.Source}); err != nil {
		return k, sk, err
	}
	if r.Source == r.Workspace {
		return k, sk, backends.Errorf(backends.InvalidArgument, "the new workspace must have another name than its source %q", r.Source)
	}
	if err := gitcmd.ValidateNewBranch(r.Branch); err != nil {
		return k, sk, err
	}
	if r.StartPoint != "" {
		if err := gitcmd.ValidateRev(r.StartPoint); err != nil {
			return k, sk, err
		}
	}
	return k, sk, nil
}

// readForkSource reads, without a lock (GIT_OPTIONAL_LOCKS=0), what the
// fork takes from its source: the start point's commit, the refs and the
// configuration that make the fork a clone of the same remote. A branch
// name the source's refs make ambiguous is refused as checkout refuses it.
func (e *Executor) readForkSource(ctx context.Context, w *workspace, r *backends.ForkWorkspaceRequest) (*forkSource, error) {
	op := backends.OpForkWorkspace
	fs := &forkSource{w: w}
	_, head, err := e.head(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	if head == "" && r.StartPoint == "" {
		return nil, backends.Errorf(backends.Conflict, "workspace %q has no commits yet, so there is nothing to fork; commit there first, or clone instead", r.Source)
	}
	if fs.start, err = e.forkStartPoint(ctx, w.Binding, op, r.StartPoint); err != nil {
		return nil, err
	}
	if fs.start == "" {
		return nil, backends.Errorf(backends.NotFound, "start point %q names no commit in workspace %q; name a branch, tag or commit that log shows there", r.StartPoint, r.Source)
	}
	if err := e.checkNewBranch(ctx, w.Binding, op, r.Branch); err != nil {
		return nil, err
	}
	if fs.tracking, fs.originHead, err = e.forkTracking(ctx, w.Binding, op); err != nil {
		return nil, err
	}
	res, err := e.run(ctx, w.Binding, gitRun{op: op, args: []string{"config", "--get-all", "remote.origin.fetch"}, read: true, noTree: true})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 && res.ExitCode != 1 { // 1: none
		return nil, gitError(res, w.Root)
	}
	for line := range strings.SplitSeq(string(res.Stdout), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			if strings.HasPrefix(line, "-") {
				return nil, backends.Errorf(backends.Internal, "workspace %q's fetch configuration is not one the gateway writes; it cannot be forked", r.Source)
			}
			fs.fetch = append(fs.fetch, line)
		}
	}
	_, fs.url, err = e.remoteFor(r.Principal, w.URL)
	if err != nil {
		return nil, err
	}
	return fs, nil
}

// forkStartPoint returns the commit rev names in b ("" when it names none);
// an empty rev is HEAD. rev is validated (gitcmd.ValidateRev).
func (e *Executor) forkStartPoint(ctx context.Context, b sandbox.Binding, op backends.Op, rev string) (string, error) {
	if rev == "" {
		rev = "HEAD"
	}
	args := []string{"rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}"}
	res, err := e.run(ctx, b, gitRun{op: op, args: args, read: true, noTree: true})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		if len(res.Stderr) > 0 && !strings.Contains(string(res.Stderr), "Needed a single revision") {
			return "", gitError(res, b.Root)
		}
		return "", nil
	}
	return firstLine(res.Stdout), nil
}

// forkTracking lists b's refs/remotes/origin/* (name and commit), and
// what refs/remotes/origin/HEAD points to.
func (e *Executor) forkTracking(ctx context.Context, b sandbox.Binding, op backends.Op) ([][2]string, string, error) {
	args := []string{"for-each-ref", "--format=%(objectname) %(refname) %(symref)", "refs/remotes/origin/"}
	res, err := e.git(ctx, b, gitRun{op: op, args: args, read: true, noTree: true})
	if err != nil {
		return nil, "", err
	}
	var refs [][2]string
	var head string
	for line := range strings.SplitSeq(string(res.Stdout), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3:
			head = f[2] // only origin/HEAD is symbolic
		case len(f) == 2 && isObjectID(f[0]):
			refs = append(refs, [2]string{f[1], f[0]})
		}
	}
	return refs, head, nil
}

// forkInto makes the fork's git directory and work tree (see the
// introduction). On failure it removes whatever it created — unless the
// provider could not confirm that a git command stopped
// (sandbox.ErrMayStillRun): nothing is removed beside a git that may
// still be writing there; the clone's mark then makes the next use remove
// it. search is checkFree's (see makeWorkspace).
func (e *Executor) forkInto(ctx context.Context, b sandbox.Binding, fs *forkSource, branch string, search bool) error {
	seal, err := e.makeWorkspace(ctx, b, search, func(prep sandbox.Around) error { return e.forkSteps(ctx, b, fs, branch, prep) })
	if err != nil {
		return err
	}
	return e.sealWorkspace(ctx, b, seal)
}

// forkSteps makes fork b of fs; prep goes with its first command (see
// makeWorkspace).
func (e *Executor) forkSteps(ctx context.Context, b sandbox.Binding, fs *forkSource, branch string, prep sandbox.Around) error {
	op := backends.OpForkWorkspace
	g := func(args ...string) error {
		_, err := e.git(ctx, b, gitRun{op: op, args: args, noTree: true})
		return err
	}
	// The objects, hard-linked (file transport for this command only).
	// The clone runs git upload-pack in the source, which reads the
	// source's configuration: it must hold only keys the gateway writes,
	// as before any command that talks to a remote.
	if _, err := e.checkLocalConfig(ctx, b.SandboxID, b.Root, op, fs.w.GitDir(), fs.w.URL, prep); err != nil {
		if backends.CategoryOf(err) == backends.Internal {
			return &backends.Error{Category: backends.Internal, Err: err,
				Message: "cannot fork workspace " + strconv.Quote(fs.w.Key.Name) + ": " + backends.MessageOf(err)}
		}
		return err
	}
	clone := gitcmd.Invocation{
		Args:   []string{"clone", "--local", "--no-checkout", "--no-recurse-submodules", "--quiet", "--separate-git-dir=" + b.GitDir(), "--", fs.w.GitDir(), b.WorkTree()},
		Remote: &gitcmd.Remote{Schemes: []string{"file"}},
	}
	res, err := e.exec(ctx, b.SandboxID, b.Root, gitRun{op: op}, clone)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return gitError(res, b.Root)
	}
	// origin is the real remote, fetched as the source fetches it.
	if err := g("config", "remote.origin.url", fs.url); err != nil {
		return err
	}
	if len(fs.fetch) > 0 && !slices.Equal(fs.fetch, []string{defaultFetch}) {
		if err := g("config", "--replace-all", "remote.origin.fetch", fs.fetch[0]); err != nil {
			return err
		}
		for _, v := range fs.fetch[1:] {
			if err := g("config", "--add", "remote.origin.fetch", v); err != nil {
				return err
			}
		}
	}
	// No branch configuration of the clone's (its upstream is the source).
	res, err = e.run(ctx, b, gitRun{op: op, args: []string{"config", "--name-only", "--get-regexp", `^branch\.`}, noTree: true})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 && res.ExitCode != 1 {
		return gitError(res, b.Root)
	}
	var sections []string
	for line := range strings.SplitSeq(string(res.Stdout), "\n") {
		if i := strings.LastIndexByte(line, '.'); i > 0 && !slices.Contains(sections, line[:i]) {
			sections = append(sections, line[:i])
		}
	}
	for _, s := range sections {
		if err := g("config", "--remove-section", s); err != nil {
			return err
		}
	}
	// Refs: the clone's local branches and its remote-tracking refs (the
	// source's local branches) go; the new branch and the source's
	// remote-tracking refs come.
	res, err = e.git(ctx, b, gitRun{op: op, args: []string{"for-each-ref", "--format=%(refname)", "refs/heads/", "refs/remotes/"}, noTree: true})
	if err != nil {
		return err
	}
	var del strings.Builder
	for ref := range strings.FieldsSeq(string(res.Stdout)) {
		del.WriteString("delete " + ref + "\n")
	}
	if del.Len() > 0 {
		if _, err := e.git(ctx, b, gitRun{op: op, args: []string{"update-ref", "--no-deref", "--stdin"}, stdin: []byte(del.String()), noTree: true}); err != nil {
			return err
		}
	}
	add := "create refs/heads/" + branch + " " + fs.start + "\n"
	for _, ref := range fs.tracking {
		add += "create " + ref[0] + " " + ref[1] + "\n"
	}
	msg := "fork_workspace: created from workspace " + fs.w.Key.Name
	if _, err := e.git(ctx, b, gitRun{op: op, args: []string{"update-ref", "-m", msg, "--stdin"}, stdin: []byte(add), noTree: true}); err != nil {
		return err
	}
	if err := g("symbolic-ref", "HEAD", "refs/heads/"+branch); err != nil {
		return err
	}
	if strings.HasPrefix(fs.originHead, "refs/remotes/origin/") {
		if err := g("symbolic-ref", "refs/remotes/origin/HEAD", fs.originHead); err != nil {
			return err
		}
	}
	record := fs.w.Key.Name + "\n" + strconv.FormatUint(fs.w.Writes, 10) + "\n"
	if _, err := e.provider().WriteFile(ctx, b.SandboxID, b.GitDir(), forkRecord, []byte(record)); err != nil {
		return e.gone(ctx, b.SandboxID, err)
	}
	// The work tree, under the sandbox limit like a clone's check-out.
	checkout := gitRun{op: op, args: []string{"read-tree", "-u", "--reset", "HEAD"}, watch: &diskWatch{project: b.Key.Project}}
	if _, err := e.git(ctx, b, checkout); err != nil {
		return err
	}
	// As after a clone (finishClone): files checked out in the index's
	// clock tick would be re-hashed by every later status.
	if _, err := e.git(ctx, b, gitRun{op: op, args: []string{"update-index", "-q", "--refresh"}}); err != nil {
		e.cfg.Logger.Warn("index refresh after fork failed", "workspace", b.Key.String(), "err", err)
	}
	return nil
}
