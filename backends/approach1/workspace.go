package approach1

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/recovery"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// workspace is an open workspace: its binding, with its sandbox marked busy
// until close.
type workspace struct {
	sandbox.Binding
	done func()
}

func (w *workspace) close() { w.done() }

// key validates the scope and returns the workspace key. The project comes
// from the principal (the agent's credential), never from arguments.
func (e *Executor) key(s *backends.Scope) (sandbox.WorkspaceKey, error) {
	p := s.Principal
	if p.Project == "" || p.Agent == "" {
		return sandbox.WorkspaceKey{}, backends.Errorf(backends.Unauthenticated, "no authenticated agent")
	}
	if err := gitcmd.ValidateWorkspace(s.Workspace); err != nil {
		return sandbox.WorkspaceKey{}, err
	}
	k := sandbox.WorkspaceKey{Project: p.Project, Name: s.Workspace}
	if e.cfg.PerAgent {
		k.Agent = p.Agent
	}
	return k, nil
}

// LockKey is the lock key of a workspace. Every backend uses the same key so
// that they serialise against each other.
func LockKey(k sandbox.WorkspaceKey) string { return "gitgate:ws:" + k.String() }

// lock takes the workspace's write lock, recording the wait (in the
// metric, and in the call's Served.Wait).
func (e *Executor) lock(ctx context.Context, k sandbox.WorkspaceKey) (lock.Lease, error) {
	start := time.Now()
	lease, err := e.cfg.Locker.Acquire(ctx, LockKey(k))
	d := time.Since(start)
	e.metrics.lockWait.Observe(d.Seconds())
	factsOf(ctx).addWait(d)
	return lease, err
}

// acquire returns owner's sandbox (sandbox.Manager.Acquire); from a warm
// pool (Config.PooledSandboxes) the time it took counts as the call's wait.
func (e *Executor) acquire(ctx context.Context, owner sandbox.Owner) (sandbox.Info, func(), error) {
	start := time.Now()
	info, done, err := e.cfg.Sandboxes.Acquire(ctx, owner)
	if e.cfg.PooledSandboxes {
		factsOf(ctx).addWait(time.Since(start))
	}
	return info, done, err
}

