package mcpserver

import (
	"fmt"
	"strings"

	"github.com/gitgate/gitgate/backends"
)

// The readable texts of the operations of issue 16 (history, integration,
// undo, tags, conflicts, forks). Like render.go's, every name is quoted
// (quoteName), every line of prose escaped (escapeLine) and file content
// and diffs escaped keeping their layout (escapeText).

// stopped reports whether s says a call stopped with something left for
// the agent to do.
func stopped(s backends.Stopped) bool {
	return s.InProgress != "" || len(s.Conflicts) > 0
}

// conflictHints are the next step for a conflicted path of each kind
// (backends.ConflictPath.Kind). "ours" is HEAD: during a rebase that is
// the branch being rebased onto, and "theirs" the commit being replayed.
var conflictHints = map[string]string{
	"both_modified":   "edit the file to the resolution and remove the <<<<<<< ======= >>>>>>> markers",
	"both_added":      "both sides added it: edit the file to the resolution and remove the markers",
	"both_deleted":    "both sides deleted it: mark it resolved as it is (deleted)",
	"added_by_us":     "only ours has it: keep the file as it is, or delete it (delete_file)",
	"added_by_them":   "only theirs has it: keep the file as it is, or delete it (delete_file)",
	"deleted_by_us":   "ours deleted it, theirs changed it: keep theirs (it is in the work tree) or delete it (delete_file)",
	"deleted_by_them": "theirs deleted it, ours changed it: keep ours (it is in the work tree) or delete it (delete_file)",
}

// renderConflicts lists conflicted paths, one a line, with their kind and
// what to do with each.
func renderConflicts(b *strings.Builder, conflicts []backends.ConflictPath) {
	for _, c := range conflicts {
		hint, ok := conflictHints[c.Kind]
		if !ok {
			hint = "edit the file to the resolution"
		}
		fmt.Fprintf(b, "\n  %s %s: %s", quoteName(c.Kind), quoteName(c.Path), hint)
	}
}

// renderStopped says, after a result's own line, what a call left in
// progress: the operation waiting for the agent, each conflicted path and
// the next step (the backend's, or the usual one). Nothing when nothing
// is left.
func renderStopped(b *strings.Builder, s backends.Stopped) {
	if !stopped(s) {
		return
	}
	op := quoteName(s.InProgress)
	switch {
	case s.InProgress != "" && len(s.Conflicts) == 0:
		fmt.Fprintf(b, "\nA %s is in progress with every conflict resolved.", op)
	case s.InProgress != "":
		fmt.Fprintf(b, "\nA %s is in progress, stopped on %d conflicted path(s):", op, len(s.Conflicts))
	default:
		fmt.Fprintf(b, "\n%d conflicted path(s):", len(s.Conflicts))
	}
	renderConflicts(b, s.Conflicts)
	next := escapeLine(s.Next)
	switch {
	case next != "":
	case len(s.Conflicts) == 0:
		next = "call continue to finish it, or abort to return to where you were."
	case s.InProgress == "":
		next = "write_file each path with its resolution, then mark_resolved them (nothing to continue)."
	default:
		next = "write_file each path with its resolution, mark_resolved them, then continue; or abort to return to where you were."
	}
	b.WriteString("\nNext: " + next)
}

// names is a list of names, quoted where needed, comma separated.
func names(list []string) string {
	q := make([]string, len(list))
	for i, n := range list {
		q[i] = quoteName(n)
	}
	return strings.Join(q, ", ")
}

// shorts is a list of commit ids, shortened.
func shorts(list []string) string {
	q := make([]string, len(list))
	for i, n := range list {
		q[i] = orNone(short(n))
	}
	return strings.Join(q, " ")
}

func renderFetch(b *strings.Builder, r *backends.FetchResult) {
	if len(r.Updated) == 0 {
		b.WriteString("Fetched: every remote-tracking branch was already up to date.")
		return
	}
	fmt.Fprintf(b, "Fetched: %d remote-tracking branch(es) changed.", len(r.Updated))
	for _, u := range r.Updated {
		switch {
		case u.Before == "":
			fmt.Fprintf(b, "\n  %s new at %s", quoteName(u.Ref), orNone(short(u.After)))
		case u.After == "":
			fmt.Fprintf(b, "\n  %s pruned (was %s)", quoteName(u.Ref), orNone(short(u.Before)))
		default:
			fmt.Fprintf(b, "\n  %s %s -> %s", quoteName(u.Ref), orNone(short(u.Before)), orNone(short(u.After)))
		}
	}
}

