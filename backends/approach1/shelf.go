package approach1

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/recovery"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/prometheus/client_golang/prometheus"
)

// Shelving keeps a workspace's unsaved work when its sandbox goes (reaped
// after the idle TTL, or at shutdown): Preserve, the sandbox.Manager's
// hook, saves a git bundle of every local branch not contained in the
// remote-tracking branches, plus two commits that hold the index and the
// work tree (untracked files included, ignored ones not), to the Vault,
// and marks the binding shelved (Binding.Shelf). The workspace's next
// operation restores it into a new sandbox (unshelve) and tells the agent.
// What is kept costs no running sandbox. A workspace in the middle of a
// merge-like operation is kept as far as it can be, and the agent told
// what was not (shelf_conflict.go).
//
// A vault entry is shelfMagic, one line of JSON (shelfManifest) and the
// bundle.

const (
	shelfMagic     = "gitgate-shelf 1\n"
	shelfRefPrefix = "refs/gitgate/shelf/"
	shelfIndexRef  = shelfRefPrefix + "index"
	shelfTreeRef   = shelfRefPrefix + "worktree"
	// shelfPage is how much of a bundle one provider read moves.
	shelfPage = 1 << 20
	// maxManifest caps the manifest line of a vault entry.
	maxManifest = 4 << 20
)

// shelfIdentity makes the commits that carry the index and the work tree.
var shelfIdentity = &gitcmd.Identity{Name: "gitgate", Email: "gitgate@localhost"}

// shelfManifest is what restoring needs besides the bundle's objects.
type shelfManifest struct {
	Workspace string `json:"workspace"`
	URL       string `json:"url"` // never with credentials (see sandbox.Binding)
	// Branch is the checked-out branch ("" when HEAD was detached) and
	// Head HEAD's commit ("" before the first commit).
	Branch string `json:"branch,omitempty"`
	Head   string `json:"head,omitempty"`
	// Index and WorkTree are the commits whose trees are the index and the
	// work tree.
	Index    string `json:"index"`
	WorkTree string `json:"work_tree"`
	// Branches are every local branch and its tip, pushed or not.
	Branches  map[string]string `json:"branches"`
	Upstreams []shelfUpstream   `json:"upstreams,omitempty"`
	Stashes   []shelfStash      `json:"stashes,omitempty"` // oldest first (undo.go)
	// Remotes are the remote-tracking refs, and Fetch the values of
	// remote.origin.fetch (a shallow clone fetches one branch only): the
	// restore's full clone is trimmed to them.
	Remotes []string  `json:"remotes"`
	Fetch   []string  `json:"fetch,omitempty"`
	Unsaved string    `json:"unsaved"`
	Forced  bool      `json:"forced,omitempty"` // shelved at shutdown rather than after the idle TTL
	Shelved time.Time `json:"shelved"`

	// InProgress is the operation the workspace was in the middle of
	// (merge, rebase, cherry_pick, revert; "" for none), RebaseBranch the
	// branch a rebase was rebasing, and Conflicts the unmerged paths.
	// A merge is restored whole from Merge; anything else is not, and the
	// restore tells the agent (resumeOperation).
	InProgress   string      `json:"in_progress,omitempty"`
	RebaseBranch string      `json:"rebase_branch,omitempty"`
	Conflicts    []string    `json:"conflicts,omitempty"`
	Merge        *shelfMerge `json:"merge,omitempty"`
}

// shelfUpstream is a branch's upstream configuration.
type shelfUpstream struct {
	Branch string `json:"branch"`
	Remote string `json:"remote"`
	Merge  string `json:"merge"`
}

