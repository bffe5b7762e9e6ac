package approach1

import (
	"context"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Shadow predictions of reset, restore, stash and tag (see predict.go).
// They read the workspace lock-free and compare what can be derived
// without side effects: the commit a reset must land on (its ref resolved
// as it stood before the reset), whether the index and the work tree
// match the commit or source they must match (git diff --quiet, which
// writes nothing under GIT_OPTIONAL_LOCKS=0), stash entries, and tag
// objects. What cannot be re-derived after the fact is said where it is
// left out: a soft reset's index and a mixed reset's work tree are
// whatever they were before (not recorded anywhere); a popped entry's
// content is gone with the entry. Any later write to the workspace makes
// them stale.

// supersededOrMoved returns a stale prediction when another write came
// after the primary's (its work tree and refs say nothing about it).
func (e *Executor) supersededOrMoved(ctx context.Context, s *backends.Scope, res backends.Result) (*backends.Prediction, error) {
	later, err := e.superseded(ctx, s, res)
	if err != nil {
		return nil, err
	}
	if later {
		return stale("another write to the workspace came after it"), nil
	}
	return nil, nil
}

// blobs maps paths to "mode oid" (git's index and tree entries).
type blobs map[string]string

// digest renders b as a short comparable string: the count of entries
// and a hash of them.
func (b blobs) digest() string {
	lines := make([]string, 0, len(b))
	for path, v := range b {
		lines = append(lines, v+" "+path)
	}
	slices.Sort(lines)
	return strconv.Itoa(len(lines)) + " files " + sha256Hex([]byte(strings.Join(lines, "\n")))[:16]
}

// parseEntries parses "mode SP oid SP stage TAB path" (ls-files -s) or
// "mode SP type SP oid TAB path" (ls-tree) records, NUL-separated;
// gitlinks (submodules) are left out.
func parseEntries(out []byte, tree bool) blobs {
	m := blobs{}
	for rec := range strings.SplitSeq(string(out), "\x00") {
		meta, path, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 || f[0] == "160000" {
			continue
		}
		oid := f[1]
		if tree {
			oid = f[2]
		} else if f[2] != "0" {
			oid = "unmerged"
		}
		m[path] = f[0] + " " + oid
	}
	return m
}

// treeBlobs lists rev's files under paths (all when paths is empty).
func (e *Executor) treeBlobs(ctx context.Context, b sandbox.Binding, rev string, paths []string) (blobs, error) {
	args := append([]string{"ls-tree", "-r", "-z", "--full-tree", "--end-of-options", rev + "^{tree}"}, paths...) // ls-tree takes no "--"
	out, err := e.predictGit(ctx, b, nil, gitRun{args: args, noTree: true})
	if err != nil {
		return nil, err
	}
	return parseEntries(out, true), nil
}

// indexBlobs lists the index's files under paths (the scratch index when
// sc is set).
func (e *Executor) indexBlobs(ctx context.Context, b sandbox.Binding, sc *gitcmd.Scratch, paths []string) (blobs, error) {
	out, err := e.predictGit(ctx, b, sc, gitRun{args: append([]string{"ls-files", "-s", "-z", "--"}, paths...)})
	if err != nil {
		return nil, err
	}
	return parseEntries(out, false), nil
}

// worktreeBlobs reads the work tree's files without touching the
// repository: a scratch copy of the index is brought up to date with the
// work tree (git add -A, which hashes only the files whose stat data
// changed, its blobs going to the scratch object directory) and listed.
// Untracked files (not ignored) are listed too; callers keep the paths
// they compare.
func (e *Executor) worktreeBlobs(ctx context.Context, b sandbox.Binding) (blobs, error) {
	sc, cleanup, err := e.scratch(ctx, b)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	index, err := io.ReadAll(&sandboxReader{ctx: ctx, p: e.provider(), id: b.SandboxID, root: b.GitDir(), rel: "index"})
	if err != nil && backends.CategoryOf(err) != backends.NotFound {
		return nil, err
	}
	if err == nil {
		rel := strings.TrimPrefix(sc.IndexFile, b.Root+"/tmp/")
		if _, err := e.provider().WriteFile(ctx, b.SandboxID, b.Root+"/tmp", rel, index); err != nil {
			return nil, err
		}
	}
	if _, err := e.predictGit(ctx, b, sc, gitRun{args: []string{"add", "-A", "--", "."}}); err != nil {
		return nil, err
	}
	return e.indexBlobs(ctx, b, sc, nil)
}

// compareFiles adds key to both sides: want's files, and got's among the
// paths of keep (all of got's when keep is empty). When they differ, the
// first path that differs is added too.
func compareFiles(expected, found map[string]string, key string, want, got blobs, keep ...blobs) {
	kept := got
	if len(keep) > 0 {
		kept = blobs{}
		for path, v := range got {
			if slices.ContainsFunc(keep, func(k blobs) bool { _, ok := k[path]; return ok }) {
				kept[path] = v
			}
		}
	}
	expected[key], found[key] = want.digest(), kept.digest()
	if expected[key] == found[key] {
		return
	}
	paths := slices.Collect(maps.Keys(want))
	for path := range kept {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	for _, path := range paths {
		if want[path] != kept[path] {
			expected[key+" first difference"], found[key+" first difference"] = path+" "+want[path], path+" "+kept[path]
			return
		}
	}
}

// pathsOrAll returns nil for a list of paths that names the whole tree.
func pathsOrAll(paths []string) []string {
	if slices.Contains(paths, ".") {
		return nil
	}
	return paths
}

// revBefore resolves rev as it stood before a write that moved HEAD from
// before (one reflog entry later): HEAD and HEAD~n are taken from before,
// HEAD@{n} from the entry after it; other names are resolved as they are
// now (a write that moved them came later: the caller checks that).
func (e *Executor) revBefore(ctx context.Context, b sandbox.Binding, rev, before string) (string, error) {
	switch {
	case reflogRev.MatchString(rev):
		n, rest, _ := strings.Cut(strings.TrimPrefix(rev, "HEAD@{"), "}")
		i, err := strconv.Atoi(n)
		if err != nil {
			return "", backends.Errorf(backends.InvalidArgument, "bad reflog entry %q", rev)
		}
		rev = "HEAD@{" + strconv.Itoa(i+1) + "}" + rest
	case rev == "HEAD" || strings.HasPrefix(rev, "HEAD~") || strings.HasPrefix(rev, "HEAD^"):
		rev = before + strings.TrimPrefix(rev, "HEAD")
	}
	return e.resolveNow(ctx, b, rev)
}

// resolveNow resolves rev to a commit as the workspace stands, for a
// prediction ("(no such commit)" when it names none).
func (e *Executor) resolveNow(ctx context.Context, b sandbox.Binding, rev string) (string, error) {
	out, err := e.predictRun(ctx, b, nil, gitRun{args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}"}, noTree: true})
	if err != nil {
		return "", err
	}
	if out.ExitCode != 0 {
		return "(no such commit)", nil
	}
	return firstLine(out.Stdout), nil
}

// predictReset expects HEAD on the branch at the ref resolved as it stood
// before the reset, the reflog's newest entry to be the reset from the
// result's before, and the index (mixed, hard) and the work tree's
// tracked files (hard) to match the new HEAD.
func (e *Executor) predictReset(ctx context.Context, r *backends.ResetRequest, res *backends.ResetResult) (*backends.Prediction, error) {
	ref := r.Ref
	if ref == "" {
		ref = "HEAD"
	}
	if err := validateReflogRev(ref); err != nil {
		return nil, err
	}
	if !isObjectID(res.After) || !isObjectID(res.Before) {
		return nil, backends.Errorf(backends.InvalidArgument, "the primary's reset result does not name commits")
	}
	if p, err := e.supersededOrMoved(ctx, &r.Scope, res); p != nil || err != nil {
		return p, err
	}
	w, branch, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if branch != res.Branch || head != res.After {
		return stale("HEAD moved on from the reset"), nil
	}
	mode := r.Mode
	switch {
	case r.Hard:
		mode = "hard"
	case mode == "":
		mode = "mixed"
	}
	after, err := e.revBefore(ctx, w.Binding, ref, res.Before)
	if err != nil {
		return nil, err
	}
	prev, err := e.revBefore(ctx, w.Binding, "HEAD@{0}", "")
	if err != nil {
		return nil, err
	}
	expected := map[string]string{"branch": branch, "before": prev, "after": after, "mode": mode}
	found := map[string]string{"branch": res.Branch, "before": res.Before, "after": res.After, "mode": res.Mode}
	if mode != "soft" { // a soft reset leaves the index as it was, which nothing recorded
		want, err := e.treeBlobs(ctx, w.Binding, res.After, nil)
		if err != nil {
			return nil, err
		}
		index, err := e.indexBlobs(ctx, w.Binding, nil, nil)
		if err != nil {
			return nil, err
		}
		compareFiles(expected, found, "index", want, index)
		if mode == "hard" { // soft and mixed leave the work tree as it was
			tree, err := e.worktreeBlobs(ctx, w.Binding)
			if err != nil {
				return nil, err
			}
			compareFiles(expected, found, "worktree", want, tree, want, index)
		}
	}
	return e.unlessMoved(ctx, w.Binding, head, expected, found)
}

// predictRestore expects the paths to match their source: in the index
// (staged: the source, default HEAD) or in the work tree (the source, or
// by default the index).
func (e *Executor) predictRestore(ctx context.Context, r *backends.RestoreRequest, res *backends.RestoreResult) (*backends.Prediction, error) {
	paths, err := restorePathList(r.Paths)
	if err != nil {
		return nil, err
	}
	if r.Source != "" {
		if err := validateReflogRev(r.Source); err != nil {
			return nil, err
		}
	}
	if p, err := e.supersededOrMoved(ctx, &r.Scope, res); p != nil || err != nil {
		return p, err
	}
	w, _, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	scope := pathsOrAll(paths)
	index, err := e.indexBlobs(ctx, w.Binding, nil, scope)
	if err != nil {
		return nil, err
	}
	expected := map[string]string{"paths": strings.Join(paths, "\n")}
	found := map[string]string{"paths": strings.Join(res.Paths, "\n")}
	if r.Source == "" && !r.Staged { // the work tree from the index
		tree, err := e.worktreeBlobs(ctx, w.Binding)
		if err != nil {
			return nil, err
		}
		compareFiles(expected, found, "worktree", index, tree, index)
		return e.unlessMoved(ctx, w.Binding, head, expected, found)
	}
	source := "HEAD"
	if r.Source != "" {
		source = r.Source
	}
	sha, err := e.resolveNow(ctx, w.Binding, source) // restore does not move HEAD
	if err != nil {
		return nil, err
	}
	if !isObjectID(sha) { // the restore had to be refused
		return &backends.Prediction{Expected: map[string]string{"source": sha}, Found: map[string]string{"source": "(restored)"}}, nil
	}
	want, err := e.treeBlobs(ctx, w.Binding, sha, scope)
	if err != nil {
		return nil, err
	}
	if r.Staged { // the index from the source, the work tree as it was
		compareFiles(expected, found, "index", want, index)
	} else {
		tree, err := e.worktreeBlobs(ctx, w.Binding)
		if err != nil {
			return nil, err
		}
		compareFiles(expected, found, "worktree", want, tree, want, index)
	}
	return e.unlessMoved(ctx, w.Binding, head, expected, found)
}

// predictStash checks a stash action by what it leaves:
//   - push: stash@{0} is the result's entry, a commit on HEAD (its first
//     parent) with the request's message (git's "On <branch>: <message>")
//     and, with include_untracked, a third parent; the tracked files (and
//     with include_untracked the untracked ones) match HEAD again.
//   - apply: stash@{index} is the result's entry still; when HEAD is the
//     entry's base and it applied without conflicts, the work tree holds
//     the entry's version of every path the entry changed.
//   - pop and drop: the entry is gone from the list (a pop that stopped on
//     conflicts keeps it, as git does).
func (e *Executor) predictStash(ctx context.Context, r *backends.StashRequest, res *backends.StashResult) (*backends.Prediction, error) {
	switch r.Action {
	case "push", "pop", "apply", "drop":
	default:
		return nil, backends.Errorf(backends.InvalidArgument, "action must be push, pop, apply or drop, not %q", r.Action)
	}
	if r.Index < 0 {
		return nil, backends.Errorf(backends.InvalidArgument, "index must be 0 or more")
	}
	if !isObjectID(res.SHA) {
		return nil, backends.Errorf(backends.InvalidArgument, "the primary's stash result does not name an entry")
	}
	if p, err := e.supersededOrMoved(ctx, &r.Scope, res); p != nil || err != nil {
		return p, err
	}
	w, branch, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	list, err := e.stashList(ctx, w.Binding, "predict")
	if err != nil {
		return nil, err
	}
	at := -1
	for i, s := range list {
		if s.sha == res.SHA {
			at = i
			break
		}
	}
	expected := map[string]string{"action": r.Action}
	found := map[string]string{"action": res.Action}
	switch r.Action {
	case "push":
		expected["entry"], found["entry"] = "stash@{0}", entryAt(at)
		subject := ""
		if len(list) > 0 {
			subject = list[0].subject
		}
		if r.Message != "" {
			name := branch
			if name == "" {
				name = "(no branch)"
			}
			expected["message"], found["message"] = "On "+name+": "+r.Message, subject
		}
		made, err := e.commitFacts(ctx, w.Binding, res.SHA)
		if err != nil {
			return nil, err
		}
		parents := strings.Fields(made.parents)
		first := ""
		if len(parents) > 0 {
			first = parents[0]
		}
		expected["base"], found["base"] = head, first
		expected["untracked_kept"] = strconv.FormatBool(r.IncludeUntracked)
		found["untracked_kept"] = strconv.FormatBool(len(parents) == 3)
		want, err := e.treeBlobs(ctx, w.Binding, head, nil)
		if err != nil {
			return nil, err
		}
		index, err := e.indexBlobs(ctx, w.Binding, nil, nil)
		if err != nil {
			return nil, err
		}
		tree, err := e.worktreeBlobs(ctx, w.Binding)
		if err != nil {
			return nil, err
		}
		compareFiles(expected, found, "index", want, index)
		compareFiles(expected, found, "worktree", want, tree, want, index)
		if r.IncludeUntracked {
			out, err := e.predictGit(ctx, w.Binding, nil, gitRun{args: gitcmd.StatusArgs})
			if err != nil {
				return nil, err
			}
			untracked := slices.ContainsFunc(gitcmd.ParseStatus(out).Entries, func(s backends.StatusEntry) bool { return s.Unstaged == "?" })
			expected["untracked"], found["untracked"] = "none", map[bool]string{false: "none", true: "some"}[untracked]
		}
	case "apply":
		expected["entry"], found["entry"] = "stash@{"+strconv.Itoa(r.Index)+"}", entryAt(at)
		if len(res.Conflicts) == 0 {
			if err := e.predictApplied(ctx, w.Binding, res.SHA, head, expected, found); err != nil {
				return nil, err
			}
		}
	case "pop":
		kept := len(res.Conflicts) > 0
		expected["kept"], found["kept"] = strconv.FormatBool(kept), strconv.FormatBool(at >= 0)
		if !kept {
			if err := e.predictApplied(ctx, w.Binding, res.SHA, head, expected, found); err != nil {
				return nil, err
			}
		}
	case "drop":
		expected["kept"], found["kept"] = "false", strconv.FormatBool(at >= 0)
	}
	return e.unlessMoved(ctx, w.Binding, head, expected, found)
}

func entryAt(i int) string {
	if i < 0 {
		return "(not in the stash list)"
	}
	return "stash@{" + strconv.Itoa(i) + "}"
}

// predictApplied adds, when HEAD is the stash entry's base (then applying
// it can only give the entry's version of the paths it changed), whether
// the work tree holds the entry's version of those paths. Otherwise the
// merge's outcome is not re-derived and nothing is added.
func (e *Executor) predictApplied(ctx context.Context, b sandbox.Binding, entry, head string, expected, found map[string]string) error {
	made, err := e.commitFacts(ctx, b, entry)
	if err != nil {
		return err
	}
	parents := strings.Fields(made.parents)
	if len(parents) == 0 || parents[0] != head {
		return nil
	}
	out, err := e.predictGit(ctx, b, nil, gitRun{args: []string{"diff-tree", "-r", "--name-only", "--no-renames", "-z", "--end-of-options", parents[0], entry}, noTree: true})
	if err != nil {
		return err
	}
	var paths []string
	for p := range strings.SplitSeq(string(out), "\x00") {
		if p != "" {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 || len(paths) > gitcmd.MaxPaths {
		return nil
	}
	want, err := e.treeBlobs(ctx, b, entry, paths)
	if err != nil {
		return err
	}
	base, err := e.treeBlobs(ctx, b, parents[0], paths)
	if err != nil {
		return err
	}
	tree, err := e.worktreeBlobs(ctx, b)
	if err != nil {
		return err
	}
	compareFiles(expected, found, "worktree", want, tree, want, base)
	return nil
}

// predictTag expects refs/tags/<name> to peel to the target (resolved as
// HEAD stood: a tag does not move it), to be an annotated tag object with
// the request's message and the agent as tagger when a message was given,
// and a lightweight tag otherwise.
func (e *Executor) predictTag(ctx context.Context, r *backends.TagRequest, res *backends.TagResult) (*backends.Prediction, error) {
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
	if p, err := e.supersededOrMoved(ctx, &r.Scope, res); p != nil || err != nil {
		return p, err
	}
	w, _, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	want, err := e.resolveNow(ctx, w.Binding, target) // a tag does not move HEAD
	if err != nil {
		return nil, err
	}
	ref := "refs/tags/" + r.Name
	peeled, err := e.resolveNow(ctx, w.Binding, ref)
	if err != nil {
		return nil, err
	}
	kind, err := e.predictRun(ctx, w.Binding, nil, gitRun{args: []string{"cat-file", "-t", "--end-of-options", ref}, noTree: true})
	if err != nil {
		return nil, err
	}
	expected := map[string]string{"name": r.Name, "target": want, "annotated": strconv.FormatBool(r.Message != ""),
		"ref_target": want, "ref_annotated": strconv.FormatBool(r.Message != "")}
	found := map[string]string{"name": res.Name, "target": res.Target, "annotated": strconv.FormatBool(res.Annotated),
		"ref_target": peeled, "ref_annotated": strconv.FormatBool(firstLine(kind.Stdout) == "tag")}
	if r.Message != "" && firstLine(kind.Stdout) == "tag" {
		tagger, err := identity(r.Principal)
		if err != nil {
			return nil, err
		}
		obj, err := e.predictGit(ctx, w.Binding, nil, gitRun{args: []string{"cat-file", "tag", ref}, noTree: true})
		if err != nil {
			return nil, err
		}
		headers, message, _ := strings.Cut(string(obj), "\n\n")
		who := ""
		for line := range strings.SplitSeq(headers, "\n") {
			if v, ok := strings.CutPrefix(line, "tagger "); ok {
				who, _ = splitIdent(v)
			}
		}
		expected["message"], found["message"] = r.Message, message
		expected["tagger"], found["tagger"] = tagger.Name+" <"+tagger.Email+">", who
	}
	return e.unlessMoved(ctx, w.Binding, head, expected, found)
}

// predictPushTags adds push's tags to a push prediction (predictPush):
// the result must list every tag asked for, and each must be on the remote
// (read with ls-remote, as predictPush reads the branch) at the object the
// local tag names. Nothing is added for a push without tags. predictPush
// (predict.go) calls it before returning its prediction.
func (e *Executor) predictPushTags(ctx context.Context, r *backends.PushRequest, res *backends.PushResult, b sandbox.Binding, expected, found map[string]string) error {
	tags, err := validatePushTags(r.Tags)
	if err != nil || len(tags) == 0 {
		return err
	}
	patterns := make([]string, 0, len(tags))
	for _, t := range tags {
		patterns = append(patterns, "refs/tags/"+t)
	}
	remote, err := e.lsRemote(ctx, r.Principal, b, patterns...)
	if err != nil {
		return err
	}
	expected["tags"], found["tags"] = strings.Join(tags, " "), strings.Join(res.Tags, " ")
	for _, t := range tags {
		local, err := e.refSHA(ctx, b, "refs/tags/"+t)
		if err != nil {
			return err
		}
		expected["tag "+t], found["tag "+t] = local, remote["refs/tags/"+t]
	}
	return nil
}
