package mcpserver

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// TestReadableTextOfTheGitOperations: each result of the operations of
// issue 16 reads as one compact answer; a call that stopped on conflicts
// lists every conflicted path with its kind and what to do with it, then
// the next step (the backend's when it gave one).
func TestReadableTextOfTheGitOperations(t *testing.T) {
	both := backends.ConflictPath{Path: "hello.py", Kind: "both_modified", Stages: []int{1, 2, 3}}
	gone := backends.ConflictPath{Path: "old.txt", Kind: "deleted_by_them", Stages: []int{1, 2}}
	stoppedMerge := backends.Stopped{InProgress: "merge", Conflicts: []backends.ConflictPath{both, gone}}
	cases := []struct {
		name string
		op   backends.Op
		res  backends.Result
		want []string // in this order
		not  []string
	}{
		{"merge stopped", backends.OpMerge, &backends.MergeResult{Branch: "main", Before: "aaaaaaaaaaaaaaaa", After: "aaaaaaaaaaaaaaaa", Stopped: stoppedMerge},
			[]string{"merge into main stopped on conflicts", "main is still at aaaaaaaaaaaa", "A merge is in progress, stopped on 2 conflicted path(s):",
				"\n  both_modified hello.py: edit the file", "markers", "\n  deleted_by_them old.txt: theirs deleted it",
				"\nNext: write_file each path with its resolution, mark_resolved them, then continue; or abort"}, nil},
		{"merge stopped, backend's next step", backends.OpMerge, &backends.MergeResult{Branch: "main",
			Stopped: backends.Stopped{InProgress: "merge", Conflicts: []backends.ConflictPath{both}, Next: "resolve hello.py\x1b[2J then continue"}},
			[]string{"both_modified hello.py", `Next: resolve hello.py\x1b[2J then continue`}, []string{"\x1b"}},
		{"merge fast-forward", backends.OpMerge, &backends.MergeResult{Branch: "main", Before: "aaaa", After: "bbbb", FastForward: true},
			[]string{"Fast-forwarded main from aaaa to bbbb."}, []string{"Next", "conflict"}},
		{"merge up to date", backends.OpMerge, &backends.MergeResult{Branch: "main", UpToDate: true}, []string{"main is already up to date"}, []string{"Next"}},
		{"merge commit", backends.OpMerge, &backends.MergeResult{Branch: "main", Before: "aaaa", After: "cccc", Merged: true}, []string{"Merged into main: merge commit cccc (was aaaa)."}, nil},
		{"pull stopped", backends.OpPull, &backends.PullResult{Branch: "main", Upstream: "origin/main", Before: "aaaa", Stopped: stoppedMerge},
			[]string{"merging it into main stopped on conflicts", "hello.py", "continue"}, []string{"up to date"}},
		{"rebase stopped", backends.OpRebase, &backends.RebaseResult{Branch: "feature", Replayed: 1,
			Stopped: backends.Stopped{InProgress: "rebase", Conflicts: []backends.ConflictPath{both}}},
			[]string{"rebase of feature stopped on conflicts after replaying 1 commit(s)", "A rebase is in progress", "hello.py"}, nil},
		{"rebase done", backends.OpRebase, &backends.RebaseResult{Branch: "feature", Replayed: 2, Before: "aaaa", After: "bbbb"},
			[]string{"Rebased feature: 2 commit(s) replayed, now at bbbb (was aaaa)."}, nil},
		{"cherry-pick stopped", backends.OpCherryPick, &backends.CherryPickResult{Branch: "main", Created: []string{"1111111111111111"},
			Stopped: backends.Stopped{InProgress: "cherry_pick", Conflicts: []backends.ConflictPath{both}}},
			[]string{"cherry-pick on main stopped on conflicts after 1 new commit(s) (111111111111)", "A cherry_pick is in progress"}, nil},
		{"revert done", backends.OpRevert, &backends.RevertResult{Branch: "main", Created: []string{"1111", "2222"}, Before: "aaaa", After: "2222"},
			[]string{"Reverted onto main: 2 new commit(s) 1111 2222, now at 2222 (was aaaa)."}, nil},
		{"status in a merge", backends.OpStatus, &backends.StatusResult{Branch: "main", Head: "aaaa", InProgress: "merge", Conflicts: []backends.ConflictPath{both},
			Entries: []backends.StatusEntry{{Path: "hello.py", Staged: "U", Unstaged: "U"}}},
			[]string{"On branch main", "UU hello.py", "A merge is in progress, stopped on 1 conflicted path(s):", "both_modified hello.py", "Next:"}, nil},
		{"status, all resolved", backends.OpStatus, &backends.StatusResult{Branch: "main", InProgress: "rebase"},
			[]string{"A rebase is in progress with every conflict resolved.", "Next: call continue to finish it, or abort"}, nil},
		{"status, nothing in progress", backends.OpStatus, &backends.StatusResult{Branch: "main", Clean: true}, []string{"working tree clean"}, []string{"progress", "Next"}},
		{"mark_resolved, some left", backends.OpMarkResolved, &backends.MarkResolvedResult{Resolved: []string{"hello.py"}, Remaining: []backends.ConflictPath{gone}},
			[]string{"Marked resolved: hello.py.", "Still conflicted (1):", "deleted_by_them old.txt"}, []string{"No conflicts left"}},
		{"mark_resolved, none left", backends.OpMarkResolved, &backends.MarkResolvedResult{Resolved: []string{"hello.py", "old.txt"}},
			[]string{"Marked resolved: hello.py, old.txt.", "No conflicts left: call continue"}, nil},
		{"continue done", backends.OpContinue, &backends.ContinueResult{Operation: "merge", Branch: "main", Head: "dddd", Done: true},
			[]string{"Finished the merge on main: now at dddd."}, []string{"Next"}},
		{"continue stopped again", backends.OpContinue, &backends.ContinueResult{Operation: "rebase", Branch: "main", Head: "dddd",
			Stopped: backends.Stopped{InProgress: "rebase", Conflicts: []backends.ConflictPath{both}}},
			[]string{"stopped on conflicts again", "hello.py", "continue"}, []string{"Finished"}},
		{"abort", backends.OpAbort, &backends.AbortResult{Operation: "rebase", Branch: "main", Head: "aaaa"}, []string{"Aborted the rebase: main is back at aaaa."}, nil},
		{"stash pop with conflicts", backends.OpStash, &backends.StashResult{Action: "pop", SHA: "5555",
			Stopped: backends.Stopped{Conflicts: []backends.ConflictPath{both}}},
			[]string{"with conflicts; the entry is kept", "1 conflicted path(s):", "hello.py", "then mark_resolved them (nothing to continue)"}, []string{"in progress"}},
		{"stash push", backends.OpStash, &backends.StashResult{Action: "push", SHA: "5555"}, []string{"as stash@{0} (5555)", "stash pop"}, nil},
		{"fetch", backends.OpFetch, &backends.FetchResult{Updated: []backends.RefUpdate{{Ref: "origin/main", Before: "aaaa", After: "bbbb"},
			{Ref: "origin/new", After: "cccc"}, {Ref: "origin/old", Before: "dddd"}}},
			[]string{"3 remote-tracking branch(es) changed", "\n  origin/main aaaa -> bbbb", "\n  origin/new new at cccc", "\n  origin/old pruned (was dddd)"}, nil},
		{"fetch, nothing", backends.OpFetch, &backends.FetchResult{}, []string{"already up to date"}, nil},
		{"show a commit", backends.OpShow, &backends.ShowResult{Commit: backends.Commit{SHA: "abcd", AuthorName: "Ada", AuthorEmail: "ada@x", AuthorDate: "2026-12-01T10:00:00Z",
			Subject: "Fix it", Body: "Because.\n\nReally."}, Diff: "diff --git a/x b/x\n+\tnew\n"},
			[]string{"commit abcd\nAuthor: Ada <ada@x> 2026-12-01T10:00:00Z\n\n    Fix it\n", "\n    Because.\n    \n    Really.\n", "\ndiff --git a/x b/x\n+\tnew\n"}, nil},
		{"blame", backends.OpBlame, &backends.BlameResult{Path: "a.go", Lines: []backends.BlameLine{{Line: 7, SHA: "0123456789abcdef", Author: "Ada", Date: "2026-12-01T10:00:00Z",
			Content: "\treturn nil"}}, Truncated: true, NextLine: 8},
			[]string{"01234567 Ada 2026-12-01     7|     return nil\n", "start_line=8"}, []string{"\t"}},
		{"tags", backends.OpTags, &backends.TagsResult{Tags: []backends.Tag{{Name: "v1", Target: "aaaa"}, {Name: "v2", Target: "bbbb", Annotated: true, Message: "Second\nmore"}}},
			[]string{"v1 aaaa\n", "v2 bbbb (annotated: Second)\n"}, []string{"more"}},
		{"reflog", backends.OpReflog, &backends.ReflogResult{Entries: []backends.ReflogEntry{{Selector: "HEAD@{0}", SHA: "aaaa", Action: "reset: moving to HEAD~1", Date: "2026-12-01T10:00:00Z"}},
			Truncated: true, NextSkip: 1}, []string{"HEAD@{0} aaaa 2026-12-01T10:00:00Z reset: moving to HEAD~1\n", "skip=1"}, nil},
		{"stashes", backends.OpStashes, &backends.StashesResult{Stashes: []backends.StashEntry{{Index: 0, SHA: "aaaa", Message: "WIP on main"}}}, []string{"stash@{0} aaaa WIP on main"}, nil},
		{"reset hard", backends.OpReset, &backends.ResetResult{Branch: "main", Before: "bbbb", After: "aaaa", Mode: "hard"},
			[]string{"Reset main from bbbb to aaaa (hard).", "Uncommitted changes were discarded.", "To undo: reset to bbbb."}, nil},
		{"restore", backends.OpRestore, &backends.RestoreResult{Paths: []string{"a.txt", "b.txt"}}, []string{"Restored a.txt, b.txt."}, nil},
		{"tag", backends.OpTag, &backends.TagResult{Name: "v1", Target: "aaaa", Annotated: true}, []string{"Tagged aaaa as v1 (annotated).", "push with tags [v1]"}, nil},
		{"push with tags", backends.OpPush, &backends.PushResult{Branch: "main", Head: "aaaa", Tags: []string{"v1", "v2"}}, []string{"Pushed main (aaaa). Tags on the remote: v1, v2."}, nil},
		{"fork", backends.OpForkWorkspace, &backends.ForkWorkspaceResult{Workspace: "w2", Branch: "try", Head: "aaaa"}, []string{"Forked into workspace w2: branch try at aaaa."}, nil},
	}
	for _, c := range cases {
		body, _ := renderBody(c.op, c.res)
		rest := body
		for _, w := range c.want {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Errorf("%s: %q lacks %q (in order)", c.name, body, w)
				break
			}
			rest = rest[i+len(w):]
		}
		for _, n := range c.not {
			if strings.Contains(body, n) {
				t.Errorf("%s: %q has %q", c.name, body, n)
			}
		}
	}
}

// TestShowOfAFileIsTheFileAlone: show with a path answers like read_file:
// the content alone, the revision and paging in the hints.
func TestShowOfAFileIsTheFileAlone(t *testing.T) {
	const content = "line 1\n\tline 2\n"
	body, hints := renderBody(backends.OpShow, &backends.ShowResult{Commit: backends.Commit{SHA: "0123456789abcdef"}, Path: "a.txt", Encoding: "utf-8",
		Content: content, Truncation: backends.Truncation{Truncated: true, NextOffset: 15}})
	if body != content || !strings.Contains(hints, "a.txt at 0123456789ab") || !strings.Contains(hints, "offset=15") || strings.Contains(hints, "encoded") {
		t.Errorf("show of a file: body %q, hints %q", body, hints)
	}
}
