package approach1

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Undoing work (reset, restore, stash) and tagging (tag, and push's tags).
//
// Every agent value is validated before the lock is taken or git runs;
// revisions are resolved to commit ids first (rev-parse after
// --end-of-options), and git then gets the id, never the agent's text.
//
// The binding record. Dirty means "a replacement sandbox could not give
// this back" (sandbox.Binding.Unsaved): uncommitted changes, and also
// stash entries, which are uncommitted work kept in refs/stash that a
// fresh clone would not have. Each write here recomputes it (status, and
// whether refs/stash exists) rather than guessing; when it cannot be read
// it is set, never cleared; release refuses while entries exist
// (checkNoStashes) and the shelf keeps them (snapshotStashes,
// restoreStashes). A reset recomputes the branch's Unpushed the
// same way (a branch that holds a commit no remote-tracking branch has is
// unpushed; an unreadable answer counts as unpushed).

// maxPushTags caps the tags of one push.
const maxPushTags = 100

// reflogRev matches HEAD@{n}, optionally followed by ~N and ^N: an entry
// of HEAD's reflog (see the reflog operation), which gitcmd.ValidateRev
// does not take because '@' and '{' are not ref-name characters.
var reflogRev = regexp.MustCompile(`^HEAD@\{[0-9]{1,4}\}([~^][0-9]{0,4})*$`)

// validateReflogRev checks a revision that may name a reflog entry:
// anything gitcmd.ValidateRev takes, or HEAD@{n}. The reads (show, blame,
// diff, log) take it, and of the writes reset, restore and tag, whose
// predictions shift it past the write (revBefore); the other writes take
// the entry's commit id, which names the same commit after them.
func validateReflogRev(rev string) error {
	if reflogRev.MatchString(rev) {
		return nil
	}
	return gitcmd.ValidateRev(rev)
}

// undoCommit returns the commit rev names, or not_found.
func (e *Executor) undoCommit(ctx context.Context, b sandbox.Binding, op backends.Op, what, rev string) (string, error) {
	res, err := e.run(ctx, b, gitRun{op: op, read: true, noTree: true,
		args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}"}})
	if err != nil {
		return "", err
	}
	sha := firstLine(res.Stdout)
	if res.ExitCode != 0 || !isObjectID(sha) {
		return "", backends.Errorf(backends.NotFound, "%s %q does not name a commit in this workspace; list branches, tags, log or reflog to find one", what, rev)
	}
	return sha, nil
}

// refuseWhileStopped refuses an operation while a merge, rebase,
// cherry-pick or revert waits for the agent: continue or abort it first.
func (e *Executor) refuseWhileStopped(ctx context.Context, w *workspace, what string) error {
	st, err := e.stoppedState(ctx, w.Binding)
	if err != nil {
		return err
	}
	if st.InProgress != "" {
		return backends.Errorf(backends.Conflict, "a %s is in progress in workspace %q; finish it (resolve, mark_resolved, continue) or abandon it with abort before %s",
			strings.ReplaceAll(st.InProgress, "_", "-"), w.Key.Name, what)
	}
	return nil
}

// dirtyNow reports whether the workspace holds work a fresh clone would
// not give back: changes (tracked or untracked) or stash entries. When it
// cannot tell, it says true.
func (e *Executor) dirtyNow(ctx context.Context, w *workspace, op backends.Op) bool {
	res, err := e.git(ctx, w.Binding, gitRun{op: op, args: gitcmd.StatusArgs, read: true})
	if err != nil || !gitcmd.ParseStatus(res.Stdout).Clean {
		return true
	}
	n, err := e.stashCount(ctx, w.Binding, op)
	return err != nil || n > 0
}

// unpushedNow reports whether branch holds a commit no remote-tracking
// branch has. When it cannot tell, it says true.
func (e *Executor) unpushedNow(ctx context.Context, w *workspace, op backends.Op, branch string) bool {
	args := []string{"rev-list", "--count", "refs/heads/" + branch, "--not", "--remotes"}
	res, err := e.git(ctx, w.Binding, gitRun{op: op, args: args, read: true, noTree: true})
	return err != nil || strings.TrimSpace(string(res.Stdout)) != "0"
}

func (e *Executor) reset(ctx context.Context, r *backends.ResetRequest) (*backends.ResetResult, error) {
	ref := r.Ref
	if ref == "" {
		ref = "HEAD"
	}
	if err := validateReflogRev(ref); err != nil {
		return nil, err
	}
	mode := r.Mode
	switch {
	case r.Hard && mode != "":
		return nil, backends.Errorf(backends.InvalidArgument, "pass either hard: true or a mode (soft or mixed), not both")
	case r.Hard:
		mode = "hard"
	case mode == "":
		mode = "mixed"
	case mode == "hard":
		return nil, backends.Errorf(backends.InvalidArgument, "a hard reset discards uncommitted changes for good: ask for it with hard: true (and no mode)")
	case mode != "soft" && mode != "mixed":
		return nil, backends.Errorf(backends.InvalidArgument, "mode must be soft or mixed (or pass hard: true), not %q", mode)
	}
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	// git lets a reset end a merge (and leaves a rebase's or a
	// cherry-pick's state behind it): refused, the agent's way out of
	// those is abort. Conflicts a stash pop left (nothing in progress) a
	// mixed or hard reset clears.
	if err := e.refuseWhileStopped(ctx, w, "resetting"); err != nil {
		return nil, err
	}
	branch, before, err := e.head(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	if before == "" {
		return nil, backends.Errorf(backends.Conflict, "the branch has no commits yet; there is nothing to reset")
	}
	target, err := e.undoCommit(ctx, w.Binding, backends.OpReset, "ref", ref)
	if err != nil {
		return nil, err
	}
	if mode == "soft" {
		if st, err := e.stoppedState(ctx, w.Binding); err != nil {
			return nil, err
		} else if len(st.Conflicts) > 0 {
			return nil, backends.Errorf(backends.Conflict, "the index holds %d unresolved conflict(s), which a soft reset cannot keep; resolve them (write_file, mark_resolved) or reset with mode mixed or hard: true", len(st.Conflicts))
		}
	}
	args := []string{"reset", "--quiet", "--" + mode, target, "--"}
	if _, err := e.git(ctx, w.Binding, gitRun{op: backends.OpReset, args: args}); err != nil {
		return nil, err
	}
	_, after, err := e.head(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	dirty := e.dirtyNow(ctx, w, backends.OpReset)
	unpushed := branch != "" && e.unpushedNow(ctx, w, backends.OpReset, branch)
	e.record(ctx, w, func(b *sandbox.Binding) {
		b.Dirty = dirty
		if branch == "" {
			return
		}
		if unpushed {
			b.Unpushed = addBranch(b.Unpushed, branch)
		} else {
			b.Unpushed = removeBranch(b.Unpushed, branch)
		}
	})
	return &backends.ResetResult{Served: written(w), Branch: branch, Before: before, After: after, Mode: mode}, nil
}

// restorePaths is the restore operation (restore is the shelf's).
func (e *Executor) restorePaths(ctx context.Context, r *backends.RestoreRequest) (*backends.RestoreResult, error) {
	paths, err := restorePathList(r.Paths)
	if err != nil {
		return nil, err
	}
	if r.Source != "" {
		if err := validateReflogRev(r.Source); err != nil {
			return nil, err
		}
	}
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	args := []string{"restore", "--worktree"}
	if r.Staged {
		args = []string{"restore", "--staged"}
	}
	if r.Source != "" {
		source, err := e.undoCommit(ctx, w.Binding, backends.OpRestore, "source", r.Source)
		if err != nil {
			return nil, err
		}
		args = append(args, "--source="+source)
	} else if r.Staged {
		if _, head, err := e.head(ctx, w.Binding); err != nil {
			return nil, err
		} else if head == "" {
			return nil, backends.Errorf(backends.Conflict, "the branch has no commits yet, so there is nothing to unstage from; pass source or commit first")
		}
	}
	args = append(append(args, "--"), paths...)
	res, err := e.run(ctx, w.Binding, gitRun{op: backends.OpRestore, args: args})
	if err == nil {
		res, err = e.unlockStaleIndex(ctx, w.Binding, gitRun{op: backends.OpRestore, args: args}, res)
	}
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		if unknown := unmatchedPathspecs(res.Stderr); len(unknown) > 0 {
			from := "the index"
			switch {
			case r.Source != "":
				from = fmt.Sprintf("%q", r.Source)
			case r.Staged:
				from = "HEAD"
			}
			return nil, backends.Errorf(backends.NotFound, "nothing was restored: %s not known in %s nor in the index (restore brings back tracked files; list_files or status shows them)",
				quoteList(unknown), from)
		}
		if m := pathUnmerged.FindSubmatch(res.Stderr); m != nil {
			return nil, backends.Errorf(backends.Conflict, "nothing was restored: path %q has unresolved conflicts; resolve it (write_file, then mark_resolved), or abort the operation that left it", m[1])
		}
		return nil, gitError(res, w.Root)
	}
	dirty := e.dirtyNow(ctx, w, backends.OpRestore)
	e.record(ctx, w, func(b *sandbox.Binding) { b.Dirty = dirty })
	return &backends.RestoreResult{Served: written(w), Paths: paths}, nil
}

// restorePathList validates restore's paths: at least one, each a work-tree
// path, "." for all.
func restorePathList(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, backends.Errorf(backends.InvalidArgument, "paths are required: name the files to restore, or '.' for all")
	}
	if len(in) > gitcmd.MaxPaths {
		return nil, backends.Errorf(backends.InvalidArgument, "at most %d paths may be given", gitcmd.MaxPaths)
	}
	out := make([]string, 0, len(in))
	for _, p := range in {
		c, err := gitcmd.ValidatePath(p, true)
		if err != nil {
			return nil, err
		}
		if p == "" {
			return nil, backends.Errorf(backends.InvalidArgument, "an empty path was given; use '.' for all")
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

var pathUnmerged = regexp.MustCompile(`(?m)^error: path '(.*)' is unmerged`)

var pathspecUnmatched = regexp.MustCompile(`(?m)^error: pathspec '(.*)' did not match any file\(s\) known to git`)

// unmatchedPathspecs returns the paths git said match nothing.
func unmatchedPathspecs(stderr []byte) []string {
	var out []string
	for _, m := range pathspecUnmatched.FindAllSubmatch(stderr, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

func quoteList(names []string) string {
	q := quoteAll(names)
	if len(q) == 1 {
		return "path " + q[0] + " is"
	}
	return "paths " + strings.Join(q, ", ") + " are"
}

// stashEntry is one entry of refs/stash's reflog.
type stashEntry struct {
	sha, subject string
}

// stashList returns the stash entries, newest (stash@{0}) first.
func (e *Executor) stashList(ctx context.Context, b sandbox.Binding, op backends.Op) ([]stashEntry, error) {
	sha, err := e.refSHA(ctx, b, "refs/stash")
	if err != nil || sha == "" {
		return nil, err
	}
	res, err := e.git(ctx, b, gitRun{op: op, read: true, noTree: true,
		args: []string{"log", "--walk-reflogs", "--format=%H%x00%gs", "refs/stash", "--"}})
	if err != nil {
		return nil, err
	}
	var list []stashEntry
	for line := range strings.Lines(string(res.Stdout)) {
		h, subject, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\x00")
		if ok && isObjectID(h) {
			list = append(list, stashEntry{sha: h, subject: subject})
		}
	}
	return list, nil
}

// stashCount returns how many stash entries the workspace holds.
func (e *Executor) stashCount(ctx context.Context, b sandbox.Binding, op backends.Op) (int, error) {
	list, err := e.stashList(ctx, b, op)
	return len(list), err
}

// checkNoStashes refuses to release a workspace that holds stash entries:
// they are uncommitted work that nothing else keeps (checkNothingToLose).
func (e *Executor) checkNoStashes(ctx context.Context, w *workspace) error {
	n, err := e.stashCount(ctx, w.Binding, backends.OpReleaseWorkspace)
	if err != nil {
		return err
	}
	if n > 0 {
		return backends.Errorf(backends.Conflict, "workspace %q has %d stash entr%s (uncommitted work set aside); pop and commit them, or drop them, or release with force",
			w.Key.Name, n, map[bool]string{true: "y", false: "ies"}[n == 1])
	}
	return nil
}

func (e *Executor) stash(ctx context.Context, r *backends.StashRequest) (*backends.StashResult, error) {
	switch r.Action {
	case "push":
		if r.Index != 0 {
			return nil, backends.Errorf(backends.InvalidArgument, "index is for pop, apply and drop, not push")
		}
		if r.Message != "" {
			if err := gitcmd.ValidateMessage(r.Message); err != nil {
				return nil, err
			}
			if strings.ContainsAny(r.Message, "\n\r") {
				return nil, backends.Errorf(backends.InvalidArgument, "a stash message is one line")
			}
		}
		return e.stashPush(ctx, r)
	case "pop", "apply", "drop":
		if r.Message != "" || r.IncludeUntracked {
			return nil, backends.Errorf(backends.InvalidArgument, "message and include_untracked are for push, not %s", r.Action)
		}
		if r.Index < 0 {
			return nil, backends.Errorf(backends.InvalidArgument, "index must be 0 (the newest entry) or more, not %d", r.Index)
		}
		return e.stashUse(ctx, r)
	case "":
		return nil, backends.Errorf(backends.InvalidArgument, "action is required: push, pop, apply or drop")
	}
	return nil, backends.Errorf(backends.InvalidArgument, "action must be push, pop, apply or drop, not %q", r.Action)
}

func (e *Executor) stashPush(ctx context.Context, r *backends.StashRequest) (*backends.StashResult, error) {
	author, err := identity(r.Principal)
	if err != nil {
		return nil, err
	}
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	if err := e.refuseWhileStopped(ctx, w, "stashing"); err != nil {
		return nil, err
	}
	if _, head, err := e.head(ctx, w.Binding); err != nil {
		return nil, err
	} else if head == "" {
		return nil, backends.Errorf(backends.Conflict, "the branch has no commits yet, and git can only stash on top of one; commit first")
	}
	before, err := e.refSHA(ctx, w.Binding, "refs/stash")
	if err != nil {
		return nil, err
	}
	args := []string{"stash", "push", "--quiet"}
	if r.IncludeUntracked {
		args = append(args, "--include-untracked")
	}
	if r.Message != "" {
		args = append(args, "--message="+r.Message)
	}
	if _, err := e.git(ctx, w.Binding, gitRun{op: backends.OpStash, args: append(args, "--"), author: author}); err != nil {
		return nil, err
	}
	after, err := e.refSHA(ctx, w.Binding, "refs/stash")
	if err != nil {
		return nil, err
	}
	if after == "" || after == before {
		hint := ""
		if !r.IncludeUntracked {
			hint = " (new, untracked files are only set aside with include_untracked)"
		}
		return nil, backends.Errorf(backends.Conflict, "nothing to stash: the workspace has no uncommitted changes%s", hint)
	}
	if r.IncludeUntracked {
		// git stash removes the untracked files it saved with a child
		// "git clean ... :/", whose magic pathspec gitgate's literal
		// pathspecs (GIT_LITERAL_PATHSPECS) turn into a name that matches
		// nothing: the same clean, from the top of the work tree (no -x:
		// ignored files stay, as git stash -u leaves them).
		if _, err := e.git(ctx, w.Binding, gitRun{op: backends.OpStash, args: []string{"clean", "--force", "--quiet", "-d", "--"}}); err != nil {
			return nil, err
		}
	}
	dirty := e.dirtyNow(ctx, w, backends.OpStash)
	e.record(ctx, w, func(b *sandbox.Binding) { b.Dirty = dirty })
	return &backends.StashResult{Served: written(w), Action: "push", SHA: after}, nil
}

// stashUse pops, applies or drops stash@{index}.
func (e *Executor) stashUse(ctx context.Context, r *backends.StashRequest) (*backends.StashResult, error) {
	author, err := identity(r.Principal)
	if err != nil {
		return nil, err
	}
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	if r.Action != "drop" {
		if err := e.refuseWhileStopped(ctx, w, "applying a stash entry"); err != nil {
			return nil, err
		}
	}
	list, err := e.stashList(ctx, w.Binding, backends.OpStash)
	if err != nil {
		return nil, err
	}
	if r.Index >= len(list) {
		if len(list) == 0 {
			return nil, backends.Errorf(backends.NotFound, "there is no stash entry stash@{%d}: the workspace has no stash entries", r.Index)
		}
		return nil, backends.Errorf(backends.NotFound, "there is no stash entry stash@{%d}: the workspace has %d (stash@{0} to stash@{%d}); list them with stashes", r.Index, len(list), len(list)-1)
	}
	entry := list[r.Index]
	selector := "stash@{" + strconv.Itoa(r.Index) + "}"
	args := []string{"stash", r.Action, "--quiet", selector}
	res, err := e.run(ctx, w.Binding, gitRun{op: backends.OpStash, args: args, author: author})
	if err == nil {
		res, err = e.unlockStaleIndex(ctx, w.Binding, gitRun{op: backends.OpStash, args: args, author: author}, res)
	}
	if err != nil {
		return nil, err
	}
	out := &backends.StashResult{Action: r.Action, SHA: entry.sha}
	if res.ExitCode != 0 {
		if r.Action == "drop" {
			return nil, gitError(res, w.Root)
		}
		st, serr := e.stoppedState(ctx, w.Binding)
		if serr != nil {
			return nil, serr
		}
		if len(st.Conflicts) == 0 && !strings.Contains(string(res.Stdout)+string(res.Stderr), "CONFLICT") {
			// Refused before anything changed (local changes in the way).
			return nil, gitError(res, w.Root)
		}
		out.Stopped = st
		out.Next = fmt.Sprintf("the entry's changes conflict with the work tree; %s was kept (git keeps an entry whose changes conflict): resolve each conflicted file (write_file), mark_resolved it, then drop the entry with stash action drop when you no longer need it",
			selector)
	}
	dirty := e.dirtyNow(ctx, w, backends.OpStash)
	e.record(ctx, w, func(b *sandbox.Binding) { b.Dirty = dirty })
	out.Served = written(w)
	return out, nil
}

// validateTagName checks a tag's name: the rules of branch names
// (gitcmd.ValidateNewBranch: check-ref-format's rules, stricter; no
// option-looking, pseudo-ref, namespace-like or commit-id-like names).
func validateTagName(name string) error {
	if err := gitcmd.ValidateNewBranch(name); err != nil {
		return backends.Errorf(backends.InvalidArgument, "invalid tag name (tag names follow the rules of branch names): %s", backends.MessageOf(err))
	}
	return nil
}

// validateExistingTag checks the name of a tag that should exist (push's
// tags): the shape of a ref name, not a pseudo-ref or a namespace.
func validateExistingTag(name string) error {
	if err := gitcmd.ValidateBranch(name); err != nil {
		return backends.Errorf(backends.InvalidArgument, "invalid tag name (tag names follow the rules of branch names): %s", backends.MessageOf(err))
	}
	return nil
}

func (e *Executor) tag(ctx context.Context, r *backends.TagRequest) (*backends.TagResult, error) {
	if err := validateTagName(r.Name); err != nil {
		return nil, err
	}
	target := r.Target
	if target == "" {
		target = "HEAD"
	}
	if err := validateReflogRev(target); err != nil {
		return nil, err
	}
	var tagger *gitcmd.Identity
	if r.Message != "" {
		if err := gitcmd.ValidateMessage(r.Message); err != nil {
			return nil, err
		}
		var err error
		if tagger, err = identity(r.Principal); err != nil {
			return nil, err
		}
	}
	w, lease, err := e.openLocked(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	if err := e.checkNewTag(ctx, w.Binding, r.Name); err != nil {
		return nil, err
	}
	sha, err := e.undoCommit(ctx, w.Binding, backends.OpTag, "target", target)
	if err != nil {
		return nil, err
	}
	args := []string{"tag", "--end-of-options", r.Name, sha}
	run := gitRun{op: backends.OpTag, args: args, noTree: true}
	if r.Message != "" {
		run.args = []string{"tag", "--annotate", "--file=-", "--cleanup=verbatim", "--end-of-options", r.Name, sha}
		run.author, run.stdin = tagger, []byte(r.Message)
	}
	if _, err := e.git(ctx, w.Binding, run); err != nil {
		return nil, err
	}
	e.record(ctx, w, func(*sandbox.Binding) {})
	return &backends.TagResult{Served: written(w), Name: r.Name, Target: sha, Annotated: r.Message != ""}, nil
}

// checkNewTag refuses a tag name that exists (conflict: tags are never
// moved) or that git would confuse with another ref: a branch or remote
// branch of the same name, or a name differing only in case from one
// (see gitcmd.CheckNewBranch).
func (e *Executor) checkNewTag(ctx context.Context, b sandbox.Binding, name string) error {
	args := []string{"for-each-ref", "--format=%(refname)", "refs/heads/", "refs/remotes/", "refs/tags/"}
	res, err := e.git(ctx, b, gitRun{op: backends.OpTag, args: args, read: true, noTree: true})
	if err != nil {
		return err
	}
	refs := strings.Fields(string(res.Stdout))
	if slices.Contains(refs, "refs/tags/"+name) {
		sha, _ := e.undoCommit(ctx, b, backends.OpTag, "tag", "refs/tags/"+name)
		return backends.Errorf(backends.Conflict, "tag %q already exists (on %s); tags are not moved: choose another name", name, short(sha))
	}
	if slices.Contains(refs, "refs/heads/"+name) {
		return backends.Errorf(backends.InvalidArgument, "%q is the name of a branch; a tag of the same name would make the name ambiguous: choose another name", name)
	}
	remotes := []string{"origin"}
	var others []string
	for _, ref := range refs {
		if rest, ok := strings.CutPrefix(ref, "refs/remotes/"); ok {
			if rm, br, ok := strings.Cut(rest, "/"); ok {
				if !slices.Contains(remotes, rm) {
					remotes = append(remotes, rm)
				}
				if br == name {
					return backends.Errorf(backends.InvalidArgument, "%q is the name of a remote branch (%s); a tag of the same name would make the name ambiguous: choose another name", name, rest)
				}
			}
		}
		others = append(others, ref)
	}
	if err := gitcmd.CheckNewBranch(name, remotes, others); err != nil {
		return backends.Errorf(backends.InvalidArgument, "invalid tag name: %s", strings.ReplaceAll(backends.MessageOf(err), "branch name", "tag name"))
	}
	return nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	if sha == "" {
		return "an object"
	}
	return sha
}

// validatePushTags checks push's tags before anything runs: each a tag
// name, at most maxPushTags, duplicates dropped.
func validatePushTags(tags []string) ([]string, error) {
	if len(tags) > maxPushTags {
		return nil, backends.Errorf(backends.InvalidArgument, "at most %d tags may be pushed at once", maxPushTags)
	}
	var out []string
	for _, t := range tags {
		if err := validateExistingTag(t); err != nil {
			return nil, err
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// pushTagRefspecs returns what push adds to its command line for tags
// (validated by validatePushTags): the refspecs refs/tags/<t>:refs/tags/<t>,
// without '+' (a tag the remote has elsewhere is rejected, never moved),
// and --atomic, so that a rejected tag leaves the branch unpushed too
// (nothing half-applied). Every tag must exist locally (not_found names
// the missing ones). No tags: nothing.
func (e *Executor) pushTagRefspecs(ctx context.Context, w *workspace, tags []string) ([]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	var missing []string
	specs := []string{"--atomic"}
	for _, t := range tags {
		sha, err := e.refSHA(ctx, w.Binding, "refs/tags/"+t)
		if err != nil {
			return nil, err
		}
		if sha == "" {
			missing = append(missing, strconv.Quote(t))
			continue
		}
		specs = append(specs, "refs/tags/"+t+":refs/tags/"+t)
	}
	if len(missing) > 0 {
		return nil, backends.Errorf(backends.NotFound, "no local tag %s in workspace %q; create it with tag first (nothing was pushed)", strings.Join(missing, ", "), w.Key.Name)
	}
	return specs, nil
}

// pushTagsResult reads push's porcelain output for the tags: a tag the
// remote refused is an error naming it (conflict when the remote has the
// tag elsewhere: it is never moved; forbidden when the remote's rules
// refused it). It returns the output without the tags' lines (for
// pushResult, which reads the branch's) and the tags pushed or already
// there.
func pushTagsResult(stdout []byte, tags []string) ([]byte, []string, error) {
	if len(tags) == 0 {
		return stdout, nil, nil
	}
	var rest strings.Builder
	var done []string
	for line := range strings.Lines(string(stdout)) {
		st := gitcmd.ParsePush([]byte(line))
		if len(st) != 1 || !strings.HasPrefix(st[0].Ref, "refs/tags/") {
			rest.WriteString(line)
			continue
		}
		name := strings.TrimPrefix(st[0].Ref, "refs/tags/")
		switch st := st[0]; {
		case st.Flag == '!' && strings.Contains(st.Summary, "atomic push failed"):
			// Not pushed because another ref was rejected; that one says why.
		case st.Flag == '!' && strings.Contains(st.Summary, "remote rejected"):
			return nil, nil, backends.Errorf(backends.Forbidden, "the remote refused tag %q: %s; nothing was pushed", name, st.Summary)
		case st.Flag == '!':
			return nil, nil, backends.Errorf(backends.Conflict, "tag %q was rejected: %s — the remote has a tag of that name on another object, and tags are never moved; nothing was pushed: choose another tag name (or push without it)", name, st.Summary)
		default:
			done = append(done, name)
		}
	}
	return []byte(rest.String()), done, nil
}

// stashKept reports whether the workspace holds stash entries (true when
// it cannot tell): a record that would clear Dirty (a commit of
// everything) keeps it while they exist.
func (e *Executor) stashKept(ctx context.Context, b sandbox.Binding) bool {
	sha, err := e.refSHA(ctx, b, "refs/stash")
	return err != nil || sha != ""
}

// stashKeptAfter is stashKept from the files res read after its command
// (refs/stash and packed-refs, see commitRead), when it read them.
func (e *Executor) stashKeptAfter(ctx context.Context, b sandbox.Binding, res sandbox.ExecResult) bool {
	if !res.Around.After {
		return e.stashKept(ctx, b)
	}
	return refIn(res.Around.Files, b.GitDir(), "refs/stash") != ""
}
