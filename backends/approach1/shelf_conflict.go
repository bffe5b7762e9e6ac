package approach1

import (
	"context"
	"fmt"
	"strings"
)

// Shelving a workspace in the middle of an operation. A merge, rebase,
// cherry-pick or revert stopped on conflicts (or conflicts a stash left)
// is state git keeps in the repository itself — MERGE_HEAD, the rebase's
// and the sequencer's directories, the index's unmerged entries — which a
// restore into a fresh clone does not bring back. So the shelf keeps what
// can be kept and says what could not: the work tree exactly as the agent
// left it (conflict markers included), the index with each conflicted
// path as HEAD has it (write-tree refuses unmerged entries, which made
// shelving fail and kept the sandbox running until then), and in the
// manifest the operation and the conflicted paths, from which the restore
// tells the agent that the operation was lost, which paths were
// conflicted, where HEAD is and how to redo it (lostOperation).

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