// Preserve saves the unsaved work of every workspace held by the sandbox
// info before it is destroyed; it is sandbox.ManagerConfig.Preserve
// (forced: at shutdown rather than after the idle TTL). Workspaces with
// nothing unsaved are left alone (their bindings go with the sandbox).
// Without a Config.Vault it saves nothing. An error means some work was
// not saved: the manager keeps the sandbox and tries again later — unless
// the error is sandbox.ErrGone (the sandbox died first): then the
// bindings stay and each workspace's next operation reports the loss.
//
// It runs while the manager holds the sandbox, so it talks to the
// provider directly, never through the manager.
func (e *Executor) Preserve(ctx context.Context, info sandbox.Info, forced bool) error {
	if e == nil { // wired into the manager before the executor was made
		return backends.Errorf(backends.Unavailable, "the executor is not ready to save sandbox %s's work", info.ID)
	}
	if e.cfg.Vault == nil {
		return nil
	}
	list, err := e.cfg.Bindings.List(ctx, info.Owner.Project)
	if err != nil {
		return backends.Errorf(backends.Unavailable, "workspace bindings unavailable, unsaved work not saved: %w", err)
	}
	var errs []error
	for _, b := range list {
		if b.SandboxID != info.ID || b.Unsaved() == "" {
			continue
		}
		if err := e.shelve(ctx, info, b, forced); errors.Is(err, sandbox.ErrGone) {
			// Nothing left to save: the binding stays, and the
			// workspace's next operation reports the loss (replace).
			return fmt.Errorf("workspace %s: %w", b.Key, err)
		} else if err != nil {
			e.shelf.shelved.WithLabelValues("error").Inc()
			e.cfg.Logger.Warn("workspace's unsaved work could not be saved; its sandbox is kept",
				"workspace", b.Key.String(), "sandbox", info.ID, "unsaved", b.Unsaved(), "err", err)
			errs = append(errs, fmt.Errorf("workspace %s: %w", b.Key, err))
		}
	}
	return errors.Join(errs...)
}

// shelve saves b's unsaved work to the vault and marks b shelved.
func (e *Executor) shelve(ctx context.Context, info sandbox.Info, b sandbox.Binding, forced bool) error {
	b.Root = info.Root
	sx := shelfExec{e: e, p: e.cfg.Sandboxes.Provider(), b: b}
	tmpName := "shelf-" + secretName()
	tmpDir := b.Root + "/tmp/" + tmpName
	defer sx.cleanup(ctx, tmpDir)
	m, err := sx.snapshot(ctx, tmpName)
	if err != nil {
		return err
	}
	m.Workspace, m.URL, m.Unsaved, m.Forced, m.Shelved = b.Key.String(), b.URL, b.Unsaved(), forced, time.Now().UTC()
	bundle := tmpName + "/shelf.bundle"
	args := []string{"bundle", "create", "-q", tmpDir + "/shelf.bundle", "--branches", shelfIndexRef, shelfTreeRef}
	args = append(append(args, shelfStashRefs(m.Stashes)...), "--not", "--remotes")
	if _, err := sx.git(ctx, args, "", nil); err != nil {
		return err
	}
	header, err := json.Marshal(m)
	if err != nil {
		return backends.Errorf(backends.Internal, "shelf manifest: %w", err)
	}
	key := "shelf-" + secretName()
	body := io.MultiReader(strings.NewReader(shelfMagic), bytes.NewReader(append(header, '\n')),
		&sandboxReader{ctx: ctx, p: sx.p, id: b.SandboxID, root: b.Root + "/tmp", rel: bundle})
	n, err := e.cfg.Vault.Put(ctx, key, body)
	if err != nil {
		return err
	}
	nb := b
	nb.SandboxID, nb.Root, nb.Shelf, nb.Branch = "", "", key, m.Branch
	if err := e.cfg.Bindings.Put(ctx, nb); err != nil {
		if derr := e.cfg.Vault.Delete(context.WithoutCancel(ctx), key); derr != nil {
			e.cfg.Logger.Warn("vault entry of an unrecorded shelf not deleted", "shelf", key, "err", derr)
		}
		return backends.Errorf(backends.Unavailable, "workspace bindings unavailable, shelf not recorded: %w", err)
	}
	e.shelf.shelved.WithLabelValues("ok").Inc()
	e.cfg.Logger.Warn("workspace's sandbox removed with unsaved work: the work was saved and is restored on the workspace's next use",
		"workspace", b.Key.String(), "sandbox", info.ID, "reason", shelfReason(forced), "unsaved", m.Unsaved,
		"branch", m.Branch, "branches", len(m.Branches), "unpushed", b.Unpushed, "bytes", n, "shelf", key,
		"in_progress", m.InProgress, "conflicts", len(m.Conflicts))
	return nil
}

// humanDuration writes whole hours and minutes as words ("1 hour",
// "90 minutes"), anything else as time.Duration does.
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d > 0 && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d > 0 && d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return d.String()
}

func shelfReason(forced bool) string {
	if forced {
		return "shutdown"
	}
	return "idle"
}