// renderShow returns a file at a revision (its content alone, like
// read_file, with the encoding and paging hints apart) or a commit: its
// header, message and diff.
func renderShow(r *backends.ShowResult) (body, hints string) {
	if r.Path != "" {
		h := []string{fmt.Sprintf("(%s at %s)", quoteName(r.Path), orNone(short(r.SHA)))}
		if r.Encoding != "" && r.Encoding != "utf-8" {
			h = append(h, fmt.Sprintf("(%s-encoded)", quoteName(r.Encoding)))
		}
		if m := more(r.Truncation); m != "" {
			h = append(h, m)
		}
		return escapeText(r.Content), strings.Join(h, "\n")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "commit %s\nAuthor: %s <%s> %s\n\n    %s\n", orNone(r.SHA), escapeLine(r.AuthorName), escapeLine(r.AuthorEmail),
		escapeLine(r.AuthorDate), escapeLine(r.Subject))
	if body := strings.TrimRight(r.Body, "\n"); body != "" {
		b.WriteString("\n")
		for line := range strings.SplitSeq(body, "\n") {
			b.WriteString("    " + escapeLine(line) + "\n")
		}
	}
	if r.Diff != "" {
		b.WriteString("\n" + escapeText(r.Diff))
	}
	return b.String(), more(r.Truncation)
}

func renderBlame(b *strings.Builder, r *backends.BlameResult) {
	if len(r.Lines) == 0 {
		fmt.Fprintf(b, "%s: no lines.", quoteName(r.Path))
	}
	for _, l := range r.Lines {
		date, _, _ := strings.Cut(l.Date, "T")
		// Tabs become spaces: the line is shown as one line of prose
		// (its exact bytes are in the structured content).
		sha := l.SHA[:min(8, len(l.SHA))]
		fmt.Fprintf(b, "%s %s %s %5d| %s\n", orNone(sha), escapeLine(l.Author), escapeLine(date), l.Line,
			escapeLine(strings.ReplaceAll(l.Content, "\t", "    ")))
	}
	if r.Truncated {
		fmt.Fprintf(b, "(more lines: call again with start_line=%d)", r.NextLine)
	}
}

func renderTags(b *strings.Builder, r *backends.TagsResult) {
	if len(r.Tags) == 0 {
		b.WriteString("No tags.")
	}
	for _, t := range r.Tags {
		fmt.Fprintf(b, "%s %s", quoteName(t.Name), orNone(short(t.Target)))
		if t.Annotated {
			first, _, _ := strings.Cut(t.Message, "\n")
			fmt.Fprintf(b, " (annotated: %s)", escapeLine(first))
		}
		b.WriteString("\n")
	}
}

func renderReflog(b *strings.Builder, r *backends.ReflogResult) {
	if len(r.Entries) == 0 {
		b.WriteString("No reflog entries.")
	}
	for _, e := range r.Entries {
		fmt.Fprintf(b, "%s %s %s %s\n", quoteName(e.Selector), orNone(short(e.SHA)), escapeLine(e.Date), escapeLine(e.Action))
	}
	if r.Truncated {
		fmt.Fprintf(b, "(more entries: call again with skip=%d)", r.NextSkip)
	}
}

func renderStashes(b *strings.Builder, r *backends.StashesResult) {
	if len(r.Stashes) == 0 {
		b.WriteString("No stash entries.")
	}
	for _, s := range r.Stashes {
		fmt.Fprintf(b, "stash@{%d} %s %s\n", s.Index, orNone(short(s.SHA)), escapeLine(s.Message))
	}
}

func renderMerge(b *strings.Builder, r *backends.MergeResult) {
	branch := orText(r.Branch, "(detached HEAD)")
	switch {
	case stopped(r.Stopped):
		fmt.Fprintf(b, "The merge into %s stopped on conflicts; %s is still at %s.", branch, branch, orNone(short(r.Before)))
		renderStopped(b, r.Stopped)
	case r.UpToDate:
		fmt.Fprintf(b, "%s is already up to date: nothing to merge.", branch)
	case r.FastForward:
		fmt.Fprintf(b, "Fast-forwarded %s from %s to %s.", branch, orNone(short(r.Before)), orNone(short(r.After)))
	default:
		fmt.Fprintf(b, "Merged into %s: merge commit %s (was %s).", branch, orNone(short(r.After)), orNone(short(r.Before)))
	}
}

func renderRebase(b *strings.Builder, r *backends.RebaseResult) {
	branch := orText(r.Branch, "(detached HEAD)")
	switch {
	case stopped(r.Stopped):
		fmt.Fprintf(b, "The rebase of %s stopped on conflicts after replaying %d commit(s).", branch, r.Replayed)
		renderStopped(b, r.Stopped)
	case r.UpToDate:
		fmt.Fprintf(b, "%s is up to date: nothing to rebase.", branch)
	default:
		fmt.Fprintf(b, "Rebased %s: %d commit(s) replayed, now at %s (was %s).", branch, r.Replayed, orNone(short(r.After)), orNone(short(r.Before)))
	}
}

func renderCherryPick(b *strings.Builder, r *backends.CherryPickResult) {
	renderApplied(b, "cherry-pick", "Cherry-picked", r.Branch, r.Before, r.After, r.Created, r.Stopped)
}

