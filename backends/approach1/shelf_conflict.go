package approach1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/backends/sandbox"
)

// Shelving a workspace in the middle of an operation. A merge, rebase,
// cherry-pick or revert stopped on conflicts (or conflicts a stash left)
// is state git keeps in the repository itself — MERGE_HEAD, the rebase's
// and the sequencer's directories, the index's unmerged entries — which a
// restore into a fresh clone does not bring back by itself. The shelf
// keeps the work tree exactly as the agent left it (conflict markers
// included), the index with each conflicted path as HEAD has it
// (write-tree refuses unmerged entries, which made shelving fail and kept
// the sandbox running until then), and in the manifest the operation and
// the conflicted paths.
//
// A merge is restored whole: its heads, message and mode and the index's
// unmerged entries are in the manifest (shelfMerge), the commits it
// brings in are in the bundle (the index's shelf commit has them as
// parents), and the restore puts them back, so the agent resolves,
// continues or aborts as before. A rebase, cherry-pick or revert keeps
// more state (todo lists, the commits it already made) than is worth
// rebuilding; it, and a merge whose restore fails, is told lost: the
// restore's notice says which operation, which paths were conflicted,
// where HEAD is and how to redo it (lostOperation).

// shelfMerge is a merge in progress, kept whole: its heads (MERGE_HEAD),
// message (MERGE_MSG) and mode (MERGE_MODE), and the index's unmerged
// entries.
type shelfMerge struct {
	Heads    []string     `json:"heads"`
	Message  string       `json:"message,omitempty"`
	Mode     string       `json:"mode,omitempty"`
	Unmerged []shelfEntry `json:"unmerged,omitempty"`
}

// shelfEntry is an unmerged index entry.
type shelfEntry struct {
	Mode   string `json:"mode"`
	Object string `json:"object"`
	Stage  int    `json:"stage"`
	Path   string `json:"path"`
}

// snapshotConflicts records in m the operation the workspace is in the
// middle of and its unmerged paths.
func (sx shelfExec) snapshotConflicts(ctx context.Context, m *shelfManifest) error {
	var err error
	if m.InProgress, m.RebaseBranch, err = sx.pending(ctx); err != nil {
		return err
	}
	out, err := sx.git(ctx, []string{"ls-files", "--unmerged", "-z"}, "", nil)
	if err != nil {
		return err
	}
	m.Conflicts = pathsOf(parseUnmerged(out))
	if m.InProgress == opMerge {
		m.Merge = sx.snapshotMerge(ctx, out)
	}
	return nil
}

// snapshotMerge reads the merge in progress, with the index's unmerged
// entries (git ls-files --unmerged -z); nil when its state is not one
// gitgate can restore.
func (sx shelfExec) snapshotMerge(ctx context.Context, unmerged []byte) *shelfMerge {
	read := func(rel string) string {
		fd, err := sx.p.ReadFile(ctx, sx.b.SandboxID, sx.b.GitDir(), rel, 0, 1<<20)
		if err != nil {
			return ""
		}
		return string(fd.Data)
	}
	mg := &shelfMerge{Heads: strings.Fields(read("MERGE_HEAD")), Message: read("MERGE_MSG"), Mode: strings.TrimSpace(read("MERGE_MODE"))}
	if len(mg.Heads) == 0 || (mg.Mode != "" && mg.Mode != "no-ff") {
		return nil
	}
	for _, h := range mg.Heads {
		if !isObjectID(h) {
			return nil
		}
	}
	for rec := range bytes.SplitSeq(unmerged, []byte{0}) {
		meta, path, ok := bytes.Cut(rec, []byte{'\t'})
		f := strings.Fields(string(meta))
		if !ok || len(f) != 3 {
			continue
		}
		stage, err := strconv.Atoi(f[2])
		if err != nil || stage < 1 || stage > 3 || !isObjectID(f[1]) {
			return nil
		}
		mg.Unmerged = append(mg.Unmerged, shelfEntry{Mode: f[0], Object: f[1], Stage: stage, Path: string(path)})
	}
	return mg
}

// indexCommit commits the index's tree on HEAD and, for a merge in
// progress, on its heads too: the bundle then carries the commits the
// merge brings in, which its restore needs.
func (sx shelfExec) indexCommit(ctx context.Context, tree string, m *shelfManifest) (string, error) {
	args := []string{"commit-tree", "-m", "gitgate shelf: index"}
	if m.Head != "" {
		args = append(args, "-p", m.Head)
	}
	if m.Merge != nil {
		for _, h := range m.Merge.Heads {
			args = append(args, "-p", h)
		}
	}
	out, err := sx.git(ctx, append(args, tree), "", nil)
	return firstLine(out), err
}