// shelfExec runs git in a sandbox the manager holds, through the provider
// itself (the executor's provider wrapper would ask the manager to forget
// a gone sandbox, which waits for the manager).
type shelfExec struct {
	e *Executor
	p sandbox.Provider
	b sandbox.Binding
}

// git runs a git command in the workspace (with index as GIT_INDEX_FILE
// when set) and returns its stdout, or an error for a non-zero exit.
func (sx shelfExec) git(ctx context.Context, args []string, index string, stdin []byte) ([]byte, error) {
	res, err := sx.run(ctx, args, index, stdin)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, gitError(res, sx.b.Root)
	}
	return res.Stdout, nil
}

func (sx shelfExec) run(ctx context.Context, args []string, index string, stdin []byte) (sandbox.ExecResult, error) {
	inv := gitcmd.Invocation{GitDir: sx.b.GitDir(), WorkTree: sx.b.WorkTree(), Args: args, Identity: shelfIdentity}
	cmd := gitcmd.Build(sx.e.cfg.GitPath, sx.b.Root+"/home", sx.b.Root+"/tmp", inv)
	if index != "" {
		cmd.Env = append(cmd.Env, "GIT_INDEX_FILE="+index)
	}
	return sx.p.Exec(ctx, sx.b.SandboxID, sandbox.ExecRequest{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: sx.b.Root,
		Stdin: stdin, Timeout: sx.e.cfg.Limits.CommandTimeout, MaxOutput: 16 << 20})
}

// snapshot records HEAD, the local branches and their upstreams, and
// commits the index and the work tree under the private shelf refs.
func (sx shelfExec) snapshot(ctx context.Context, tmpName string) (*shelfManifest, error) {
	m := &shelfManifest{Branches: map[string]string{}}
	res, err := sx.run(ctx, []string{"symbolic-ref", "-q", "HEAD"}, "", nil)
	if err != nil {
		return nil, err
	}
	if res.ExitCode == 0 {
		m.Branch = strings.TrimPrefix(strings.TrimSpace(string(res.Stdout)), "refs/heads/")
	}
	if res, err = sx.run(ctx, []string{"rev-parse", "-q", "--verify", "HEAD^{commit}"}, "", nil); err != nil {
		return nil, err
	} else if res.ExitCode == 0 {
		m.Head = strings.TrimSpace(string(res.Stdout))
	}
	out, err := sx.git(ctx, []string{"for-each-ref", "--format=%(refname)%00%(objectname)%00%(upstream:remotename)%00%(upstream:remoteref)", "refs/heads/"}, "", nil)
	if err != nil {
		return nil, err
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\x00")
		if len(f) != 4 {
			continue
		}
		name := strings.TrimPrefix(f[0], "refs/heads/")
		m.Branches[name] = f[1]
		if f[2] != "" && f[3] != "" {
			m.Upstreams = append(m.Upstreams, shelfUpstream{Branch: name, Remote: f[2], Merge: f[3]})
		}
	}
	if out, err = sx.git(ctx, []string{"for-each-ref", "--format=%(refname)", "refs/remotes/"}, "", nil); err != nil {
		return nil, err
	}
	m.Remotes = strings.Fields(string(out))
	if m.Stashes, err = sx.snapshotStashes(ctx); err != nil {
		return nil, err
	}
	if res, err = sx.run(ctx, []string{"config", "--get-all", "remote.origin.fetch"}, "", nil); err != nil {
		return nil, err
	} else if res.ExitCode == 0 {
		m.Fetch = strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	}
	if err := sx.snapshotConflicts(ctx, m); err != nil {
		return nil, err
	}
	// The work tree: the index copied, then everything added, so that
	// tracked files stay tracked even where .gitignore matches them.
	index := sx.b.Root + "/tmp/" + tmpName + "/index"
	if err := sx.copyIndex(ctx, tmpName+"/index"); err != nil {
		return nil, err
	}
	if _, err := sx.git(ctx, []string{"add", "-A"}, index, nil); err != nil {
		return nil, err
	}
	treeOut, err := sx.git(ctx, []string{"write-tree"}, index, nil)
	if err != nil {
		return nil, err
	}
	// The index (with conflicts, a copy: see resolvedIndex).
	indexFile := ""
	if len(m.Conflicts) > 0 {
		if indexFile, err = sx.resolvedIndex(ctx, tmpName, m); err != nil {
			return nil, err
		}
	}
	indexOut, err := sx.git(ctx, []string{"write-tree"}, indexFile, nil)
	if err != nil {
		return nil, err
	}
	if m.WorkTree, err = sx.commitTree(ctx, firstLine(treeOut), m.Head, "gitgate shelf: work tree"); err != nil {
		return nil, err
	}
	if m.Index, err = sx.indexCommit(ctx, firstLine(indexOut), m); err != nil {
		return nil, err
	}
	refs := "update " + shelfIndexRef + " " + m.Index + "\nupdate " + shelfTreeRef + " " + m.WorkTree + "\n"
	if _, err := sx.git(ctx, []string{"update-ref", "--stdin"}, "", []byte(refs)); err != nil {
		return nil, err
	}
	return m, nil
}