func renderRevert(b *strings.Builder, r *backends.RevertResult) {
	renderApplied(b, "revert", "Reverted", r.Branch, r.Before, r.After, r.Created, r.Stopped)
}

// renderApplied is the text of a cherry-pick or a revert: the commits it
// created and, when it stopped, what is left.
func renderApplied(b *strings.Builder, what, done, branch, before, after string, created []string, s backends.Stopped) {
	on := orText(branch, "(detached HEAD)")
	if stopped(s) {
		fmt.Fprintf(b, "The %s on %s stopped on conflicts after %d new commit(s)", what, on, len(created))
		if len(created) > 0 {
			fmt.Fprintf(b, " (%s)", shorts(created))
		}
		b.WriteString(".")
		renderStopped(b, s)
		return
	}
	fmt.Fprintf(b, "%s onto %s: %d new commit(s) %s, now at %s (was %s).", done, on, len(created), shorts(created), orNone(short(after)), orNone(short(before)))
}

func renderReset(b *strings.Builder, r *backends.ResetResult) {
	fmt.Fprintf(b, "Reset %s from %s to %s (%s).", orText(r.Branch, "(detached HEAD)"), orNone(short(r.Before)), orNone(short(r.After)), quoteName(r.Mode))
	switch r.Mode {
	case "hard":
		b.WriteString(" Uncommitted changes were discarded.")
	case "soft":
		b.WriteString(" The changes of the commits left behind are staged.")
	default:
		b.WriteString(" The changes of the commits left behind are in the work tree, unstaged.")
	}
	if r.Before != "" && r.Before != r.After {
		fmt.Fprintf(b, " To undo: reset to %s.", orNone(short(r.Before)))
	}
}

func renderRestore(b *strings.Builder, r *backends.RestoreResult) {
	if len(r.Paths) == 0 {
		b.WriteString("Nothing was restored.")
		return
	}
	fmt.Fprintf(b, "Restored %s.", names(r.Paths))
}

func renderStash(b *strings.Builder, r *backends.StashResult) {
	sha := orNone(short(r.SHA))
	switch r.Action {
	case "push":
		fmt.Fprintf(b, "Set your changes aside as stash@{0} (%s); stash pop brings them back.", sha)
	case "pop":
		if stopped(r.Stopped) {
			fmt.Fprintf(b, "Applied stash entry %s with conflicts; the entry is kept (drop it once resolved).", sha)
		} else {
			fmt.Fprintf(b, "Applied and dropped stash entry %s.", sha)
		}
	case "apply":
		fmt.Fprintf(b, "Applied stash entry %s; it is kept.", sha)
	case "drop":
		fmt.Fprintf(b, "Dropped stash entry %s.", sha)
	default:
		fmt.Fprintf(b, "Stash %s: %s.", quoteName(r.Action), sha)
	}
	renderStopped(b, r.Stopped)
}

func renderTag(b *strings.Builder, r *backends.TagResult) {
	kind := "lightweight"
	if r.Annotated {
		kind = "annotated"
	}
	fmt.Fprintf(b, "Tagged %s as %s (%s). It reaches the remote only when you push with tags [%s].",
		orNone(short(r.Target)), quoteName(r.Name), kind, quoteName(r.Name))
}

func renderMarkResolved(b *strings.Builder, r *backends.MarkResolvedResult) {
	if len(r.Resolved) > 0 {
		fmt.Fprintf(b, "Marked resolved: %s.", names(r.Resolved))
	} else {
		b.WriteString("Nothing was marked resolved.")
	}
	if len(r.Remaining) == 0 {
		b.WriteString(" No conflicts left: call continue to finish what is in progress (status shows it), or abort.")
		return
	}
	fmt.Fprintf(b, " Still conflicted (%d):", len(r.Remaining))
	renderConflicts(b, r.Remaining)
}

func renderContinue(b *strings.Builder, r *backends.ContinueResult) {
	op, branch := quoteName(r.Operation), orText(r.Branch, "(detached HEAD)")
	if r.Done && !stopped(r.Stopped) {
		fmt.Fprintf(b, "Finished the %s on %s: now at %s.", op, branch, orNone(short(r.Head)))
		return
	}
	fmt.Fprintf(b, "The %s on %s went on and stopped on conflicts again (at %s).", op, branch, orNone(short(r.Head)))
	renderStopped(b, r.Stopped)
}

func renderAbort(b *strings.Builder, r *backends.AbortResult) {
	fmt.Fprintf(b, "Aborted the %s: %s is back at %s.", quoteName(r.Operation), orText(r.Branch, "HEAD"), orNone(short(r.Head)))
}

func renderForkWorkspace(b *strings.Builder, r *backends.ForkWorkspaceResult) {
	fmt.Fprintf(b, "Forked into workspace %s: branch %s at %s.", quoteName(r.Workspace), quoteName(r.Branch), orNone(short(r.Head)))
}
