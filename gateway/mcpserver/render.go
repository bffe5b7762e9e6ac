package mcpserver

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/gitgate/gitgate/backends"
)

// readable is the readable text beside op's result: what a person (or a
// model without structured-output support) needs to know, as separate
// text items. The result's notices (backends.Served.Notices) come first,
// as one item of their own, because the agent must act on them; then the
// body; then, for file content and diffs, an item with paging hints, so
// that the body item of read_file is the file's bytes and nothing else.
// Backend facts (which backend served the call, how long it took, whether
// it fell back) are not text: they are in the structured content and in
// _meta. Every string from a repository or a backend is escaped (see
// escape.go).
func readable(op backends.Op, res backends.Result) []string {
	var items []string
	if notices := res.GetServed().Notices; len(notices) > 0 {
		var b strings.Builder
		for i, n := range notices {
			if i > 0 {
				b.WriteString("\n")
			}
			b.WriteString("NOTICE: " + escapeText(n))
		}
		items = append(items, b.String())
	}
	body, hints := renderBody(op, res)
	items = append(items, body)
	if hints != "" {
		items = append(items, hints)
	}
	return items
}

// renderer returns the body of a result's readable text and, for content
// that must stay pure (files and diffs), the hints that follow it.
type renderer struct {
	result reflect.Type // the result type it renders
	render func(backends.Result) (body, hints string)
}

// renderers are the readable texts of results, one for each operation of
// the table (backends.Ops); TestEveryOperationHasATool walks the table
// against them.
var renderers = map[backends.Op]renderer{
	backends.OpClone: text(func(b *strings.Builder, r *backends.CloneResult) {
		fmt.Fprintf(b, "Cloned into workspace %s: branch %s at %s.", quoteName(r.Workspace), orNone(r.Branch), orNone(short(r.Head)))
	}),
	backends.OpPull:     text(renderPull),
	backends.OpPush:     text(renderPush),
	backends.OpStatus:   text(renderStatus),
	backends.OpDiff:     paged(renderDiff),
	backends.OpLog:      text(renderLog),
	backends.OpBranches: text(renderBranches),
	backends.OpCheckout: text(func(b *strings.Builder, r *backends.CheckoutResult) {
		fmt.Fprintf(b, "On branch %s at %s%s.", quoteName(r.Branch), orNone(short(r.Head)), map[bool]string{true: " (created)"}[r.Created])
	}),
	backends.OpCommit: text(func(b *strings.Builder, r *backends.CommitResult) {
		fmt.Fprintf(b, "Committed %s on %s.", quoteName(r.SHA), orNone(r.Branch))
	}),
	backends.OpReadFile: paged(renderReadFile),
	backends.OpWriteFile: text(func(b *strings.Builder, r *backends.WriteFileResult) {
		fmt.Fprintf(b, "Wrote %s (%d bytes%s).", quoteName(r.Path), r.Size, map[bool]string{true: ", new file"}[r.Created])
	}),
	backends.OpListFiles: text(renderListFiles),
	backends.OpDeleteFile: text(func(b *strings.Builder, r *backends.DeleteFileResult) {
		fmt.Fprintf(b, "%s: %s.", quoteName(r.Path), map[bool]string{true: "deleted", false: "did not exist"}[r.Deleted])
	}),
	backends.OpDeleteBranch:   text(renderDeleteBranch),
	backends.OpListWorkspaces: text(renderListWorkspaces),
	backends.OpReleaseWorkspace: text(func(b *strings.Builder, r *backends.ReleaseWorkspaceResult) {
		fmt.Fprintf(b, "Released workspace %s.", quoteName(r.Workspace))
	}),
	// The operations of issue 16 (render_gitops.go).
	backends.OpFetch:         text(renderFetch),
	backends.OpShow:          paged(renderShow),
	backends.OpBlame:         text(renderBlame),
	backends.OpTags:          text(renderTags),
	backends.OpReflog:        text(renderReflog),
	backends.OpStashes:       text(renderStashes),
	backends.OpMerge:         text(renderMerge),
	backends.OpRebase:        text(renderRebase),
	backends.OpCherryPick:    text(renderCherryPick),
	backends.OpRevert:        text(renderRevert),
	backends.OpReset:         text(renderReset),
	backends.OpRestore:       text(renderRestore),
	backends.OpStash:         text(renderStash),
	backends.OpTag:           text(renderTag),
	backends.OpMarkResolved:  text(renderMarkResolved),
	backends.OpContinue:      text(renderContinue),
	backends.OpAbort:         text(renderAbort),
	backends.OpForkWorkspace: text(renderForkWorkspace),
}