func (sx shelfExec) commitTree(ctx context.Context, tree, parent, msg string) (string, error) {
	args := []string{"commit-tree", "-m", msg}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	out, err := sx.git(ctx, append(args, tree), "", nil)
	return firstLine(out), err
}

// copyIndex copies the workspace's index to tmp/rel (nothing when there is
// no index yet).
func (sx shelfExec) copyIndex(ctx context.Context, rel string) error {
	data, err := io.ReadAll(&sandboxReader{ctx: ctx, p: sx.p, id: sx.b.SandboxID, root: sx.b.GitDir(), rel: "index"})
	if backends.CategoryOf(err) == backends.NotFound { // the directory is still needed, for the index git writes
		_, err = sx.p.WriteFile(ctx, sx.b.SandboxID, sx.b.Root+"/tmp", path.Dir(rel)+"/.gitgate-shelf", nil)
		return err
	}
	if err != nil {
		return err
	}
	_, err = sx.p.WriteFile(ctx, sx.b.SandboxID, sx.b.Root+"/tmp", rel, data)
	return err
}

// cleanup removes the shelf refs and the temporary directory, which
// matter only when the sandbox is kept (saving failed).
func (sx shelfExec) cleanup(ctx context.Context, tmpDir string) {
	ctx = context.WithoutCancel(ctx)
	refs := "delete " + shelfIndexRef + "\ndelete " + shelfTreeRef + "\n"
	if _, err := sx.run(ctx, []string{"update-ref", "--stdin"}, "", []byte(refs)); err != nil {
		sx.e.cfg.Logger.Debug("removing the shelf refs failed", "workspace", sx.b.Key.String(), "err", err)
	}
	sx.dropShelfStashRefs(ctx)
	if err := sx.p.RemoveAll(ctx, sx.b.SandboxID, tmpDir); err != nil {
		sx.e.cfg.Logger.Debug("removing the shelf's temporary directory failed", "workspace", sx.b.Key.String(), "err", err)
	}
}

// sandboxReader reads a sandbox file in pages of shelfPage.
type sandboxReader struct {
	ctx context.Context
	p   interface {
		ReadFile(ctx context.Context, id, root, rel string, offset, limit int64) (sandbox.FileData, error)
	}
	id, root, rel string
	off           int64
	buf           []byte
	done          bool
}