// open looks up a cloned workspace and marks its sandbox busy. A workspace
// whose sandbox is gone is replaced (see replace); locked says whether the
// caller holds the workspace's lock.
func (e *Executor) open(ctx context.Context, k sandbox.WorkspaceKey, p backends.Principal, locked bool) (*workspace, error) {
	b, ok, err := e.cfg.Bindings.Get(ctx, k)
	if err != nil {
		return nil, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	if !ok {
		if b, ok, err = e.recoverBinding(ctx, k, locked); err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, backends.Errorf(backends.NotFound, "workspace %q does not exist; clone a repository into it first", k.Name)
	}
	if b.Shelf != "" { // its sandbox was removed, its unsaved work saved (shelf.go)
		return e.unshelve(ctx, b, p, locked)
	}
	done, alive := e.cfg.Sandboxes.Use(ctx, b.SandboxID)
	if !alive {
		return e.replace(ctx, b, p, locked)
	}
	return &workspace{Binding: b, done: done}, nil
}

// replace handles a workspace whose sandbox is gone (it died, or its
// provider ended it; idle sandboxes the reaper destroys take their
// bindings with them). When nothing would be lost — no uncommitted
// changes, no commits not pushed — the workspace is cloned again into a
// new sandbox, on the branch it was on, and the operation goes on;
// otherwise its binding is dropped and the agent is told what was lost.
func (e *Executor) replace(ctx context.Context, b sandbox.Binding, p backends.Principal, locked bool) (*workspace, error) {
	if !locked {
		lease, err := e.lock(ctx, b.Key)
		if err != nil {
			return nil, err
		}
		defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
		return e.open(ctx, b.Key, p, true) // another operation may have replaced it meanwhile
	}
	if now, ok, err := e.cfg.Bindings.Get(ctx, b.Key); err == nil && ok && now.Shelf != "" {
		return e.unshelve(ctx, now, p, true) // shelved while this operation waited for the sandbox
	}
	if lost := b.Unsaved(); lost != "" {
		e.workLost(ctx, b, "sandbox_gone")
		_ = e.cfg.Bindings.Delete(ctx, b.Key)
		return nil, backends.Errorf(backends.NotFound, "workspace %q was lost with its sandbox, and with it %s; clone it again", b.Key.Name, lost)
	}
	remote, _, err := e.remoteFor(p, b.URL)
	if err != nil {
		return nil, err
	}
	costBefore := factsOf(ctx).costSoFar()
	info, done, err := e.acquire(ctx, b.Key.Owner())
	if err != nil {
		return nil, err
	}
	nb := b
	nb.SandboxID, nb.Root, nb.LastUsed = info.ID, info.Root, time.Now().UTC()
	args := []string{"clone", "--no-recurse-submodules"}
	if b.Branch != "" {
		args = append(args, "--branch="+b.Branch)
	}
	tail, err := e.cloneInto(ctx, nb, args, remote, false)
	if err != nil {
		done()
		return nil, backends.Errorf(backends.Unavailable, "workspace %q lost its sandbox and could not be cloned again: %s", b.Key.Name, backends.MessageOf(err))
	}
	if _, err := e.finishClone(ctx, nb, tail); err != nil {
		done()
		return nil, err
	}
	e.metrics.recovery.Record(recovery.Reclone, factsOf(ctx).costSoFar()-costBefore)
	e.cfg.Logger.Warn("workspace's sandbox was gone; cloned it again into a new one (nothing unsaved was lost)",
		"workspace", b.Key.String(), "old_sandbox", b.SandboxID, "sandbox", nb.SandboxID, "branch", b.Branch)
	return &workspace{Binding: nb, done: done}, nil
}

// record counts a write made in the workspace, applies change to its
// binding (what a replacement sandbox could not restore, see
// sandbox.Binding.Unsaved) and stores it. The write already happened, so a
// failure is logged, not returned.
func (e *Executor) record(ctx context.Context, w *workspace, change func(*sandbox.Binding)) {
	w.Binding.Writes++
	change(&w.Binding)
	if err := e.cfg.Bindings.Put(context.WithoutCancel(ctx), w.Binding); err != nil {
		e.cfg.Logger.Warn("workspace binding not updated", "workspace", w.Key.String(), "err", err)
	}
}

// written is the Served of a write's result: the workspace's write count
// once it was made (for shadow predictions).
func written(w *workspace) backends.Served { return backends.Served{WriteSeq: w.Binding.Writes} }

// addBranch returns the space-separated list with branch, once.
func addBranch(list, branch string) string {
	names := strings.Fields(list)
	if branch == "" || slices.Contains(names, branch) {
		return list
	}
	return strings.Join(append(names, branch), " ")
}

// removeBranch returns the space-separated list without branch.
func removeBranch(list, branch string) string {
	return strings.Join(slices.DeleteFunc(strings.Fields(list), func(x string) bool { return x == branch }), " ")
}

// gone notes a sandbox its provider found gone (the manager forgets it)
// and says so in the error.
func (e *Executor) gone(ctx context.Context, sandboxID string, err error) error {
	if err == nil || !errors.Is(err, sandbox.ErrGone) {
		return err
	}
	e.cfg.Sandboxes.Forget(ctx, sandboxID)
	return &backends.Error{Category: backends.Unavailable, Err: err,
		Message: "the workspace's sandbox stopped during this operation; the next operation replaces it (" + backends.MessageOf(err) + ")"}
}

// openLocked takes the write lock and opens the workspace, and counts the
// write as begun (its end is counted again by record). A read that runs
// without the lock while a write changes the workspace — a shadow read,
// which comes after its primary — then ends on a write count other than
// the one its primary read from, and is recognised as stale: git changes
// the workspace (a push's upstream, a commit) before the write is over.
func (e *Executor) openLocked(ctx context.Context, s *backends.Scope) (*workspace, lock.Lease, error) {
	k, err := e.key(s)
	if err != nil {
		return nil, nil, err
	}
	lease, err := e.lock(ctx, k)
	if err != nil {
		return nil, nil, err
	}
	w, err := e.open(ctx, k, s.Principal, true)
	if err != nil {
		_ = lease.Release(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	e.record(ctx, w, func(*sandbox.Binding) {})
	return w, lease, nil
}

// openForRemote takes the write lock, opens the workspace and returns the
// network settings for its repository, re-validated against the project's
// current policy (a host removed from the allow-list is refused at once).
func (e *Executor) openForRemote(ctx context.Context, s *backends.Scope) (*workspace, lock.Lease, *gitcmd.Remote, error) {
	w, lease, err := e.openLocked(ctx, s)
	if err != nil {
		return nil, nil, nil, err
	}
	remote, _, err := e.remoteFor(s.Principal, w.URL)
	if err != nil {
		finish(ctx, w, lease)
		return nil, nil, nil, err
	}
	return w, lease, remote, nil
}

// openRead opens the workspace for a lock-free read, noting its write
// count for the call's Served.ReadFrom.
func (e *Executor) openRead(ctx context.Context, s *backends.Scope) (*workspace, error) {
	k, err := e.key(s)
	if err != nil {
		return nil, err
	}
	w, err := e.open(ctx, k, s.Principal, false)
	if err == nil {
		factsOf(ctx).opened(k, w.Writes)
	}
	return w, err
}

func finish(ctx context.Context, w *workspace, lease lock.Lease) {
	w.close()
	if lease != nil {
		_ = lease.Release(context.WithoutCancel(ctx))
	}
}

// gitRun describes one git command in a workspace.
type gitRun struct {
	op     backends.Op
	args   []string
	read   bool
	remote *gitcmd.Remote
	author *gitcmd.Identity
	stdin  []byte
	maxOut int
	skip   int64 // stdout bytes dropped before maxOut are kept (sandbox.ExecRequest.SkipStdout)
	noTree bool  // run without a work tree (plumbing on the git dir)
	// watch, if set, runs the command under its project's size limits
	// (transferlimit.go).
	watch *diskWatch
	// around are the file operations done with the command, in its round
	// trip (sandbox.Around).
	around sandbox.Around
	// checked says that the repository's configuration was checked for
	// this remote command already (see checkLocalConfig).
	checked bool
	// workspace names the workspace in a relay capability (run sets it).
	workspace string
}

// run runs a git command and returns its result whatever its exit code.
func (e *Executor) run(ctx context.Context, b sandbox.Binding, g gitRun) (sandbox.ExecResult, error) {
	inv := gitcmd.Invocation{GitDir: b.GitDir(), WorkTree: b.WorkTree(), Args: g.args,
		ReadOnly: g.read, Remote: g.remote, Identity: g.author}
	if g.workspace == "" {
		g.workspace = b.Key.String()
	}
	if g.noTree {
		inv.WorkTree = ""
	}
	return e.exec(ctx, b.SandboxID, b.Root, g, inv)
}

func (e *Executor) exec(ctx context.Context, sandboxID, root string, g gitRun, inv gitcmd.Invocation) (sandbox.ExecResult, error) {
	if inv.Remote != nil && inv.GitDir != "" && !g.checked {
		if _, err := e.checkLocalConfig(ctx, sandboxID, root, g.op, inv.GitDir, inv.Remote.URL); err != nil {
			return sandbox.ExecResult{}, err
		}
	}
	remote, forget, err := e.remoteCredential(ctx, g.workspace, sandboxID, root, inv)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	defer forget()
	inv.Remote = remote
	cmd := gitcmd.Build(e.cfg.GitPath, root+"/home", root+"/tmp", inv)
	timeout := e.cfg.Limits.CommandTimeout
	req := sandbox.ExecRequest{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: root,
		Stdin: g.stdin, MaxOutput: g.maxOut, SkipStdout: g.skip, Background: backends.IsShadow(ctx), Around: g.around}
	if g.remote != nil {
		timeout = e.cfg.Limits.RemoteTimeout
		req.OnStderr = progressTap(ctx, root)
	}
	req.Timeout = timeout
	call := func(ctx context.Context) (sandbox.ExecResult, error) {
		e.metrics.processes.WithLabelValues(string(g.op)).Inc()
		start := time.Now()
		res, err := e.provider().Exec(ctx, sandboxID, req)
		if err == nil && res.Around.Stopped {
			err = errGuarded
		}
		d := time.Since(start).Seconds()
		e.metrics.sandboxSeconds.WithLabelValues(string(g.op)).Add(d)
		if c, ok := e.cfg.Sandboxes.Provider().(sandbox.Coster); ok {
			cost := d * c.CostPerSecond(sandboxID)
			e.metrics.sandboxCost.WithLabelValues(string(g.op)).Add(cost)
			factsOf(ctx).addCost(cost)
			e.cfg.Sandboxes.Charge(sandboxID, factsOf(ctx).who(), cost)
		}
		return res, err
	}
	if g.watch != nil {
		return e.execWatched(ctx, sandboxID, root, g.watch, &req, call)
	}
	return call(ctx)
}

// checkLocalConfig refuses a remote command in the repository at gitDir
// whose own configuration file holds a key the gateway did not write
// (gitcmd.CheckLocalConfig): "-c" cannot neutralise keys such as
// url.<base>.insteadOf or http.<url>.proxy, which could send the token
// elsewhere. The refusal is internal (nothing the agent did) and logged at
// error level with the key's name, never its value. around, if given,
// travels with the check (its result is returned).
func (e *Executor) checkLocalConfig(ctx context.Context, sandboxID, root string, op backends.Op, gitDir, originURL string, around ...sandbox.Around) (sandbox.ExecResult, error) {
	inv := gitcmd.Invocation{Args: gitcmd.LocalConfigArgs(gitDir), ReadOnly: true}
	g := gitRun{op: op, read: true}
	if len(around) > 0 {
		g.around = around[0]
	}
	res, err := e.exec(ctx, sandboxID, root, g, inv)
	if err != nil {
		return res, err
	}
	if res.ExitCode != 0 {
		return res, backends.Errorf(backends.Internal, "reading the workspace's git configuration before a remote command failed: %w", gitError(res, root))
	}
	key, err := gitcmd.CheckLocalConfig(res.Stdout, originURL)
	if err != nil {
		e.cfg.Logger.Error("refused a remote command: the repository's git configuration holds a key the gateway does not allow",
			"op", string(op), "sandbox", sandboxID, "key", key)
	}
	return res, err
}

func secretName() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// git runs a git command and turns a non-zero exit into a categorised error.
func (e *Executor) git(ctx context.Context, b sandbox.Binding, g gitRun) (sandbox.ExecResult, error) {
	res, err := e.run(ctx, b, g)
	if err == nil {
		res, err = e.unlockStaleIndex(ctx, b, g, res)
	}
	if err != nil {
		return res, err
	}
	if res.ExitCode != 0 {
		if notARepository(res) {
			// The binding outlived its repository: a clone a killed
			// process left half-made (see halfMade).
			return res, halfMade(b.Key.Name)
		}
		return res, gitError(res, b.Root)
	}
	return res, nil
}

// notARepository reports whether git failed because the workspace's git
// directory is not a repository (missing, or incomplete).
func notARepository(res sandbox.ExecResult) bool {
	return bytes.Contains(res.Stderr, []byte("fatal: not a git repository"))
}

// gitError categorises a failed git command from its output. Sandbox paths
// are removed from the message so that agents see work-tree paths only.
func gitError(res sandbox.ExecResult, root string) error {
	out := append(append([]byte{}, res.Stderr...), res.Stdout...)
	cat, msg := gitcmd.Classify(out, root+"/ws/", root+"/git/", root)
	return &backends.Error{Category: cat, Message: msg}
}

// progressTap forwards git's progress lines (split on \r and \n) to the
// context's progress function, without the sandbox's paths under root
// (see hideSandboxPaths).
func progressTap(ctx context.Context, root string) func([]byte) {
	fn := backends.ProgressFrom(ctx)
	if fn == nil {
		return nil
	}
	return func(chunk []byte) {
		for _, line := range strings.FieldsFunc(string(chunk), func(r rune) bool { return r == '\r' || r == '\n' }) {
			if line = strings.TrimSpace(hideSandboxPaths(line, root)); line != "" {
				fn(line)
			}
		}
	}
}

// remoteFor returns the network settings for a workspace's repository URL,
// re-validating it against the project's current policy.
func (e *Executor) remoteFor(p backends.Principal, rawURL string) (*gitcmd.Remote, string, error) {
	proj, ok := e.cfg.Projects.Project(p.Project)
	if !ok {
		return nil, "", backends.Errorf(backends.Forbidden, "project %q is not configured", p.Project)
	}
	u, err := gitcmd.ValidateURL(rawURL, proj.Remotes)
	if err != nil {
		return nil, "", err
	}
	return &gitcmd.Remote{
		URL: u, Schemes: proj.Remotes.Schemes, CredentialHosts: []string{gitcmd.CredentialHost(u)},
		Username: proj.Username, Token: proj.Token, Project: p.Project,
	}, u, nil
}

func identity(p backends.Principal) (*gitcmd.Identity, error) {
	if err := gitcmd.ValidateIdentity(p.AuthorName, p.AuthorEmail); err != nil {
		return nil, err
	}
	return &gitcmd.Identity{Name: p.AuthorName, Email: p.AuthorEmail}, nil
}