// renderBody returns the body of op's readable text and its hints, both
// empty for an operation without a renderer or a result of another type.
func renderBody(op backends.Op, res backends.Result) (body, hints string) {
	r, ok := renderers[op]
	if !ok {
		return "", ""
	}
	return r.render(res)
}

// text makes a renderer of a body without hints.
func text[R backends.Result](f func(*strings.Builder, R)) renderer {
	return paged(func(r R) (string, string) {
		var b strings.Builder
		f(&b, r)
		return b.String(), ""
	})
}

// paged makes a renderer of a body with hints.
func paged[R backends.Result](f func(R) (body, hints string)) renderer {
	return renderer{result: reflect.TypeFor[R](), render: func(res backends.Result) (string, string) {
		r, ok := res.(R)
		if !ok {
			return "", ""
		}
		return f(r)
	}}
}

// renderDiff returns the diff (escaped, see escapeText) and its paging
// hint.
func renderDiff(r *backends.DiffResult) (body, hints string) {
	if r.Diff == "" {
		return "No differences.", more(r.Truncation)
	}
	return escapeText(r.Diff), more(r.Truncation)
}

// renderReadFile returns the file's content (escaped, see escapeText) and
// the encoding and paging hints as a separate text.
func renderReadFile(r *backends.ReadFileResult) (body, hints string) {
	var h []string
	if r.Encoding != "utf-8" {
		h = append(h, fmt.Sprintf("(%s-encoded, %d bytes in all)", quoteName(r.Encoding), r.Size))
	}
	if m := more(r.Truncation); m != "" {
		h = append(h, m)
	}
	return escapeText(r.Content), strings.Join(h, "\n")
}

func renderListFiles(b *strings.Builder, r *backends.ListFilesResult) {
	for _, e := range r.Entries {
		fmt.Fprintf(b, "%s\t%s\n", quoteName(e.Type), quoteName(e.Path))
	}
	if len(r.Entries) == 0 {
		b.WriteString("No files.")
	}
	if m := more(r.Truncation); m != "" {
		b.WriteString("\n" + m)
	}
}

func renderListWorkspaces(b *strings.Builder, r *backends.ListWorkspacesResult) {
	for _, w := range r.Workspaces {
		fmt.Fprintf(b, "%s\t%s\tlast used %s\n", quoteName(w.Name), quoteName(w.URL), quoteName(w.LastUsed))
	}
	if len(r.Workspaces) == 0 {
		b.WriteString("No workspaces.")
	}
}

func renderPull(b *strings.Builder, r *backends.PullResult) {
	branch, upstream := quoteName(r.Branch), quoteName(r.Upstream)
	switch {
	case stopped(r.Stopped):
		fmt.Fprintf(b, "Pulled %s, but merging it into %s stopped on conflicts; %s is unchanged (%s).", upstream, branch, branch, orNone(short(r.Before)))
		renderStopped(b, r.Stopped)
	case !r.Updated:
		fmt.Fprintf(b, "%s is already up to date with %s.", branch, upstream)
	case r.Merged:
		fmt.Fprintf(b, "Merged %s into %s: now at %s.", upstream, branch, orNone(short(r.After)))
	default:
		fmt.Fprintf(b, "Fast-forwarded %s from %s to %s.", branch, orNone(short(r.Before)), orNone(short(r.After)))
	}
}

