package canary

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

func TestCompare(t *testing.T) {
	a := &backends.StatusResult{Served: backends.Served{Backend: "approach1", DurationMS: 3}, Branch: "main", Head: "abc",
		Entries: []backends.StatusEntry{{Path: "x", Staged: ".", Unstaged: "M"}}}
	b := &backends.StatusResult{Served: backends.Served{Backend: "approach2", DurationMS: 9, FellBack: true}, Branch: "main", Head: "abc",
		Entries: []backends.StatusEntry{{Path: "x", Staged: ".", Unstaged: "M"}}}
	if d, err := Compare(a, b); err != nil || d != "" {
		t.Fatalf("results differing only in who served and how fast: %q %v", d, err)
	}
	b.Entries[0].Unstaged = "D"
	b.Ahead = 2
	d, err := Compare(a, b)
	if err != nil || d != "ahead: primary 0 / shadow 2\nentries[0].unstaged: primary \"M\" / shadow \"D\"" {
		t.Fatalf("diff %q %v", d, err)
	}
	w1 := &backends.ListWorkspacesResult{Workspaces: []backends.WorkspaceInfo{{Name: "w", LastUsed: "2026-01-01T00:00:00Z"}}}
	w2 := &backends.ListWorkspacesResult{Workspaces: []backends.WorkspaceInfo{{Name: "w", LastUsed: "2026-01-02T00:00:00Z"}}}
	if d, _ := Compare(w1, w2); d != "" {
		t.Fatalf("last_used is volatile: %q", d)
	}
	many1, many2 := &backends.LogResult{}, &backends.LogResult{}
	for i := range 30 {
		many1.Commits = append(many1.Commits, backends.Commit{SHA: "a", Subject: "s"})
		many2.Commits = append(many2.Commits, backends.Commit{SHA: "b", Subject: "s"})
		_ = i
	}
	if d, _ := Compare(many1, many2); strings.Count(d, "\n") != maxDiffLines || !strings.Contains(d, "10 more differences") {
		t.Fatalf("long diff not capped: %d lines", strings.Count(d, "\n"))
	}
}
