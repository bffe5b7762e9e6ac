package mcpserver

import (
	"fmt"
	"strings"

	"github.com/gitgate/gitgate/backends"
)

// render is the readable text beside a result's structured content: what a
// person (or a model without structured-output support) needs to know. The
// result's notices (backends.Served.Notices) come first.
func render(res backends.Result) string {
	var b strings.Builder
	for _, n := range res.GetServed().Notices {
		fmt.Fprintf(&b, "NOTICE: %s\n\n", n)
	}
	renderBody(&b, res)
	fmt.Fprintf(&b, "\n[served by %s in %d ms]", res.GetServed().Backend, res.GetServed().DurationMS)
	return b.String()
}

func renderBody(b *strings.Builder, res backends.Result) {
	switch r := res.(type) {
	case *backends.CloneResult:
		fmt.Fprintf(b, "Cloned into workspace %s: branch %s at %s.", r.Workspace, orNone(r.Branch), orNone(short(r.Head)))
	case *backends.PullResult:
		renderPull(b, r)
	case *backends.PushResult:
		renderPush(b, r)
	case *backends.StatusResult:
		renderStatus(b, r)
	case *backends.DiffResult:
		b.WriteString(orText(r.Diff, "No differences."))
		more(b, r.Truncation)
	case *backends.LogResult:
		renderLog(b, r)
	case *backends.BranchesResult:
		renderBranches(b, r)
	case *backends.CheckoutResult:
		fmt.Fprintf(b, "On branch %s at %s%s.", r.Branch, orNone(short(r.Head)), map[bool]string{true: " (created)"}[r.Created])
	case *backends.CommitResult:
		fmt.Fprintf(b, "Committed %s on %s.", r.SHA, orNone(r.Branch))
	default:
		renderFiles(b, res)
	}
}

func renderFiles(b *strings.Builder, res backends.Result) {
	switch r := res.(type) {
	case *backends.ReadFileResult:
		b.WriteString(r.Content)
		if r.Encoding != "utf-8" {
			fmt.Fprintf(b, "\n(%s-encoded, %d bytes in all)", r.Encoding, r.Size)
		}
		more(b, r.Truncation)
	case *backends.WriteFileResult:
		fmt.Fprintf(b, "Wrote %s (%d bytes%s).", r.Path, r.Size, map[bool]string{true: ", new file"}[r.Created])
	case *backends.ListFilesResult:
		for _, e := range r.Entries {
			fmt.Fprintf(b, "%s\t%s\n", e.Type, e.Path)
		}
		more(b, r.Truncation)
	case *backends.DeleteFileResult:
		fmt.Fprintf(b, "%s: %s.", r.Path, map[bool]string{true: "deleted", false: "did not exist"}[r.Deleted])
	case *backends.ListWorkspacesResult:
		for _, w := range r.Workspaces {
			fmt.Fprintf(b, "%s\t%s\tlast used %s\n", w.Name, w.URL, w.LastUsed)
		}
		if len(r.Workspaces) == 0 {
			b.WriteString("No workspaces.")
		}
	case *backends.ReleaseWorkspaceResult:
		fmt.Fprintf(b, "Released workspace %s.", r.Workspace)
	}
}

func renderPull(b *strings.Builder, r *backends.PullResult) {
	switch {
	case !r.Updated:
		fmt.Fprintf(b, "%s is already up to date with %s.", r.Branch, r.Upstream)
	case r.Merged:
		fmt.Fprintf(b, "Merged %s into %s: now at %s.", r.Upstream, r.Branch, short(r.After))
	default:
		fmt.Fprintf(b, "Fast-forwarded %s from %s to %s.", r.Branch, orNone(short(r.Before)), short(r.After))
	}
}

func renderPush(b *strings.Builder, r *backends.PushResult) {
	switch {
	case r.UpToDate:
		fmt.Fprintf(b, "%s is already up to date on the remote (%s).", r.Branch, short(r.Head))
	case r.Created:
		fmt.Fprintf(b, "Pushed new branch %s (%s).", r.Branch, short(r.Head))
	default:
		fmt.Fprintf(b, "Pushed %s (%s).", r.Branch, short(r.Head))
	}
}

func renderStatus(b *strings.Builder, r *backends.StatusResult) {
	fmt.Fprintf(b, "On branch %s at %s", orText(r.Branch, "(detached)"), orNone(short(r.Head)))
	if r.Upstream != "" {
		fmt.Fprintf(b, ", tracking %s (ahead %d, behind %d)", r.Upstream, r.Ahead, r.Behind)
	}
	b.WriteString(".\n")
	if r.Clean {
		b.WriteString("Nothing to commit, working tree clean.")
	}
	for _, e := range r.Entries {
		fmt.Fprintf(b, "%s%s %s", e.Staged, e.Unstaged, e.Path)
		if e.OrigPath != "" {
			fmt.Fprintf(b, " (from %s)", e.OrigPath)
		}
		b.WriteString("\n")
	}
}

func renderLog(b *strings.Builder, r *backends.LogResult) {
	for _, c := range r.Commits {
		fmt.Fprintf(b, "%s %s <%s> %s\n    %s\n", short(c.SHA), c.AuthorName, c.AuthorEmail, c.AuthorDate, c.Subject)
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
		fmt.Fprintf(b, "%s %s %s", mark, br.Name, short(br.Head))
		if br.Upstream != "" {
			fmt.Fprintf(b, " [%s]", br.Upstream)
		}
		b.WriteString("\n")
	}
}

func more(b *strings.Builder, t backends.Truncation) {
	if t.Truncated {
		fmt.Fprintf(b, "\n(truncated: call again with offset=%d for more)", t.NextOffset)
	}
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func orNone(s string) string { return orText(s, "(none)") }

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