func renderPush(b *strings.Builder, r *backends.PushResult) {
	branch := quoteName(r.Branch)
	switch {
	case r.UpToDate:
		fmt.Fprintf(b, "%s is already up to date on the remote (%s).", branch, orNone(short(r.Head)))
	case r.Created:
		fmt.Fprintf(b, "Pushed new branch %s (%s).", branch, orNone(short(r.Head)))
	default:
		fmt.Fprintf(b, "Pushed %s (%s).", branch, orNone(short(r.Head)))
	}
	if len(r.Tags) > 0 {
		fmt.Fprintf(b, " Tags on the remote: %s.", names(r.Tags))
	}
}

func renderStatus(b *strings.Builder, r *backends.StatusResult) {
	fmt.Fprintf(b, "On branch %s at %s", orText(r.Branch, "(detached)"), orNone(short(r.Head)))
	if r.Upstream != "" {
		fmt.Fprintf(b, ", tracking %s (ahead %d, behind %d)", quoteName(r.Upstream), r.Ahead, r.Behind)
	}
	b.WriteString(".\n")
	if r.Clean {
		b.WriteString("Nothing to commit, working tree clean.")
	}
	for _, e := range r.Entries {
		fmt.Fprintf(b, "%s%s %s", quoteName(e.Staged), quoteName(e.Unstaged), quoteName(e.Path))
		if e.OrigPath != "" {
			fmt.Fprintf(b, " (from %s)", quoteName(e.OrigPath))
		}
		b.WriteString("\n")
	}
	renderStopped(b, backends.Stopped{InProgress: r.InProgress, Conflicts: r.Conflicts})
}

func renderLog(b *strings.Builder, r *backends.LogResult) {
	for _, c := range r.Commits {
		fmt.Fprintf(b, "%s %s <%s> %s\n    %s\n", orNone(short(c.SHA)), escapeLine(c.AuthorName), escapeLine(c.AuthorEmail),
			escapeLine(c.AuthorDate), escapeLine(c.Subject))
	}
	if len(r.Commits) == 0 {
		b.WriteString("No commits.")
	}
	if r.Truncated {
		fmt.Fprintf(b, "(more commits: call again with skip=%d)", r.NextSkip)
	}
}

func renderBranches(b *strings.Builder, r *backends.BranchesResult) {
	for _, br := range r.Branches {
		mark := " "
		if br.Current {
			mark = "*"
		}
		fmt.Fprintf(b, "%s %s %s", mark, quoteName(br.Name), orNone(short(br.Head)))
		if br.Upstream != "" {
			fmt.Fprintf(b, " [%s]", quoteName(br.Upstream))
		}
		b.WriteString("\n")
	}
}

// more is the paging hint of a cut output, "" for a whole one.
func more(t backends.Truncation) string {
	if !t.Truncated {
		return ""
	}
	return fmt.Sprintf("(truncated: call again with offset=%d for more)", t.NextOffset)
}

// short is a commit id shortened to 12 bytes (not yet quoted: pass it to
// orNone).
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// orNone is s as a name, or "(none)" for "".
func orNone(s string) string { return orText(s, "(none)") }

// orText is s as a name, or alt for "".
func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return quoteName(s)
}

// renderDeleteBranch says what was deleted where, and the record that
// restores the remote's branch.
func renderDeleteBranch(b *strings.Builder, r *backends.DeleteBranchResult) {
	var done []string
	if r.Local {
		done = append(done, "locally (it was at "+orNone(short(r.Head))+")")
	}
	if r.Remote {
		done = append(done, "on the remote (restore record "+quoteName(r.RestoreID)+": an operator restores it with gitgate branches restore)")
	}
	if len(done) == 0 {
		fmt.Fprintf(b, "Branch %s: nothing was deleted.", quoteName(r.Branch))
		return
	}
	fmt.Fprintf(b, "Deleted branch %s %s.", quoteName(r.Branch), strings.Join(done, " and "))
	if r.Local && !r.Remote {
		b.WriteString(" The remote was not changed.")
	}
}
