package gitcmd

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/backends"
)

// StatusArgs is the status command: porcelain v2 with branch headers,
// NUL-separated, untracked files listed individually.
var StatusArgs = []string{"status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", "--ignore-submodules=all"}

// ParseStatus parses the output of StatusArgs.
func ParseStatus(out []byte) backends.StatusResult {
	res := backends.StatusResult{Entries: []backends.StatusEntry{}}
	fields := bytes.Split(out, []byte{0})
	for i := 0; i < len(fields); i++ {
		rec := string(fields[i])
		if rec == "" {
			continue
		}
		if strings.HasPrefix(rec, "# ") {
			parseBranchHeader(&res, rec[2:])
			continue
		}
		entry, takesNext := parseStatusEntry(rec)
		if takesNext && i+1 < len(fields) {
			i++
			entry.OrigPath = string(fields[i])
		}
		if entry.Path != "" {
			res.Entries = append(res.Entries, entry)
		}
	}
	res.Clean = len(res.Entries) == 0
	return res
}

func parseBranchHeader(res *backends.StatusResult, h string) {
	key, val, _ := strings.Cut(h, " ")
	switch key {
	case "branch.oid":
		if val != "(initial)" {
			res.Head = val
		}
	case "branch.head":
		if val != "(detached)" {
			res.Branch = val
		}
	case "branch.upstream":
		res.Upstream = val
	case "branch.ab":
		a, b, _ := strings.Cut(val, " ")
		res.Ahead, _ = strconv.Atoi(strings.TrimPrefix(a, "+"))
		res.Behind, _ = strconv.Atoi(strings.TrimPrefix(b, "-"))
	}
}

// parseStatusEntry parses one record; takesNext reports a rename/copy record
// whose original path is the next NUL-separated field.
func parseStatusEntry(rec string) (e backends.StatusEntry, takesNext bool) {
	if len(rec) < 2 {
		return e, false // a record cut by the output cap
	}
	switch rec[0] {
	case '?':
		return backends.StatusEntry{Path: rec[2:], Staged: ".", Unstaged: "?"}, false
	case '1', '2', 'u':
		n := map[byte]int{'1': 9, '2': 10, 'u': 11}[rec[0]]
		parts := strings.SplitN(rec, " ", n)
		if len(parts) < n || len(parts[1]) != 2 {
			return e, false
		}
		e = backends.StatusEntry{Path: parts[n-1], Staged: parts[1][:1], Unstaged: parts[1][1:]}
		return e, rec[0] == '2'
	}
	return e, false
}

// LogFormat is the --format of log commands parsed by ParseLog; use with -z.
const LogFormat = "--format=%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%cn <%ce>%x1f%s%x1f%b"

// ParseLog parses "git log -z" output in LogFormat.
func ParseLog(out []byte) []backends.Commit {
	commits := []backends.Commit{}
	for _, rec := range bytes.Split(out, []byte{0}) {
		f := strings.SplitN(strings.TrimPrefix(string(rec), "\n"), "\x1f", 8)
		if len(f) < 8 {
			continue
		}
		parents := strings.Fields(f[1])
		if parents == nil {
			parents = []string{}
		}
		commits = append(commits, backends.Commit{
			SHA: f[0], Parents: parents, AuthorName: f[2], AuthorEmail: f[3], AuthorDate: f[4],
			Committer: f[5], Subject: f[6], Body: strings.TrimRight(f[7], "\n"),
		})
	}
	return commits
}

// BranchesFormat is the for-each-ref --format parsed by ParseBranches.
const BranchesFormat = "--format=%(HEAD)%00%(refname)%00%(objectname)%00%(upstream:short)"

// ParseBranches parses for-each-ref output in BranchesFormat.
func ParseBranches(out []byte) backends.BranchesResult {
	res := backends.BranchesResult{Branches: []backends.Branch{}}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\x00")
		if len(f) != 4 || (strings.HasPrefix(f[1], "refs/remotes/") && strings.HasSuffix(f[1], "/HEAD")) {
			continue // origin/HEAD is a pointer, not a branch
		}
		b := backends.Branch{Head: f[2], Upstream: f[3], Current: f[0] == "*"}
		if name, ok := strings.CutPrefix(f[1], "refs/heads/"); ok {
			b.Name = name
		} else {
			b.Name, b.Remote = strings.TrimPrefix(f[1], "refs/remotes/"), true
		}
		if b.Current {
			res.Current = b.Name
		}
		res.Branches = append(res.Branches, b)
	}
	return res
}

// PushStatus is one ref line of "git push --porcelain".
type PushStatus struct {
	Flag    byte   // ' ' fast-forward, '+' forced, '-' deleted, '*' new, '!' rejected, '=' up to date
	Ref     string // remote ref
	Summary string
}

// ParsePush returns the ref lines of "git push --porcelain" output.
func ParsePush(out []byte) []PushStatus {
	var res []PushStatus
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 || len(f[0]) != 1 {
			continue
		}
		_, to, _ := strings.Cut(f[1], ":")
		res = append(res, PushStatus{Flag: f[0][0], Ref: to, Summary: f[2]})
	}
	return res
}