func (r *sandboxReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.done {
			return 0, io.EOF
		}
		fd, err := r.p.ReadFile(r.ctx, r.id, r.root, r.rel, r.off, shelfPage)
		if err != nil {
			return 0, err
		}
		r.buf = fd.Data
		r.off += int64(len(fd.Data))
		r.done = len(fd.Data) == 0 || r.off >= fd.Size
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// unshelve restores a shelved workspace into a new sandbox (see shelf.go's
// introduction) under the workspace's lock, and tells the agent.
func (e *Executor) unshelve(ctx context.Context, b sandbox.Binding, p backends.Principal, locked bool) (*workspace, error) {
	if backends.IsShadow(ctx) {
		return nil, backends.Errorf(backends.Unavailable, "workspace %q is shelved (its sandbox was removed); shadow work does not restore it", b.Key.Name)
	}
	if !locked {
		lease, err := e.lock(ctx, b.Key)
		if err != nil {
			return nil, err
		}
		defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
		return e.open(ctx, b.Key, p, true) // another operation may have restored it meanwhile
	}
	costBefore := factsOf(ctx).costSoFar()
	w, m, err := e.restore(ctx, b, p)
	if err != nil {
		if backends.CategoryOf(err) != backends.NotFound {
			e.shelf.restored.WithLabelValues("error").Inc()
			e.cfg.Logger.Warn("shelved workspace not restored; its work stays in the vault",
				"workspace", b.Key.String(), "shelf", b.Shelf, "err", err)
		}
		return nil, err
	}
	e.shelf.restored.WithLabelValues("ok").Inc()
	e.metrics.recovery.Record(recovery.Restore, factsOf(ctx).costSoFar()-costBefore)
	why := "after " + humanDuration(e.cfg.Sandboxes.IdleTTL()) + " unused"
	if m.Forced {
		why = "when the gateway shut down"
	}
	addNotice(ctx, fmt.Sprintf("Workspace %q's sandbox was removed %s while it held %s. That work had been saved and is now restored in a new sandbox: branches, commits, staged and unstaged changes and untracked files are as you left them (ignored files were not kept).",
		b.Key.Name, why, m.Unsaved))
	if msg := e.resumeOperation(ctx, w.Binding, m); msg != "" {
		addNotice(ctx, msg)
	}
	return w, nil
}

// restore does unshelve's work; the caller holds the workspace's lock.
func (e *Executor) restore(ctx context.Context, b sandbox.Binding, p backends.Principal) (*workspace, *shelfManifest, error) {
	if e.cfg.Vault == nil {
		return nil, nil, backends.Errorf(backends.Unavailable, "workspace %q is shelved but this backend has no workspace vault configured; ask the operator to configure it", b.Key.Name)
	}
	m, bundle, err := e.readShelf(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	remote, _, err := e.remoteFor(p, b.URL)
	if err != nil {
		return nil, nil, err
	}
	info, done, err := e.acquire(ctx, b.Key.Owner())
	if err != nil {
		return nil, nil, err
	}
	nb := b
	nb.SandboxID, nb.Root, nb.Shelf, nb.LastUsed = info.ID, info.Root, "", time.Now().UTC()
	// A failed attempt leaves its half-made clone, which no binding names,
	// for the next attempt's clone to remove (cloneInto): a git that may
	// still be running is never written beside.
	fail := func(err error) (*workspace, *shelfManifest, error) {
		done()
		if backends.CategoryOf(err) == backends.Conflict { // retrying will not help
			return nil, nil, backends.Errorf(backends.Conflict, "workspace %q's saved work could not be restored: %s", b.Key.Name, backends.MessageOf(err))
		}
		return nil, nil, backends.Errorf(backends.CategoryOf(err), "workspace %q's saved work could not be restored (%s); it is kept, try again later", b.Key.Name, backends.MessageOf(err))
	}
	tail, err := e.cloneInto(ctx, nb, []string{"clone", "--no-recurse-submodules", "--no-checkout"}, remote, false)
	if err != nil {
		return fail(err)
	}
	if err := e.sealClone(ctx, nb, tail); err != nil {
		return fail(err)
	}
	if err := e.applyShelf(ctx, nb, b.Shelf, m, bundle); err != nil {
		return fail(err)
	}
	if err := e.cfg.Bindings.Put(ctx, nb); err != nil {
		return fail(backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err))
	}
	if err := e.cfg.Vault.Delete(context.WithoutCancel(ctx), b.Shelf); err != nil {
		e.cfg.Logger.Warn("restored workspace's vault entry not deleted", "workspace", b.Key.String(), "shelf", b.Shelf, "err", err)
	}
	e.cfg.Logger.Warn("shelved workspace restored into a new sandbox",
		"workspace", b.Key.String(), "sandbox", nb.SandboxID, "unsaved", m.Unsaved, "branch", m.Branch,
		"branches", len(m.Branches), "unpushed", b.Unpushed, "bytes", len(bundle), "shelf", b.Shelf)
	return &workspace{Binding: nb, done: done}, m, nil
}

// readShelf reads b's vault entry. A missing entry loses the work: the
// binding is dropped and the agent told.
func (e *Executor) readShelf(ctx context.Context, b sandbox.Binding) (*shelfManifest, []byte, error) {
	rc, _, err := e.cfg.Vault.Get(ctx, b.Shelf)
	if backends.CategoryOf(err) == backends.NotFound {
		e.workLost(ctx, b, "shelf_missing")
		_ = e.cfg.Bindings.Delete(ctx, b.Key)
		return nil, nil, backends.Errorf(backends.NotFound, "workspace %q's sandbox was removed and its saved work (%s) is missing from the workspace vault; clone it again", b.Key.Name, b.Unsaved())
	}
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	magic := make([]byte, len(shelfMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != shelfMagic {
		return nil, nil, backends.Errorf(backends.Internal, "vault entry %s is not a saved workspace", b.Shelf)
	}
	line, err := br.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) && len(line) < maxManifest {
		var more []byte
		more, err = br.ReadSlice('\n')
		line = append(slices.Clone(line), more...)
	}
	var m shelfManifest
	if err != nil || json.Unmarshal(line, &m) != nil || m.Index == "" || m.WorkTree == "" {
		return nil, nil, backends.Errorf(backends.Internal, "vault entry %s is corrupt", b.Shelf)
	}
	bundle, err := io.ReadAll(br)
	if err != nil {
		return nil, nil, backends.Errorf(backends.Unavailable, "reading vault entry %s: %w", b.Shelf, err)
	}
	return &m, bundle, nil
}

// applyShelf puts the shelf into a fresh clone made with --no-checkout:
// the bundle's objects, the local branches (and none other), their
// upstreams, HEAD, then the work tree and the index exactly.
func (e *Executor) applyShelf(ctx context.Context, b sandbox.Binding, shelfKey string, m *shelfManifest, bundle []byte) error {
	tmpName := "shelf-" + secretName() + ".bundle"
	pv := e.provider()
	if _, err := pv.WriteFile(ctx, b.SandboxID, b.Root+"/tmp", tmpName, bundle); err != nil {
		return err
	}
	defer func() { _ = pv.RemoveAll(context.WithoutCancel(ctx), b.SandboxID, b.Root+"/tmp/"+tmpName) }()
	g := func(args ...string) error {
		_, err := e.git(ctx, b, gitRun{op: "restore", args: args})
		return err
	}
	if err := g("bundle", "unbundle", b.Root+"/tmp/"+tmpName); err != nil {
		if strings.Contains(backends.MessageOf(err), "prerequisite") {
			return backends.Errorf(backends.Conflict, "the remote no longer has commits it builds on (a branch was force-pushed or deleted since); "+
				"release the workspace with force to discard it, or ask the operator to recover it from the workspace vault (entry %s)", shelfKey)
		}
		return err
	}
	res, err := e.git(ctx, b, gitRun{op: "restore", args: []string{"for-each-ref", "--format=%(refname)", "refs/heads/", "refs/remotes/"}})
	if err != nil {
		return err
	}
	// The clone's refs become the shelf's: its local branches (and none
	// other), and no remote-tracking ref the workspace did not have.
	var refs strings.Builder
	for _, ref := range strings.Fields(string(res.Stdout)) {
		if name, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
			if _, keep := m.Branches[name]; !keep {
				fmt.Fprintf(&refs, "delete %s\n", ref)
			}
			// The clone's tracking configuration; the shelf's replaces it.
			_, _ = e.run(ctx, b, gitRun{op: "restore", args: []string{"config", "--remove-section", "branch." + name}})
		} else if !slices.Contains(m.Remotes, ref) {
			fmt.Fprintf(&refs, "delete %s\n", ref)
		}
	}
	for name, sha := range m.Branches {
		fmt.Fprintf(&refs, "update refs/heads/%s %s\n", name, sha)
	}
	if _, err := e.git(ctx, b, gitRun{op: "restore", args: []string{"update-ref", "--no-deref", "--stdin"}, stdin: []byte(refs.String())}); err != nil {
		return err
	}
	if len(m.Fetch) > 0 {
		if err := g("config", "--unset-all", "remote.origin.fetch"); err != nil {
			return err
		}
		for _, f := range m.Fetch {
			if err := g("config", "--add", "remote.origin.fetch", f); err != nil {
				return err
			}
		}
	}
	for _, u := range m.Upstreams {
		if err := g("config", "branch."+u.Branch+".remote", u.Remote); err != nil {
			return err
		}
		if err := g("config", "branch."+u.Branch+".merge", u.Merge); err != nil {
			return err
		}
	}
	if m.Branch != "" {
		err = g("symbolic-ref", "HEAD", "refs/heads/"+m.Branch)
	} else if m.Head != "" {
		err = g("update-ref", "--no-deref", "HEAD", m.Head)
	}
	if err != nil {
		return err
	}
	if err := e.restoreStashes(ctx, b, m.Stashes); err != nil {
		return err
	}
	if err := g("read-tree", "--reset", "-u", m.WorkTree+"^{tree}"); err != nil {
		return err
	}
	if err := g("read-tree", m.Index+"^{tree}"); err != nil {
		return err
	}
	// Stat information for the files that match the index (see
	// finishClone); its exit code only says some do not.
	_, _ = e.run(ctx, b, gitRun{op: "restore", args: []string{"update-index", "-q", "--refresh"}})
	return nil
}

// workLost records work lost with a sandbox (reason: sandbox_gone when
// the sandbox died before its work could be saved, shelf_missing when the
// saved work is missing from the vault), for the operator.
func (e *Executor) workLost(_ context.Context, b sandbox.Binding, reason string) {
	e.shelf.lost.WithLabelValues(reason).Inc()
	e.cfg.Logger.Warn("workspace lost unsaved work with its sandbox",
		"workspace", b.Key.String(), "sandbox", b.SandboxID, "reason", reason, "unsaved", b.Unsaved(), "branch", b.Branch)
}

// releaseShelved releases a shelved workspace: refused without force,
// since its work waits in the vault; with force the work is discarded.
func (e *Executor) releaseShelved(ctx context.Context, b sandbox.Binding, force bool) error {
	if !force {
		return backends.Errorf(backends.Conflict, "workspace %q's sandbox was removed, and its %s were saved; any operation on it restores them; release with force to discard them", b.Key.Name, b.Unsaved())
	}
	if err := e.cfg.Bindings.Delete(ctx, b.Key); err != nil {
		return backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	if e.cfg.Vault != nil {
		if err := e.cfg.Vault.Delete(ctx, b.Shelf); err != nil {
			e.cfg.Logger.Warn("released workspace's vault entry not deleted", "workspace", b.Key.String(), "shelf", b.Shelf, "err", err)
		}
	}
	return nil
}

// notices collects what the agent must be told about its call beside the
// result (a restored workspace); Execute puts them on the result.
type notices struct {
	mu   sync.Mutex
	list []string
}

type noticesKey struct{}

func withNotices(ctx context.Context) (context.Context, *notices) {
	n := &notices{}
	return context.WithValue(ctx, noticesKey{}, n), n
}

func addNotice(ctx context.Context, msg string) {
	if n, ok := ctx.Value(noticesKey{}).(*notices); ok {
		n.mu.Lock()
		n.list = append(n.list, msg)
		n.mu.Unlock()
	}
}

func (n *notices) get() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.list)
}

