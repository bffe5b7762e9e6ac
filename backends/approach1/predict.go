package approach1

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Shadow predictions of writes (design.md §3). A write cannot be repeated,
// so the shadow re-derives what it should have produced from the state
// before it — named by the primary's result: a commit's parent, a pull's
// starting point — and reads what it did produce. Nothing here changes the
// workspace or the remote: reads run lock-free with GIT_OPTIONAL_LOCKS=0,
// trees and commits are built in a scratch index and object directory that
// are deleted afterwards, and the remote is only read (ls-remote) with the
// project's read-only credentials when it has them.

var _ backends.Predictor = (*Executor)(nil)

// Predict implements backends.Predictor.
func (e *Executor) Predict(ctx context.Context, req backends.Request, primary backends.Result) (*backends.Prediction, error) {
	if req == nil || primary == nil {
		return nil, backends.Errorf(backends.InvalidArgument, "a prediction needs the request and the primary's result")
	}
	if req.Op().IsRead() {
		return nil, backends.Errorf(backends.InvalidArgument, "%s is a read: reads are mirrored, not predicted", req.Op())
	}
	p, err := e.predict(ctx, req, primary)
	if (err != nil || p.Stale == "") && (readsWorkTree(req.Op()) || req.Op() == backends.OpPush) {
		// A later write makes the work tree say nothing about this one; it
		// may even have pulled a file from under a command (an error). A
		// push's prediction reads the remote and the branch's upstream,
		// which the agent's next push moves and rewrites meanwhile.
		if later, serr := e.superseded(ctx, req.GetScope(), primary); later {
			p, err = stale("another write to the workspace came after it"), nil
		} else if err == nil {
			err = serr
		}
	}
	if err != nil {
		return nil, backends.WithOp(req.Op(), err)
	}
	return p, nil
}

// readsWorkTree reports whether op's prediction compares work-tree
// contents, which any later write may change; the others compare commits
// and refs and check HEAD themselves.
func readsWorkTree(op backends.Op) bool {
	return op == backends.OpCommit || op == backends.OpWriteFile || op == backends.OpDeleteFile
}