// resumeOperation puts back, in the restored workspace b, the operation
// it was in the middle of when it was shelved — a merge, whole — and
// returns what the agent is told of it ("" when there was none).
func (e *Executor) resumeOperation(ctx context.Context, b sandbox.Binding, m *shelfManifest) string {
	if m.InProgress == "" && len(m.Conflicts) == 0 {
		return ""
	}
	name := b.Key.Name
	if m.InProgress == opMerge && m.Merge != nil {
		err := e.restoreMerge(ctx, b, m)
		if err == nil {
			e.cfg.Logger.Info("restored workspace's merge in progress restored with it", "workspace", b.Key.String(), "conflicts", len(m.Conflicts))
			if len(m.Conflicts) == 0 {
				return fmt.Sprintf("Workspace %q was in the middle of a merge when its sandbox was removed; the merge was restored with it, every conflict resolved: call continue to finish it, or abort to go back to where the workspace was before it.", name)
			}
			return fmt.Sprintf("Workspace %q was in the middle of a merge when its sandbox was removed; the merge was restored with it, and its conflicts (%s) wait for you as before: resolve them, mark_resolved each path, then continue, or abort.", name, listed(m.Conflicts))
		}
		e.cfg.Logger.Warn("restored workspace's merge in progress could not be restored", "workspace", b.Key.String(), "err", err)
	}
	e.cfg.Logger.Warn("restored workspace was in the middle of an operation that could not be saved; the agent is told to redo it",
		"workspace", b.Key.String(), "in_progress", m.InProgress, "conflicts", len(m.Conflicts))
	return lostOperation(name, m)
}

// restoreMerge puts m's merge back into the restored workspace b: the
// unmerged entries into the index, then MERGE_MSG, MERGE_MODE and
// MERGE_HEAD. On failure it undoes what it did: the workspace is left as
// restored without the merge (and the agent told it was lost).
func (e *Executor) restoreMerge(ctx context.Context, b sandbox.Binding, m *shelfManifest) (err error) {
	mg := m.Merge
	g := func(args []string, stdin []byte) error {
		_, err := e.git(ctx, b, gitRun{op: "restore", args: args, stdin: stdin, noTree: true})
		return err
	}
	// Every object the merge names must be here (the bundle brought them).
	var objects strings.Builder
	for _, h := range mg.Heads {
		objects.WriteString(h + "\n")
	}
	for _, en := range mg.Unmerged {
		objects.WriteString(en.Object + "\n")
	}
	res, err := e.git(ctx, b, gitRun{op: "restore", args: []string{"cat-file", "--batch-check"}, stdin: []byte(objects.String()), noTree: true})
	if err != nil {
		return err
	}
	if strings.Contains(string(res.Stdout), " missing") {
		return errors.New("an object of the merge is missing")
	}
	p := e.provider()
	defer func() {
		if err == nil {
			return
		}
		c := context.WithoutCancel(ctx)
		for _, f := range []string{"MERGE_HEAD", "MERGE_MSG", "MERGE_MODE"} {
			_, _ = p.Remove(c, b.SandboxID, b.GitDir(), f)
		}
		if _, rerr := e.git(c, b, gitRun{op: "restore", args: []string{"read-tree", m.Index + "^{tree}"}}); rerr != nil {
			e.cfg.Logger.Warn("undoing a failed merge restore: the index could not be reset", "workspace", b.Key.String(), "err", rerr)
		}
	}()
	var info bytes.Buffer
	removed := map[string]bool{}
	for _, en := range mg.Unmerged {
		if !removed[en.Path] {
			removed[en.Path] = true
			fmt.Fprintf(&info, "0 %s\t%s\x00", strings.Repeat("0", len(en.Object)), en.Path)
		}
	}
	for _, en := range mg.Unmerged {
		fmt.Fprintf(&info, "%s %s %d\t%s\x00", en.Mode, en.Object, en.Stage, en.Path)
	}
	if info.Len() > 0 {
		if err := g([]string{"update-index", "-z", "--index-info"}, info.Bytes()); err != nil {
			return err
		}
	}
	files := [][2]string{{"MERGE_MSG", mg.Message}, {"MERGE_MODE", mg.Mode}, {"MERGE_HEAD", strings.Join(mg.Heads, "\n") + "\n"}}
	for _, f := range files {
		if f[0] == "MERGE_MODE" && f[1] == "" {
			continue
		}
		if _, err := p.WriteFile(ctx, b.SandboxID, b.GitDir(), f[0], []byte(f[1])); err != nil {
			return err
		}
	}
	if _, err := e.git(ctx, b, gitRun{op: "restore", args: []string{"rev-parse", "--verify", "--quiet", "MERGE_HEAD"}, noTree: true}); err != nil {
		return err
	}
	return nil
}