// onError adds the notices to a failed call's error message, so that the
// agent hears of them also when its operation then failed.
func (n *notices) onError(err error) error {
	list := n.get()
	var be *backends.Error
	if len(list) == 0 || !errors.As(err, &be) {
		return err
	}
	cp := *be
	cp.Message = backends.MessageOf(err) + " (note: " + strings.Join(list, " ") + ")"
	return &cp
}

type shelfMetrics struct {
	shelved  *prometheus.CounterVec
	restored *prometheus.CounterVec
	lost     *prometheus.CounterVec
}

func newShelfMetrics(reg prometheus.Registerer, backend string) *shelfMetrics {
	labels := prometheus.Labels{"backend": backend}
	m := &shelfMetrics{
		shelved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_workspaces_shelved_total", ConstLabels: labels,
			Help: "Workspaces whose unsaved work was saved to the vault as their sandbox was removed, by outcome (error: not saved, sandbox kept).",
		}, []string{"outcome"}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_workspaces_restored_total", ConstLabels: labels,
			Help: "Shelved workspaces restored into a new sandbox, by outcome (error: not restored this time, the work stays in the vault).",
		}, []string{"outcome"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_workspaces_lost_total", ConstLabels: labels,
			Help: "Workspaces whose unsaved work was lost, by reason (sandbox_gone: the sandbox died first; shelf_missing: the saved work is missing from the vault).",
		}, []string{"reason"}),
	}
	for _, o := range []string{"ok", "error"} {
		m.shelved.WithLabelValues(o)
		m.restored.WithLabelValues(o)
	}
	for _, r := range []string{"sandbox_gone", "shelf_missing"} {
		m.lost.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.shelved, m.restored, m.lost)
	}
	return m
}