// superseded reports whether another write came after the primary's: the
// workspace's write count, read once the prediction is made, has moved
// past the one the primary's result carries (0: unknown, as for a result
// replayed from the journal).
func (e *Executor) superseded(ctx context.Context, s *backends.Scope, primary backends.Result) (bool, error) {
	seq := primary.GetServed().WriteSeq
	if seq == 0 {
		return false, nil
	}
	k, err := e.key(s)
	if err != nil {
		return false, err
	}
	b, ok, err := e.cfg.Bindings.Get(ctx, k)
	if err != nil {
		return false, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	return ok && b.Writes > seq, nil
}

func (e *Executor) predict(ctx context.Context, req backends.Request, primary backends.Result) (*backends.Prediction, error) {
	p, ok := predictors[req.Op()]
	if !ok {
		return nil, backends.Errorf(backends.InvalidArgument, "operation %q cannot be predicted", req.Op())
	}
	return p(e, ctx, req, primary)
}

func withResult[R backends.Result](primary backends.Result, fn func(R) (*backends.Prediction, error)) (*backends.Prediction, error) {
	res, ok := primary.(R)
	if !ok {
		var want R
		return nil, backends.Errorf(backends.InvalidArgument, "the primary's result is %T, want %T", primary, want)
	}
	return fn(res)
}

func stale(format string, args ...any) *backends.Prediction {
	return &backends.Prediction{Stale: fmt.Sprintf(format, args...)}
}

// predictCommit builds the commit the request describes on the primary
// commit's parent — tree from a scratch index (the parent's tree plus the
// request's paths from the work tree), the request's message, the agent's
// identity and the primary commit's dates — and expects the same commit id.
func (e *Executor) predictCommit(ctx context.Context, r *backends.CommitRequest, res *backends.CommitResult) (*backends.Prediction, error) {
	paths, err := gitcmd.ValidatePaths(r.Paths)
	if err != nil {
		return nil, err
	}
	author, err := identity(r.Principal)
	if err != nil {
		return nil, err
	}
	if !isObjectID(res.SHA) {
		return nil, backends.Errorf(backends.InvalidArgument, "the primary's commit id %q is not an object id", res.SHA)
	}
	w, branch, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if head != res.SHA {
		return stale("HEAD moved on from the commit"), nil
	}
	made, err := e.commitFacts(ctx, w.Binding, res.SHA)
	if err != nil {
		return nil, err
	}
	sc, cleanup, err := e.scratch(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if made.parents != "" {
		if _, err := e.predictGit(ctx, w.Binding, sc, gitRun{args: []string{"read-tree", "--end-of-options", strings.Fields(made.parents)[0]}, noTree: true}); err != nil {
			return nil, err
		}
	}
	if _, err := e.predictGit(ctx, w.Binding, sc, gitRun{args: append([]string{"add", "-A", "--"}, paths...)}); err != nil {
		return nil, err
	}
	out, err := e.predictGit(ctx, w.Binding, sc, gitRun{args: []string{"write-tree"}, noTree: true})
	if err != nil {
		return nil, err
	}
	tree := firstLine(out)
	args := []string{"commit-tree", tree}
	if made.parents != "" {
		args = append(args, "-p", strings.Fields(made.parents)[0])
	}
	dated := *author
	dated.AuthorDate, dated.CommitterDate = made.authorDate, made.committerDate
	out, err = e.predictGit(ctx, w.Binding, sc, gitRun{args: args, noTree: true, author: &dated, stdin: []byte(r.Message)})
	if err != nil {
		return nil, err
	}
	expected := map[string]string{"branch": branch, "sha": firstLine(out), "tree": tree,
		"author": author.Name + " <" + author.Email + ">", "message": r.Message}
	found := map[string]string{"branch": res.Branch, "sha": res.SHA, "tree": made.tree, "author": made.author, "message": made.message}
	return e.unlessMoved(ctx, w.Binding, head, expected, found)
}

// commit is what predictions read of a commit.
type commit struct {
	parents, tree, author, authorDate, committerDate, message string
}

// commitFacts reads a commit object (git cat-file: headers, a blank line,
// the message byte for byte).
func (e *Executor) commitFacts(ctx context.Context, b sandbox.Binding, sha string) (commit, error) {
	res, err := e.git(ctx, b, gitRun{op: "predict", read: true, noTree: true, args: []string{"cat-file", "commit", sha}})
	if err != nil {
		return commit{}, err
	}
	headers, message, _ := strings.Cut(string(res.Stdout), "\n\n")
	c := commit{message: message}
	var parents []string
	for line := range strings.SplitSeq(headers, "\n") {
		key, value, _ := strings.Cut(line, " ")
		switch key {
		case "tree":
			c.tree = value
		case "parent":
			parents = append(parents, value)
		case "author":
			c.author, c.authorDate = splitIdent(value)
		case "committer":
			_, c.committerDate = splitIdent(value)
		}
	}
	c.parents = strings.Join(parents, " ")
	return c, nil
}

// splitIdent splits "Name <email> 1700000000 +0000" after the '>'.
func splitIdent(v string) (who, date string) {
	i := strings.LastIndexByte(v, '>')
	if i < 0 {
		return v, ""
	}
	return v[:i+1], strings.TrimSpace(v[i+1:])
}

// predictPull works out from the starting point (the primary's "before")
// and the upstream the primary fetched what the pull must do: nothing, a
// fast-forward, a refusal (ff-only), or a merge whose tree is computed with
// merge-tree in the scratch object directory.
func (e *Executor) predictPull(ctx context.Context, r *backends.PullRequest, res *backends.PullResult) (*backends.Prediction, error) {
	if res.Before != "" && !isObjectID(res.Before) || !isObjectID(res.After) {
		return nil, backends.Errorf(backends.InvalidArgument, "the primary's pull result does not name commits")
	}
	w, branch, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if branch != res.Branch || head != res.After {
		return stale("HEAD moved on from the pull"), nil
	}
	upstream, err := e.refSHA(ctx, w.Binding, "refs/remotes/origin/"+branch)
	if err != nil {
		return nil, err
	}
	before := res.Before
	found := map[string]string{"branch": res.Branch, "upstream": res.Upstream, "after": res.After,
		"updated": strconv.FormatBool(res.Updated), "merged": strconv.FormatBool(res.Merged),
		"in_progress": res.InProgress, "conflicts": conflictsOf(res.Conflicts)}
	expected := map[string]string{"branch": branch, "upstream": "origin/" + branch, "in_progress": "", "conflicts": ""}
	outcome := func(after string, updated, merged bool) {
		expected["after"], expected["updated"], expected["merged"] = after, strconv.FormatBool(updated), strconv.FormatBool(merged)
	}
	switch {
	case upstream == "":
		expected["after"] = "(refused: the branch has no upstream)"
	case before == upstream:
		outcome(before, false, false)
	case before == "":
		outcome(upstream, true, false)
	default:
		behind, err := e.isAncestor(ctx, w.Binding, before, upstream)
		if err != nil {
			return nil, err
		}
		ahead, err := e.isAncestor(ctx, w.Binding, upstream, before)
		if err != nil {
			return nil, err
		}
		switch {
		case ahead:
			outcome(before, false, false)
		case behind:
			outcome(upstream, true, false)
		case r.Mode != "merge":
			expected["after"] = "(refused: not a fast-forward)"
		default:
			if err := e.predictMerge(ctx, w.Binding, before, upstream, res, expected, found); err != nil {
				return nil, err
			}
		}
	}
	if expected["in_progress"] != "" {
		// What the index holds is compared: a later write (mark_resolved)
		// changes it without moving HEAD.
		return e.settled(ctx, w.Binding, &r.Scope, res, head, expected, found)
	}
	return e.unlessMoved(ctx, w.Binding, head, expected, found)
}

// predictMerge adds the merge's tree and parents to both sides; or, when
// it conflicts, the merge left in progress (HEAD unchanged): its
// conflicts, MERGE_HEAD and the index's unmerged paths (sequencer_predict.go).
func (e *Executor) predictMerge(ctx context.Context, b sandbox.Binding, ours, theirs string, res *backends.PullResult, expected, found map[string]string) error {
	m, err := e.mergeTrees(ctx, b, ours, theirs)
	if err != nil {
		return err
	}
	if m.conflicts != nil {
		expected["after"], expected["updated"], expected["merged"] = ours, "false", "false"
		expected["in_progress"], expected["conflicts"] = "merge", m.conflicts.String()
		return e.stoppedFacts(ctx, b, "MERGE_HEAD", theirs, m.conflicts, expected, found)
	}
	expected["after"] = "(a merge commit)"
	expected["updated"], expected["merged"] = "true", "true"
	expected["tree"], expected["parents"] = m.tree, ours+" "+theirs
	made, err := e.commitFacts(ctx, b, res.After)
	if err != nil {
		return err
	}
	found["after"] = "(a merge commit)"
	if !res.Merged {
		found["after"] = res.After
	}
	found["tree"], found["parents"] = made.tree, made.parents
	return nil
}

// predictPush expects the remote branch to hold the local branch's tip and
// the branch to track it; it reads the remote with ls-remote.
func (e *Executor) predictPush(ctx context.Context, r *backends.PushRequest, res *backends.PushResult) (*backends.Prediction, error) {
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	branch := r.Branch
	if branch == "" {
		if branch, _, err = e.currentBranch(ctx, w.Binding); err != nil {
			return nil, err
		}
	}
	if err := gitcmd.ValidateBranch(branch); err != nil {
		return nil, err
	}
	tip, err := e.refSHA(ctx, w.Binding, "refs/heads/"+branch)
	if err != nil {
		return nil, err
	}
	if tip != res.Head {
		return stale("the branch moved on from the push"), nil
	}
	ref := "refs/heads/" + branch
	remoteRefs, err := e.lsRemote(ctx, r.Principal, w.Binding, ref)
	if err != nil {
		return nil, err
	}
	upstream, err := e.predictRun(ctx, w.Binding, nil, gitRun{args: []string{"rev-parse", "--abbrev-ref", branch + "@{upstream}"}, noTree: true})
	if err != nil {
		return nil, err
	}
	expected := map[string]string{"branch": branch, "remote_ref": ref, "remote_head": tip, "upstream": "origin/" + branch}
	found := map[string]string{"branch": res.Branch, "remote_ref": res.RemoteRef, "remote_head": remoteRefs[res.RemoteRef], "upstream": firstLine(upstream.Stdout)}
	if err := e.predictPushTags(ctx, r, res, w.Binding, expected, found); err != nil { // undo_predict.go
		return nil, err
	}
	return &backends.Prediction{Expected: expected, Found: found}, nil
}

// predictClone expects the workspace to be on the branch the remote names
// (its HEAD, or the requested branch) at the commit the remote has there.
func (e *Executor) predictClone(ctx context.Context, r *backends.CloneRequest, res *backends.CloneResult) (*backends.Prediction, error) {
	w, branch, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if branch != res.Branch || head != res.Head {
		return stale("the workspace moved on from the clone"), nil
	}
	refs, err := e.lsRemote(ctx, r.Principal, w.Binding, "HEAD", "refs/heads/*")
	if err != nil {
		return nil, err
	}
	want := r.Branch
	if want == "" {
		want = strings.TrimPrefix(refs["symref:HEAD"], "refs/heads/")
	}
	tip := refs["refs/heads/"+want]
	if tip != "" && tip != res.Head && res.Branch == want {
		// The remote's branch is not where the clone left the workspace.
		// A commit the clone never fetched came after it (another user
		// pushed): the remote moved on, which says nothing of the clone.
		// A tip the workspace has, the clone saw: then it is compared.
		has, err := e.hasCommit(ctx, w.Binding, tip)
		if err != nil {
			return nil, err
		}
		if !has {
			return stale("the remote's branch moved on from the clone (it holds a commit the clone never fetched)"), nil
		}
	}
	expected := map[string]string{"workspace": r.Workspace, "branch": want, "head": tip}
	found := map[string]string{"workspace": res.Workspace, "branch": res.Branch, "head": res.Head}
	return &backends.Prediction{Expected: expected, Found: found}, nil
}

// predictCheckout expects HEAD on the requested branch at the commit it
// had (or, when created, at the start point or the previous HEAD). A
// branch name the checkout must refuse gets the checkout's own refusal
// (the same validation and the same comparison with the workspace's refs,
// the created branch itself excepted).
func (e *Executor) predictCheckout(ctx context.Context, r *backends.CheckoutRequest, res *backends.CheckoutResult) (*backends.Prediction, error) {
	validate := gitcmd.ValidateBranch
	if r.Create {
		validate = gitcmd.ValidateNewBranch
	}
	if err := validate(r.Branch); err != nil {
		return nil, err
	}
	w, branch, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if r.Create {
		if err := e.checkNewBranch(ctx, w.Binding, "predict", r.Branch); err != nil {
			return nil, err
		}
	}
	if branch != res.Branch || head != res.Head {
		return stale("HEAD moved on from the checkout"), nil
	}
	rev := "refs/heads/" + r.Branch
	switch {
	case r.Create && r.StartPoint != "":
		if err := gitcmd.ValidateRev(r.StartPoint); err != nil {
			return nil, err
		}
		rev = r.StartPoint
		if rest, ok := strings.CutPrefix(rev, "HEAD"); ok {
			rev = "HEAD@{1}" + rest // relative to HEAD before the switch
		}
	case r.Create:
		rev = "HEAD@{1}" // where HEAD was before the switch (its reflog)
	}
	out, err := e.predictRun(ctx, w.Binding, nil, gitRun{args: []string{"rev-parse", "--verify", "--quiet", rev + "^{commit}"}, noTree: true})
	if err != nil {
		return nil, err
	}
	expected := map[string]string{"branch": r.Branch, "head": firstLine(out.Stdout), "created": strconv.FormatBool(r.Create)}
	found := map[string]string{"branch": res.Branch, "head": res.Head, "created": strconv.FormatBool(res.Created)}
	return e.unlessMoved(ctx, w.Binding, head, expected, found)
}

// predictWriteFile expects the file to hold the request's decoded content.
func (e *Executor) predictWriteFile(ctx context.Context, r *backends.WriteFileRequest, res *backends.WriteFileResult) (*backends.Prediction, error) {
	rel, err := gitcmd.ValidatePath(r.Path, false)
	if err != nil {
		return nil, err
	}
	data, err := e.decodeContent(r)
	if err != nil {
		return nil, err
	}
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	fd, err := e.provider().ReadFile(ctx, w.SandboxID, w.WorkTree(), rel, 0, int64(e.cfg.Limits.MaxFileBytes)+1)
	if err != nil {
		return nil, err
	}
	expected := map[string]string{"path": rel, "size": strconv.Itoa(len(data)), "content_sha256": sha256Hex(data)}
	found := map[string]string{"path": res.Path, "size": strconv.FormatInt(res.Size, 10), "content_sha256": sha256Hex(fd.Data)}
	return &backends.Prediction{Expected: expected, Found: found}, nil
}

// predictDeleteFile expects the path to be gone.
func (e *Executor) predictDeleteFile(ctx context.Context, r *backends.DeleteFileRequest, res *backends.DeleteFileResult) (*backends.Prediction, error) {
	rel, err := gitcmd.ValidatePath(r.Path, false)
	if err != nil {
		return nil, err
	}
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	_, err = e.provider().ReadFile(ctx, w.SandboxID, w.WorkTree(), rel, 0, 0)
	exists := backends.CategoryOf(err) != backends.NotFound
	return &backends.Prediction{Expected: map[string]string{"path": rel, "exists": "false"},
		Found: map[string]string{"path": res.Path, "exists": strconv.FormatBool(exists)}}, nil
}

// predictRelease expects the workspace to be gone.
func (e *Executor) predictRelease(ctx context.Context, r *backends.ReleaseWorkspaceRequest) (*backends.Prediction, error) {
	k, err := e.key(&r.Scope)
	if err != nil {
		return nil, err
	}
	_, bound, err := e.cfg.Bindings.Get(ctx, k)
	if err != nil {
		return nil, backends.Errorf(backends.Unavailable, "workspace bindings unavailable: %w", err)
	}
	return &backends.Prediction{Expected: map[string]string{"workspace": "released"},
		Found: map[string]string{"workspace": map[bool]string{true: "still bound", false: "released"}[bound]}}, nil
}

// openAtHead opens the workspace lock-free and reads HEAD, which every
// prediction compares with the primary's result first.
func (e *Executor) openAtHead(ctx context.Context, s *backends.Scope) (*workspace, string, string, error) {
	w, err := e.openRead(ctx, s)
	if err != nil {
		return nil, "", "", err
	}
	branch, head, err := e.head(ctx, w.Binding)
	if err != nil {
		w.close()
		return nil, "", "", err
	}
	return w, branch, head, nil
}

// unlessMoved returns the prediction, or a stale one when HEAD moved while
// it was being made (a write slipped in: the comparison would be noise).
func (e *Executor) unlessMoved(ctx context.Context, b sandbox.Binding, head string, expected, found map[string]string) (*backends.Prediction, error) {
	_, now, err := e.head(ctx, b)
	if err != nil {
		return nil, err
	}
	if now != head {
		return stale("HEAD moved while the prediction was made"), nil
	}
	return &backends.Prediction{Expected: expected, Found: found}, nil
}

// isAncestor reports whether a is an ancestor of (or equal to) b.
func (e *Executor) isAncestor(ctx context.Context, b sandbox.Binding, a, c string) (bool, error) {
	res, err := e.predictRun(ctx, b, nil, gitRun{args: []string{"merge-base", "--is-ancestor", "--end-of-options", a, c}, noTree: true})
	if err != nil {
		return false, err
	}
	switch res.ExitCode {
	case 0:
		return true, nil
	case 1:
		return false, nil
	}
	return false, gitError(res, b.Root)
}

// hasCommit reports whether the workspace's repository holds commit.
func (e *Executor) hasCommit(ctx context.Context, b sandbox.Binding, commit string) (bool, error) {
	res, err := e.predictRun(ctx, b, nil, gitRun{args: []string{"cat-file", "-e", "--end-of-options", commit + "^{commit}"}, noTree: true})
	if err != nil {
		return false, err
	}
	return res.ExitCode == 0, nil
}

// lsRemote reads refs of the workspace's remote ("symref:HEAD" holds what
// HEAD points to), with the project's read-only token when it has one.
func (e *Executor) lsRemote(ctx context.Context, p backends.Principal, b sandbox.Binding, patterns ...string) (map[string]string, error) {
	remote, u, err := e.remoteFor(p, b.URL)
	if err != nil {
		return nil, err
	}
	if proj, _ := e.cfg.Projects.Project(p.Project); proj.ReadToken != "" {
		remote.Token = proj.ReadToken
	}
	inv := gitcmd.Invocation{Args: append([]string{"ls-remote", "--symref", "--", u}, patterns...), Remote: remote}
	res, err := e.exec(ctx, b.SandboxID, b.Root, gitRun{op: "predict", remote: remote}, inv)
	if err == nil && res.ExitCode != 0 {
		err = gitError(res, b.Root)
	}
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for line := range strings.SplitSeq(string(res.Stdout), "\n") {
		value, name, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		if target, sym := strings.CutPrefix(value, "ref: "); sym {
			refs["symref:"+name] = target
		} else {
			refs[name] = value
		}
	}
	return refs, nil
}

// scratch creates a private index path and object directory in the
// sandbox's temporary directory (the repository's objects readable as
// alternates) and returns them with a function that deletes both.
func (e *Executor) scratch(ctx context.Context, b sandbox.Binding) (*gitcmd.Scratch, func(), error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := "predict-" + hex.EncodeToString(rnd[:])
	tmp, dir := b.Root+"/tmp", b.Root+"/tmp/"+name
	p := e.provider()
	if _, err := p.WriteFile(ctx, b.SandboxID, tmp, name+"/objects/info/gitgate-scratch", []byte("shadow prediction scratch space\n")); err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		if err := p.RemoveAll(context.WithoutCancel(ctx), b.SandboxID, dir); err != nil {
			e.cfg.Logger.Warn("removing a prediction's scratch directory failed", "err", err)
		}
	}
	return &gitcmd.Scratch{IndexFile: dir + "/index", ObjectDir: dir + "/objects", Alternates: b.GitDir() + "/objects"}, cleanup, nil
}

// predictRun runs a read-only git command for a prediction (in the scratch
// index and object directory when sc is set) whatever its exit code.
func (e *Executor) predictRun(ctx context.Context, b sandbox.Binding, sc *gitcmd.Scratch, g gitRun) (sandbox.ExecResult, error) {
	g.op, g.read = "predict", true
	inv := gitcmd.Invocation{GitDir: b.GitDir(), WorkTree: b.WorkTree(), Args: g.args, ReadOnly: true, Identity: g.author, Scratch: sc}
	if g.noTree {
		inv.WorkTree = ""
	}
	return e.exec(ctx, b.SandboxID, b.Root, g, inv)
}

// predictGit is predictRun that turns a non-zero exit into an error and
// returns the output.
func (e *Executor) predictGit(ctx context.Context, b sandbox.Binding, sc *gitcmd.Scratch, g gitRun) ([]byte, error) {
	res, err := e.predictRun(ctx, b, sc, g)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, gitError(res, b.Root)
	}
	return res.Stdout, nil
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// isObjectID reports whether s is a full SHA-1 or SHA-256 object id.
func isObjectID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