// pending reads which operation the workspace is in the middle of, as
// inProgress does but through the provider itself (see shelfExec), and
// for a rebase the branch it rebases ("" for a detached HEAD).
func (sx shelfExec) pending(ctx context.Context) (op, rebaseBranch string, err error) {
	entries, err := sx.p.ListDir(ctx, sx.b.SandboxID, sx.b.GitDir(), ".", false, maxGitDirEntries)
	if err != nil {
		return "", "", err
	}
	names := map[string]bool{}
	for _, en := range entries {
		names[strings.TrimPrefix(en.Path, "./")] = true
	}
	read := func(rel string) string {
		fd, err := sx.p.ReadFile(ctx, sx.b.SandboxID, sx.b.GitDir(), rel, 0, 1<<20)
		if err != nil {
			return ""
		}
		return string(fd.Data)
	}
	switch {
	case names["rebase-merge"] || names["rebase-apply"]:
		dir := "rebase-merge"
		if !names[dir] {
			dir = "rebase-apply"
		}
		branch := strings.TrimSpace(read(dir + "/head-name"))
		return opRebase, strings.TrimPrefix(branch, "refs/heads/"), nil
	case names["MERGE_HEAD"]:
		return opMerge, "", nil
	case names["CHERRY_PICK_HEAD"]:
		return opCherryPick, "", nil
	case names["REVERT_HEAD"]:
		return opRevert, "", nil
	case names["sequencer"]:
		return sequenceOp([]byte(read("sequencer/todo"))), "", nil
	}
	return "", "", nil
}

// resolvedIndex copies the workspace's index to tmp/<tmpName>/index-resolved
// with m's conflicted paths as HEAD has them (left out where HEAD lacks
// them, or has no commit), and returns the copy's path. The workspace's
// own index is not touched.
func (sx shelfExec) resolvedIndex(ctx context.Context, tmpName string, m *shelfManifest) (string, error) {
	rel := tmpName + "/index-resolved"
	if err := sx.copyIndex(ctx, rel); err != nil {
		return "", err
	}
	index := sx.b.Root + "/tmp/" + rel
	args := []string{"reset", "-q", "HEAD", "--pathspec-from-file=-", "--pathspec-file-nul"}
	if m.Head == "" {
		args = []string{"rm", "-q", "--cached", "--ignore-unmatch", "--pathspec-from-file=-", "--pathspec-file-nul"}
	}
	if _, err := sx.git(ctx, args, index, []byte(strings.Join(m.Conflicts, "\x00"))); err != nil {
		return "", err
	}
	return index, nil
}

// lostOperation is what the agent is told, on the restore, of the
// operation and the conflicts its workspace held, which the shelf could
// not keep ("" when there were none): that git no longer knows of the
// operation, which paths were conflicted, where HEAD is, and how to redo
// it with the tools it has.
func lostOperation(name string, m *shelfManifest) string {
	if m.InProgress == "" && len(m.Conflicts) == 0 {
		return ""
	}
	op := opWords(m.InProgress)
	var s strings.Builder
	if m.InProgress != "" {
		fmt.Fprintf(&s, "Workspace %q was in the middle of a %s when its sandbox was removed, and the %s in progress could not be saved: git no longer knows of it, so continue and abort cannot be used.", name, op, op)
	} else {
		fmt.Fprintf(&s, "Workspace %q had unresolved conflicts when its sandbox was removed, and they could not be saved as conflicts.", name)
	}
	if len(m.Conflicts) > 0 {
		fmt.Fprintf(&s, " The conflicted paths (%s) hold what you left in them, conflict markers included, but are no longer marked as conflicted: they show as ordinary uncommitted changes.", listed(m.Conflicts))
	}
	const discard = "discard these changes (reset with hard: true)"
	switch m.InProgress {
	case opMerge:
		s.WriteString(" HEAD is where it was before the merge, and what the merge had already applied is staged; committing now would make an ordinary commit, not a merge. To redo it, " + discard + " and merge again.")
	case opRebase:
		if m.RebaseBranch != "" {
			fmt.Fprintf(&s, " HEAD is detached at the commit the rebase had reached; branch %q is still at its commit from before the rebase. To redo it, %s, check out %q and rebase again.", m.RebaseBranch, discard, m.RebaseBranch)
		} else {
			s.WriteString(" HEAD is detached at the commit the rebase had reached. To redo it, " + discard + ", check out what you were rebasing and rebase again.")
		}
	case opCherryPick, opRevert:
		fmt.Fprintf(&s, " HEAD is where it was before the step that stopped, and any steps after it were lost too. To redo it, %s and run the %s again.", discard, op)
	default:
		s.WriteString(" Resolve the markers and commit, or " + discard + ".")
	}
	return s.String()
}
