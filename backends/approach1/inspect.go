package approach1

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Looking at history (show, blame, tags, reflog, stashes) and updating the
// remote-tracking branches (fetch). The reads run lock-free with
// GIT_OPTIONAL_LOCKS=0, like read.go's: every agent value is validated
// before the workspace is opened, a revision is resolved to a commit id
// once (rev-parse --verify after --end-of-options) and only that id is
// passed on, and paths go after "--" (literal pathspecs).

// maxRecordsOutput caps the output read for lists (tags, reflog, stashes,
// a page of blame).
const maxRecordsOutput = 16 << 20

// resolveCommit returns the commit rev names in the workspace ("" means
// HEAD), or not_found saying what to do.
func (e *Executor) resolveCommit(ctx context.Context, b sandbox.Binding, op backends.Op, rev string) (string, error) {
	name := rev
	if name == "" {
		name = "HEAD"
	}
	res, err := e.run(ctx, b, gitRun{op: op, read: true, noTree: true,
		args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", name + "^{commit}"}})
	if err != nil {
		return "", err
	}
	sha := strings.TrimSpace(string(res.Stdout))
	if notARepository(res) {
		return "", halfMade(b.Key.Name)
	}
	switch {
	case res.ExitCode == 0 && isObjectID(sha):
		return sha, nil
	case res.ExitCode != 0 && len(bytes.TrimSpace(res.Stderr)) > 0 && !bytes.Contains(res.Stderr, []byte("Needed a single revision")):
		return "", gitError(res, b.Root)
	case rev == "":
		if _, head, herr := e.head(ctx, b); herr == nil && head == "" {
			return "", backends.Errorf(backends.NotFound, "the workspace has no commits yet; commit first")
		}
	}
	return "", backends.Errorf(backends.NotFound, "revision %q does not name a commit in this workspace; use log, branches or tags to find one", name)
}

// commitInfo reads one commit's metadata in log's format.
func (e *Executor) commitInfo(ctx context.Context, b sandbox.Binding, op backends.Op, sha string) (backends.Commit, error) {
	args := []string{"log", "-z", gitcmd.LogFormat, "--max-count=1", "--end-of-options", sha, "--"}
	res, err := e.git(ctx, b, gitRun{op: op, args: args, read: true, noTree: true, maxOut: maxRecordsOutput})
	if err != nil {
		return backends.Commit{}, err
	}
	commits := gitcmd.ParseLog(res.Stdout)
	if len(commits) != 1 {
		return backends.Commit{}, backends.Errorf(backends.Internal, "reading commit %.12s gave %d commits", sha, len(commits))
	}
	return commits[0], nil
}

// treeEntry is one entry of a commit's tree (git ls-tree -l).
type treeEntry struct {
	mode, kind, object string
	size               int64
}

// entryAt returns path's entry in commit sha's tree, or not_found.
func (e *Executor) entryAt(ctx context.Context, b sandbox.Binding, op backends.Op, sha, path string) (treeEntry, error) {
	res, err := e.git(ctx, b, gitRun{op: op, read: true, noTree: true, maxOut: 1 << 20,
		args: []string{"ls-tree", "-z", "-l", "--full-tree", "--end-of-options", sha, "--", path}})
	if err != nil {
		return treeEntry{}, err
	}
	for rec := range bytes.SplitSeq(res.Stdout, []byte{0}) {
		meta, name, ok := strings.Cut(string(rec), "\t")
		f := strings.Fields(meta)
		if !ok || name != path || len(f) != 4 {
			continue
		}
		size, _ := strconv.ParseInt(f[3], 10, 64) // "-" for a tree or submodule
		return treeEntry{mode: f[0], kind: f[1], object: f[2], size: size}, nil
	}
	return treeEntry{}, backends.Errorf(backends.NotFound, "path %q does not exist at commit %.12s; use show without path to see which files the commit changed", path, sha)
}

// blobAt returns path's blob in commit sha, refusing directories and
// submodules.
func (e *Executor) blobAt(ctx context.Context, b sandbox.Binding, op backends.Op, sha, path string) (treeEntry, error) {
	ent, err := e.entryAt(ctx, b, op, sha, path)
	if err != nil {
		return ent, err
	}
	switch ent.kind {
	case "blob":
		return ent, nil
	case "tree":
		return ent, backends.Errorf(backends.InvalidArgument, "path %q is a directory at commit %.12s; name a file in it", path, sha)
	}
	return ent, backends.Errorf(backends.InvalidArgument, "path %q is a submodule at commit %.12s, not a file; gitgate does not read submodules", path, sha)
}

func (e *Executor) show(ctx context.Context, r *backends.ShowRequest) (*backends.ShowResult, error) {
	if r.Rev != "" {
		if err := validateReflogRev(r.Rev); err != nil {
			return nil, err
		}
	}
	var path string
	if r.Path != "" {
		p, err := gitcmd.ValidatePath(r.Path, false)
		if err != nil {
			return nil, err
		}
		path = p
	}
	offset, limit, err := e.page(r.Page, e.cfg.Limits.MaxOutputBytes)
	if err != nil {
		return nil, err
	}
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	sha, err := e.resolveCommit(ctx, w.Binding, backends.OpShow, r.Rev)
	if err != nil {
		return nil, err
	}
	c, err := e.commitInfo(ctx, w.Binding, backends.OpShow, sha)
	if err != nil {
		return nil, err
	}
	res := &backends.ShowResult{Commit: c}
	if path != "" {
		return e.showFile(ctx, w.Binding, sha, path, offset, limit, res)
	}
	// The commit's changes against its first parent (a root commit's
	// against the empty tree), streamed: the offset's bytes are skipped as
	// git writes them. Build adds --no-ext-diff --no-textconv.
	args := []string{"show", "--no-color", "--format=", "--diff-merges=first-parent", "--end-of-options", sha, "--"}
	out, err := e.git(ctx, w.Binding, gitRun{op: backends.OpShow, args: args, read: true, maxOut: limit + 1, skip: int64(offset)})
	if err != nil {
		return nil, err
	}
	text, trunc := window(out.Stdout, 0, limit, true)
	if trunc.Truncated {
		trunc.NextOffset += offset
	}
	res.Diff, res.Truncation = text, trunc
	return res, nil
}

// showFile fills res with a page of path as it is at commit sha, encoded
// as read_file encodes the work tree's files.
func (e *Executor) showFile(ctx context.Context, b sandbox.Binding, sha, path string, offset, limit int, res *backends.ShowResult) (*backends.ShowResult, error) {
	ent, err := e.blobAt(ctx, b, backends.OpShow, sha, path)
	if err != nil {
		return nil, err
	}
	res.Path, res.Encoding = path, "utf-8"
	if int64(offset) >= ent.size {
		return res, nil
	}
	out, err := e.git(ctx, b, gitRun{op: backends.OpShow, read: true, noTree: true, maxOut: limit, skip: int64(offset),
		args: []string{"cat-file", "blob", ent.object}})
	if err != nil {
		return nil, err
	}
	res.Content, res.Encoding, res.Truncation = textPage(out.Stdout, offset, ent.size)
	return res, nil
}

const (
	defaultBlameLines = 500
	maxBlameLines     = 500
	// binarySniff is how much of a file blame looks at for a NUL byte,
	// git's own test for binary content.
	binarySniff = 8000
)

var blameShort = regexp.MustCompile(`has only (\d+) lines?`)

func (e *Executor) blame(ctx context.Context, r *backends.BlameRequest) (*backends.BlameResult, error) {
	path, err := gitcmd.ValidatePath(r.Path, false)
	if err != nil {
		return nil, err
	}
	if r.Rev != "" {
		if err := validateReflogRev(r.Rev); err != nil {
			return nil, err
		}
	}
	start, limit := r.StartLine, r.Limit
	switch {
	case start < 0 || limit < 0:
		return nil, backends.Errorf(backends.InvalidArgument, "start_line and limit must not be negative")
	case start > 1<<30:
		return nil, backends.Errorf(backends.InvalidArgument, "start_line is too large")
	case start == 0:
		start = 1
	}
	switch {
	case limit == 0:
		limit = defaultBlameLines
	case limit > maxBlameLines:
		limit = maxBlameLines
	}
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	sha, err := e.resolveCommit(ctx, w.Binding, backends.OpBlame, r.Rev)
	if err != nil {
		return nil, err
	}
	ent, err := e.blobAt(ctx, w.Binding, backends.OpBlame, sha, path)
	if err != nil {
		return nil, err
	}
	if ent.mode == "120000" {
		return nil, backends.Errorf(backends.InvalidArgument, "path %q is a symbolic link at commit %.12s; blame the file it points to", path, sha)
	}
	head, err := e.git(ctx, w.Binding, gitRun{op: backends.OpBlame, read: true, noTree: true, maxOut: binarySniff,
		args: []string{"cat-file", "blob", ent.object}})
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(head.Stdout, 0) >= 0 {
		return nil, backends.Errorf(backends.InvalidArgument, "path %q is a binary file; blame works on text files (use show with path to read it, or log with paths for its history)", path)
	}
	res := &backends.BlameResult{Path: path, Lines: []backends.BlameLine{}}
	if ent.size == 0 {
		return res, nil
	}
	// One line more than the page tells whether more follow; git stops
	// at the file's end. blame honours textconv filters by default: not
	// here (as Build does for diff, log and show).
	args := []string{"blame", "--no-textconv", "--line-porcelain", "-L", strconv.Itoa(start) + ",+" + strconv.Itoa(limit+1), sha, "--", path}
	out, err := e.run(ctx, w.Binding, gitRun{op: backends.OpBlame, args: args, read: true, noTree: true, maxOut: maxRecordsOutput})
	if err != nil {
		return nil, err
	}
	if out.ExitCode != 0 {
		if m := blameShort.FindSubmatch(out.Stderr); m != nil {
			return nil, backends.Errorf(backends.InvalidArgument, "start_line %d is past the end of %s, which has %s lines at commit %.12s", start, path, m[1], sha)
		}
		return nil, gitError(out, w.Root)
	}
	lines := parseBlame(out.Stdout, out.StdoutTruncated)
	if len(lines) > limit {
		lines = lines[:limit]
		res.Truncated, res.NextLine = true, start+limit
	} else if out.StdoutTruncated && len(lines) > 0 {
		// Long lines filled the output cap: the page ends early.
		res.Truncated, res.NextLine = true, lines[len(lines)-1].Line+1
	} else if out.StdoutTruncated {
		return nil, backends.Errorf(backends.ResourceExhausted, "line %d of %s is too long to blame", start, path)
	}
	res.Lines = lines
	return res, nil
}

// parseBlame parses git blame --line-porcelain: for each line a header
// ("<sha> <orig> <final> [<count>]"), "key value" lines, then the line's
// content after a tab. A record cut by the output cap (truncated) is
// dropped.
func parseBlame(out []byte, truncated bool) []backends.BlameLine {
	var lines []backends.BlameLine
	var cur backends.BlameLine
	var authorTime int64
	var authorTZ string
	inRecord := false
	text := string(out)
	for len(text) > 0 {
		line, rest, complete := strings.Cut(text, "\n")
		text = rest
		if !complete && truncated {
			break
		}
		if content, ok := strings.CutPrefix(line, "\t"); ok && inRecord {
			cur.Content = strings.ToValidUTF8(content, "\uFFFD")
			cur.Date = blameDate(authorTime, authorTZ)
			lines = append(lines, cur)
			inRecord = false
			continue
		}
		if !inRecord {
			f := strings.Fields(line)
			if len(f) >= 3 && isObjectID(f[0]) {
				n, _ := strconv.Atoi(f[2])
				cur, authorTime, authorTZ, inRecord = backends.BlameLine{SHA: f[0], Line: n}, 0, "", true
			}
			continue
		}
		key, value, _ := strings.Cut(line, " ")
		switch key {
		case "author":
			cur.Author = strings.ToValidUTF8(value, "\uFFFD")
		case "author-time":
			authorTime, _ = strconv.ParseInt(value, 10, 64)
		case "author-tz":
			authorTZ = value
		case "summary":
			cur.Summary = strings.ToValidUTF8(value, "\uFFFD")
		}
	}
	return lines
}

// blameDate formats a git date (seconds, "+hhmm" zone) as RFC 3339.
func blameDate(sec int64, tz string) string {
	t := time.Unix(sec, 0).UTC()
	if len(tz) == 5 && (tz[0] == '+' || tz[0] == '-') {
		h, herr := strconv.Atoi(tz[1:3])
		m, merr := strconv.Atoi(tz[3:5])
		if herr == nil && merr == nil {
			off := h*3600 + m*60
			if tz[0] == '-' {
				off = -off
			}
			t = t.In(time.FixedZone(tz, off))
		}
	}
	return t.Format(time.RFC3339)
}

// tagsFormat lists a tag's name, type, object, what it points to once
// peeled (annotated tags) and its message, fields separated by US and
// records ended by RS.
const tagsFormat = "--format=%(refname)%1f%(objecttype)%1f%(objectname)%1f%(*objecttype)%1f%(*objectname)%1f%(contents)%1e"

func (e *Executor) tags(ctx context.Context, r *backends.TagsRequest) (*backends.TagsResult, error) {
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	res, err := e.git(ctx, w.Binding, gitRun{op: backends.OpTags, read: true, noTree: true, maxOut: maxRecordsOutput,
		args: []string{"for-each-ref", "--sort=refname", tagsFormat, "refs/tags/"}})
	if err != nil {
		return nil, err
	}
	if res.StdoutTruncated {
		return nil, backends.Errorf(backends.ResourceExhausted, "the workspace has more tags than gitgate lists at once")
	}
	out := &backends.TagsResult{Tags: []backends.Tag{}}
	for rec := range strings.SplitSeq(string(res.Stdout), "\x1e") {
		f := strings.SplitN(strings.TrimPrefix(rec, "\n"), "\x1f", 6)
		if len(f) != 6 {
			continue
		}
		name, ok := strings.CutPrefix(f[0], "refs/tags/")
		if !ok {
			continue
		}
		t := backends.Tag{Name: name, Target: f[2]}
		if f[1] == "tag" {
			t.Annotated = true
			t.Message = strings.TrimRight(strings.ToValidUTF8(f[5], "\uFFFD"), "\n")
			t.Target = f[4]
			if f[3] == "tag" { // a tag of a tag: peel it all the way
				peeled, err := e.git(ctx, w.Binding, gitRun{op: backends.OpTags, read: true, noTree: true,
					args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", "refs/tags/" + name + "^{}"}})
				if err != nil {
					return nil, err
				}
				t.Target = strings.TrimSpace(string(peeled.Stdout))
			}
		}
		out.Tags = append(out.Tags, t)
	}
	sort.Slice(out.Tags, func(i, j int) bool { return out.Tags[i].Name < out.Tags[j].Name })
	return out, nil
}

const (
	defaultReflogLimit = 20
	maxReflogLimit     = 200
)

func (e *Executor) reflog(ctx context.Context, r *backends.ReflogRequest) (*backends.ReflogResult, error) {
	limit := r.Limit
	switch {
	case limit < 0 || r.Skip < 0:
		return nil, backends.Errorf(backends.InvalidArgument, "limit and skip must not be negative")
	case r.Skip > 1<<30:
		return nil, backends.Errorf(backends.InvalidArgument, "skip is too large")
	case limit == 0:
		limit = defaultReflogLimit
	case limit > maxReflogLimit:
		limit = maxReflogLimit
	}
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	out := &backends.ReflogResult{Entries: []backends.ReflogEntry{}}
	if _, head, err := e.head(ctx, w.Binding); err != nil || head == "" {
		return out, err // no commit yet: HEAD has not moved
	}
	entries, err := e.walkReflog(ctx, w.Binding, backends.OpReflog, "HEAD", limit+1, r.Skip)
	if err != nil {
		return nil, err
	}
	for i, en := range entries {
		out.Entries = append(out.Entries, backends.ReflogEntry{
			Selector: "HEAD@{" + strconv.Itoa(r.Skip+i) + "}", SHA: en.sha, Action: en.subject, Date: en.date})
	}
	if len(out.Entries) > limit {
		out.Entries, out.Truncated, out.NextSkip = out.Entries[:limit], true, r.Skip+limit
	}
	return out, nil
}

// reflogEntry is one entry of a ref's reflog.
type reflogEntry struct{ sha, subject, date string }

// walkReflog returns up to max entries of ref's reflog, newest first,
// after skipping skip of them (max 0: all).
func (e *Executor) walkReflog(ctx context.Context, b sandbox.Binding, op backends.Op, ref string, max, skip int) ([]reflogEntry, error) {
	// With a date mode, %gd is "<ref>@{<date of the entry>}".
	args := []string{"log", "--walk-reflogs", "-z", "--date=iso-strict", "--format=%H%x1f%gd%x1f%gs", "--skip=" + strconv.Itoa(skip)}
	if max > 0 {
		args = append(args, "--max-count="+strconv.Itoa(max))
	}
	res, err := e.git(ctx, b, gitRun{op: op, read: true, noTree: true, maxOut: maxRecordsOutput,
		args: append(args, "--end-of-options", ref, "--")})
	if err != nil {
		return nil, err
	}
	var out []reflogEntry
	for rec := range strings.SplitSeq(string(res.Stdout), "\x00") {
		f := strings.SplitN(strings.TrimPrefix(rec, "\n"), "\x1f", 3)
		if len(f) != 3 {
			continue
		}
		date := f[1]
		if i := strings.Index(date, "@{"); i >= 0 {
			date = strings.TrimSuffix(date[i+2:], "}")
		}
		out = append(out, reflogEntry{sha: f[0], subject: strings.ToValidUTF8(f[2], "\uFFFD"), date: date})
	}
	if res.StdoutTruncated && len(out) > 0 {
		out = out[:len(out)-1] // the last record may be cut
	}
	return out, nil
}

func (e *Executor) stashes(ctx context.Context, r *backends.StashesRequest) (*backends.StashesResult, error) {
	w, err := e.openRead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	out := &backends.StashesResult{Stashes: []backends.StashEntry{}}
	if sha, err := e.refSHA(ctx, w.Binding, "refs/stash"); err != nil || sha == "" {
		return out, err
	}
	entries, err := e.walkReflog(ctx, w.Binding, backends.OpStashes, "refs/stash", 0, 0)
	if err != nil {
		return nil, err
	}
	for i, en := range entries {
		out.Stashes = append(out.Stashes, backends.StashEntry{Index: i, SHA: en.sha, Message: en.subject})
	}
	return out, nil
}

// trackingPrefix is where a fetch writes origin's branches.
const trackingPrefix = "refs/remotes/origin/"

// listRefs returns the refs under prefixes and their objects; symbolic
// refs (origin/HEAD) are left out.
func (e *Executor) listRefs(ctx context.Context, b sandbox.Binding, op backends.Op, prefixes ...string) (map[string]string, error) {
	args := append([]string{"for-each-ref", "--format=%(objectname) %(refname) %(symref)"}, prefixes...)
	res, err := e.git(ctx, b, gitRun{op: op, read: true, noTree: true, maxOut: maxRecordsOutput, args: args})
	if err != nil {
		return nil, err
	}
	if res.StdoutTruncated {
		return nil, backends.Errorf(backends.ResourceExhausted, "the workspace has more refs than gitgate reads at once")
	}
	refs := map[string]string{}
	for line := range strings.SplitSeq(string(res.Stdout), "\n") {
		if f := strings.Split(line, " "); len(f) == 3 && f[2] == "" {
			refs[f[1]] = f[0]
		}
	}
	return refs, nil
}

// trackingBranches is listRefs of origin's remote-tracking branches,
// origin/HEAD (a pointer, which fetch does not move) excepted.
func (e *Executor) trackingBranches(ctx context.Context, b sandbox.Binding, op backends.Op) (map[string]string, error) {
	refs, err := e.listRefs(ctx, b, op, trackingPrefix)
	delete(refs, trackingPrefix+"HEAD")
	return refs, err
}

// clobberedTag matches a tag fetch refused to move: the workspace's own
// tag of that name stays.
var clobberedTag = regexp.MustCompile(`^\s*! \[rejected\]\s+\S+\s+-> (\S+)\s+\(would clobber existing tag\)\s*$`)

// fetch brings origin's branches (those the workspace's fetch refspec
// names: all of them, or one for a single-branch clone) into
// refs/remotes/origin/*, pruning those the remote deleted when asked, and
// the remote's tags into refs/tags/* — never moving a tag the workspace
// already has (git refuses to clobber it; that refusal is reported as a
// notice, not a failure), and never pruning one (tags fetched with --tags
// are not pruned). Local branches, the index and the work tree are not
// touched. The transfer runs under the project's size limits; a fetch
// stopped by one leaves the refs as they were.
func (e *Executor) fetch(ctx context.Context, r *backends.FetchRequest) (*backends.FetchResult, error) {
	w, lease, remote, err := e.openForRemote(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer finish(ctx, w, lease)
	before, err := e.listRefs(ctx, w.Binding, backends.OpFetch, trackingPrefix, "refs/tags/")
	if err != nil {
		return nil, err
	}
	args := []string{"fetch", "--progress", "--tags", "--no-recurse-submodules"}
	if r.Prune {
		args = append(args, "--prune")
	}
	args = append(args, "origin")
	g := gitRun{op: backends.OpFetch, args: args, remote: remote,
		watch: &diskWatch{project: w.Key.Project, gitDir: w.GitDir()}}
	res, err := e.run(ctx, w.Binding, g)
	if hit, ok := asSizeLimit(err); ok {
		return nil, e.fetchStopped(ctx, w, before, hit, err)
	}
	if err != nil {
		return nil, err
	}
	kept, onlyTags := keptTags(res.Stderr)
	if res.ExitCode != 0 && !(res.ExitCode == 1 && onlyTags && len(kept) > 0) {
		return nil, gitError(res, w.Root)
	}
	after, err := e.trackingBranches(ctx, w.Binding, backends.OpFetch)
	if err != nil {
		return nil, err
	}
	e.record(ctx, w, func(*sandbox.Binding) {})
	out := &backends.FetchResult{Served: written(w), Updated: refUpdates(before, after)}
	if len(kept) > 0 {
		out.Notices = append(out.Notices, "the remote's tags "+strings.Join(quoteAll(kept), ", ")+
			" point elsewhere than your tags of the same names, which were kept (fetch never moves a tag you have)")
	}
	return out, nil
}

// keptTags returns the tags a fetch refused to clobber, and whether every
// refusal in its output is one of those.
func keptTags(stderr []byte) ([]string, bool) {
	var kept []string
	only := true
	for line := range strings.SplitSeq(strings.ReplaceAll(string(stderr), "\r", "\n"), "\n") {
		if m := clobberedTag.FindStringSubmatch(line); m != nil {
			kept = append(kept, m[1])
			continue
		}
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "! ") || strings.HasPrefix(t, "error:") || strings.HasPrefix(t, "fatal:") {
			only = false
		}
	}
	return kept, only
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strconv.Quote(n)
	}
	return out
}

// refUpdates compares origin's remote-tracking branches before (which may
// hold tags too) and after a fetch.
func refUpdates(before, after map[string]string) []backends.RefUpdate {
	updates := []backends.RefUpdate{}
	seen := map[string]bool{}
	add := func(ref string) {
		if seen[ref] || !strings.HasPrefix(ref, trackingPrefix) || ref == trackingPrefix+"HEAD" {
			return
		}
		seen[ref] = true
		if before[ref] != after[ref] {
			updates = append(updates, backends.RefUpdate{Ref: "origin/" + strings.TrimPrefix(ref, trackingPrefix), Before: before[ref], After: after[ref]})
		}
	}
	for ref := range before {
		add(ref)
	}
	for ref := range after {
		add(ref)
	}
	sort.Slice(updates, func(i, j int) bool { return updates[i].Ref < updates[j].Ref })
	return updates
}

// fetchStopped puts back the refs a fetch stopped at a size limit may
// have written (git writes them once the transfer is whole, so only a
// fetch that ended past a limit between two measures did) and removes its
// temporary objects.
func (e *Executor) fetchStopped(ctx context.Context, w *workspace, before map[string]string, hit *sizeLimitError, cause error) error {
	if errors.Is(cause, sandbox.ErrMayStillRun) {
		return limitError(hit, "gitgate could not confirm that git stopped, so the workspace was left as it is", cause)
	}
	rctx := context.WithoutCancel(ctx)
	rerr := e.removeTempObjects(rctx, w.SandboxID, w.GitDir())
	if rerr == nil {
		rerr = e.restoreRefs(rctx, w.Binding, before)
	}
	if rerr != nil {
		e.cfg.Logger.Warn("restoring the refs after a fetch stopped at a size limit failed", "workspace", w.Key.String(), "err", rerr)
		return limitError(hit, "the remote-tracking branches could not be fully restored ("+backends.MessageOf(rerr)+")", cause)
	}
	return limitError(hit, "the remote-tracking branches and tags are unchanged", cause)
}

// restoreRefs sets origin's remote-tracking branches and the tags back to
// before, in one transaction.
func (e *Executor) restoreRefs(ctx context.Context, b sandbox.Binding, before map[string]string) error {
	now, err := e.listRefs(ctx, b, backends.OpFetch, trackingPrefix, "refs/tags/")
	if err != nil {
		return err
	}
	var stdin bytes.Buffer
	for ref, sha := range now {
		switch old, ok := before[ref]; {
		case !ok:
			stdin.WriteString("delete " + ref + " " + sha + "\n")
		case old != sha:
			stdin.WriteString("update " + ref + " " + old + " " + sha + "\n")
		}
	}
	for ref, sha := range before {
		if _, ok := now[ref]; !ok {
			stdin.WriteString("create " + ref + " " + sha + "\n")
		}
	}
	if stdin.Len() == 0 {
		return nil
	}
	_, err = e.git(ctx, b, gitRun{op: backends.OpFetch, noTree: true, stdin: stdin.Bytes(), args: []string{"update-ref", "--stdin"}})
	return err
}
