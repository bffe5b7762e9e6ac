package approach1

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Size limits on what transfers bring into a sandbox.
//
// A clone, pull or fetch runs under two limits of its project: the
// repository limit (the workspace's git directory, all of it) and the
// sandbox limit (the disk use of the whole sandbox: every workspace of the
// owner). Both are measures of one path each (the sandbox's root, the git
// directory) in which a file hard-linked several times counts once: a
// fork's objects, hard links to its source's, add nothing to the sandbox's
// use, and count in full in the fork's own repository. They are enforced
// while the command runs, two ways:
//
//   - a watcher measures the disk use every DiskPollInterval (one round
//     trip on E2B, only while a transfer runs) and stops the command when
//     it is past a limit;
//   - the command runs with a file-size limit (RLIMIT_FSIZE) of the room
//     left, so that no single file — a pack arriving faster than the
//     watcher measures, a huge blob checked out — can outgrow it between
//     two measures.
//
// A clone transfers first (git clone --no-checkout, bounded by both
// limits) and checks the work tree out afterwards (bounded by the sandbox
// limit), so that a pack is held to the repository limit and a work-tree
// file to the room left in the sandbox. A pull does both in one git
// command, bounded by the room left in the sandbox and watched against
// both limits.

// diskWatch asks exec to run a git command under its project's size
// limits.
type diskWatch struct {
	project string
	// gitDir is the workspace's git directory, held to the repository
	// limit; "" for a check-out, held to the sandbox limit only.
	gitDir string
	// writesTree says that the command writes work-tree files too (a
	// pull): its file-size limit is then the room left in the sandbox,
	// not in the repository.
	writesTree bool
}

// sizeLimitError is a transfer stopped at a size limit.
type sizeLimitError struct {
	repo  bool  // the repository limit, else the sandbox limit
	limit int64 // bytes
	used  int64 // bytes measured, 0 if unknown (a file-size limit fired)
}

func (e *sizeLimitError) Error() string {
	if e.repo {
		return fmt.Sprintf("the repository is larger than the project's repository size limit of %s, so the transfer was stopped", sizeText(e.limit))
	}
	return fmt.Sprintf("the sandbox's disk use would pass the project's sandbox disk limit of %s, so the transfer was stopped; release workspaces you no longer need", sizeText(e.limit))
}

// limitError is err as the error an agent sees: resource_exhausted, with
// what happened to the workspace (outcome) in the same sentence. cause,
// if any, is kept (sandbox.ErrMayStillRun matters to the callers).
func limitError(hit *sizeLimitError, outcome string, cause error) error {
	return &backends.Error{Category: backends.ResourceExhausted, Message: hit.Error() + "; " + outcome, Err: errors.Join(hit, cause)}
}

// asSizeLimit returns the size limit that stopped err's command, if one
// did.
func asSizeLimit(err error) (*sizeLimitError, bool) {
	var hit *sizeLimitError
	ok := errors.As(err, &hit)
	return hit, ok
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	}
	return fmt.Sprintf("%d bytes", n)
}

// sizeLimits returns the project's repository and sandbox limits in
// bytes, 0 for none.
func (e *Executor) sizeLimits(project string) (repo, box int64) {
	repo, box = e.cfg.Limits.MaxRepoBytes, e.cfg.Limits.MaxSandboxBytes
	if p, ok := e.cfg.Projects.Project(project); ok {
		if p.MaxRepoBytes != 0 {
			repo = p.MaxRepoBytes
		}
		if p.MaxSandboxBytes != 0 {
			box = p.MaxSandboxBytes
		}
	}
	return max(repo, 0), max(box, 0)
}

// usage is one measure of a sandbox's disk use.
type usage struct{ box, repo int64 }

// over returns the limit u is past, nil if none. reached counts being at
// a limit as past it: after a failed command, a use that reached a limit
// is what the file-size limit (the room left) stopped.
func over(u usage, repoMax, boxMax int64, watchRepo, reached bool) *sizeLimitError {
	var slack int64
	if reached {
		slack = 1
	}
	switch {
	case watchRepo && repoMax > 0 && u.repo+slack > repoMax:
		return &sizeLimitError{repo: true, limit: repoMax, used: u.repo}
	case boxMax > 0 && u.box+slack > boxMax:
		return &sizeLimitError{limit: boxMax, used: u.box}
	}
	return nil
}

// execWatched runs one git command (call) under the size limits of w: it
// refuses to start when the sandbox is already full, sets the file-size
// limit, stops the command when a measure finds it past a limit, and
// reports a failure the limits caused as a *sizeLimitError (joined with
// the provider's error, if any). The measures before and after the
// command are the provider's, done in the command's round trip
// (sandbox.Around.Disk, which also refuses and sets the file-size limit);
// those while it runs are calls of their own (DiskUsage).
func (e *Executor) execWatched(ctx context.Context, sandboxID, root string, w *diskWatch, req *sandbox.ExecRequest,
	call func(context.Context) (sandbox.ExecResult, error)) (sandbox.ExecResult, error) {
	du, ok := e.cfg.Sandboxes.Provider().(sandbox.DiskUser)
	repoMax, boxMax := e.sizeLimits(w.project)
	watchRepo := w.gitDir != "" && repoMax > 0
	if !ok || (!watchRepo && boxMax == 0) {
		return call(ctx)
	}
	paths := []string{root}
	req.Around.Disk = []sandbox.DiskLimit{{Path: root, Max: boxMax, CapsFiles: boxMax > 0}}
	if watchRepo {
		paths = append(paths, w.gitDir)
		req.Around.Disk = append(req.Around.Disk, sandbox.DiskLimit{Path: w.gitDir, Max: repoMax, CapsFiles: !w.writesTree})
	}
	measured := func(n []int64) usage {
		u := usage{box: n[0]}
		if watchRepo {
			u.repo = n[1]
		}
		return u
	}
	measure := func(ctx context.Context) (usage, error) {
		n, err := du.DiskUsage(ctx, sandboxID, paths)
		if err != nil {
			return usage{}, e.gone(ctx, sandboxID, err)
		}
		return measured(n), nil
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(e.cfg.Limits.DiskPollInterval)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			u, err := measure(wctx)
			if err != nil {
				continue // the next measure, or the command's own end, tells
			}
			if hit := over(u, repoMax, boxMax, watchRepo, false); hit != nil {
				cancel(hit)
				return
			}
		}
	}()
	res, err := call(wctx)
	cause := context.Cause(wctx)
	cancel(errTransferDone)
	<-stopped
	var hit *sizeLimitError
	if errors.As(cause, &hit) {
		e.limitStopped(w, sandboxID, hit)
		return res, errors.Join(hit, err)
	}
	if err != nil {
		return res, err
	}
	if res.Around.Refused { // full before it started
		if hit := over(measured(res.Around.DiskBefore), repoMax, boxMax, watchRepo, true); hit != nil {
			return sandbox.ExecResult{}, hit
		}
		return sandbox.ExecResult{}, backends.Errorf(backends.Internal, "the sandbox refused a transfer at a size limit gitgate does not find reached")
	}
	var before *usage
	if len(res.Around.DiskBefore) == len(paths) {
		u := measured(res.Around.DiskBefore)
		before = &u
	}
	fileHit := fileLimit(before, boxMax, repoMax, watchRepo && !w.writesTree)
	// The command ended on its own: past a limit between two measures (a
	// success too: many files, each within the file-size limit, written
	// faster than the watcher measures), or, failed, at the file-size
	// limit (git, or its index-pack, killed by SIGXFSZ)?
	failed := res.ExitCode != 0
	var u usage
	if after := res.Around.DiskAfter; len(after) == len(paths) {
		u = measured(after)
	} else {
		u, err = measure(context.WithoutCancel(ctx))
		if err != nil { // once more, then fail closed: a failed measure must not lift a limit
			u, err = measure(context.WithoutCancel(ctx))
		}
		if err != nil {
			return res, fmt.Errorf("measuring the disk use after a transfer (the size limits could not be checked): %w", err)
		}
	}
	if hit := over(u, repoMax, boxMax, watchRepo, failed); hit != nil {
		e.limitStopped(w, sandboxID, hit)
		return res, hit
	}
	if !failed {
		return res, nil
	}
	if fileHit != nil && (res.ExitCode == -1 || fileLimitMarks(res.Stderr)) {
		e.limitStopped(w, sandboxID, fileHit)
		return res, fileHit
	}
	return res, nil
}

// fileLimit is the limit the file-size limit of a watched command stood
// for (nil when it ran without one): the least room left before it, under
// the sandbox limit, or under the repository limit when repoCaps (the
// command writes the git directory only), as sandbox.Around.FileCap sets
// it. When the measures before it are unknown (before nil: the provider
// could not say), the sandbox limit is assumed if there is one.
func fileLimit(before *usage, boxMax, repoMax int64, repoCaps bool) *sizeLimitError {
	var hit *sizeLimitError
	var room int64
	if boxMax > 0 {
		hit = &sizeLimitError{limit: boxMax}
		if before != nil {
			room = boxMax - before.box
		}
	}
	if repoCaps && (hit == nil || (before != nil && repoMax-before.repo < room)) {
		hit = &sizeLimitError{repo: true, limit: repoMax}
	}
	return hit
}

// fileLimitMarks reports whether git's errors show a process of it
// stopped by the file-size limit: SIGXFSZ (25) ends the writer, and git
// clone removes what it wrote, so only its words are left. index-pack
// writes the pack, and dies of nothing else a well-formed transfer causes.
func fileLimitMarks(stderr []byte) bool {
	for _, mark := range []string{"signal 25", "File too large", "invalid index-pack output", "index-pack failed", "index-pack died"} {
		if strings.Contains(string(stderr), mark) {
			return true
		}
	}
	return false
}

var errTransferDone = errors.New("the transfer ended")

func (e *Executor) limitStopped(w *diskWatch, sandboxID string, hit *sizeLimitError) {
	which := "sandbox"
	if hit.repo {
		which = "repository"
	}
	e.cfg.Logger.Info("a transfer was stopped at a size limit", "project", w.project, "sandbox", sandboxID,
		"limit", which, "limit_bytes", hit.limit, "measured_bytes", hit.used)
}

// cloneCheckout writes the work tree of a clone made with --no-checkout,
// under the sandbox limit, and reads HEAD after it (headRead). An empty
// repository has nothing to check out.
func (e *Executor) cloneCheckout(ctx context.Context, b sandbox.Binding) (sandbox.ExecResult, error) {
	g := gitRun{op: backends.OpClone, args: []string{"read-tree", "-u", "--reset", "HEAD"}, watch: &diskWatch{project: b.Key.Project},
		around: headRead(b)}
	return e.git(ctx, b, g)
}

// pullSnapshot is what a pull stopped at a size limit restores: the
// remote-tracking branch it fetches into and FETCH_HEAD.
type pullSnapshot struct {
	head      string // HEAD's commit before the pull
	tracking  string // its commit, "" if it did not exist
	fetchHead []byte
	hadFetch  bool
}

// runPull runs a pull's git command under the size limits. When a limit
// stops it, the workspace is put back as it was: temporary packs and
// objects removed, the remote-tracking branch and FETCH_HEAD restored, and
// the files a stopped merge had begun to write restored from HEAD (git
// refuses a merge that would overwrite uncommitted changes, so they are the
// agent's committed files).
func (e *Executor) runPull(ctx context.Context, w *workspace, branch string, g gitRun) (sandbox.ExecResult, error) {
	snap := e.snapshotPull(ctx, w.Binding, branch)
	g.watch = &diskWatch{project: w.Key.Project, gitDir: w.GitDir(), writesTree: true}
	res, err := e.run(ctx, w.Binding, g)
	hit, ok := asSizeLimit(err)
	if !ok {
		return res, err
	}
	if errors.Is(err, sandbox.ErrMayStillRun) {
		return res, limitError(hit, "gitgate could not confirm that git stopped, so the workspace was left as it is", err)
	}
	rctx := context.WithoutCancel(ctx)
	written, rerr := e.restorePull(rctx, w.Binding, branch, snap)
	if rerr == nil {
		// "Unchanged" is what the workspace shows, not what the restore
		// meant to do: HEAD as before, and none of the files the pull may
		// have written differing from HEAD in the index or the work tree.
		rerr = e.checkPullRestored(rctx, w.Binding, snap, written)
	}
	if rerr != nil {
		e.cfg.Logger.Warn("restoring a workspace after a pull stopped at a size limit failed", "workspace", w.Key.String(), "err", rerr)
		return res, limitError(hit, "the workspace could not be fully restored ("+backends.MessageOf(rerr)+")", err)
	}
	return res, limitError(hit, "the workspace is unchanged", err)
}

func (e *Executor) snapshotPull(ctx context.Context, b sandbox.Binding, branch string) pullSnapshot {
	var s pullSnapshot
	s.head = e.revParse(ctx, b, "HEAD")
	s.tracking = e.revParse(ctx, b, "refs/remotes/origin/"+branch)
	if f, err := e.provider().ReadFile(ctx, b.SandboxID, b.GitDir(), "FETCH_HEAD", 0, 1<<20); err == nil {
		s.fetchHead, s.hadFetch = f.Data, true
	}
	return s
}

// revParse returns the commit ref names, "" if none.
func (e *Executor) revParse(ctx context.Context, b sandbox.Binding, ref string) string {
	res, err := e.run(ctx, b, gitRun{op: backends.OpPull, read: true, noTree: true,
		args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", ref}})
	if err != nil || res.ExitCode != 0 {
		return ""
	}
	return strings.TrimSpace(string(res.Stdout))
}

// restorePull puts the workspace back as s found it, and returns the paths
// the stopped merge may have written (those the fetched tip changed).
func (e *Executor) restorePull(ctx context.Context, b sandbox.Binding, branch string, s pullSnapshot) ([]string, error) {
	p := e.provider()
	var errs []error
	var written []string
	if head := e.revParse(ctx, b, "HEAD"); head != s.head && s.head != "" {
		// The pull finished past a limit: undo its merge. --keep keeps
		// uncommitted changes (git let the merge happen beside them only
		// in files the merge did not touch).
		if _, err := e.git(ctx, b, gitRun{op: backends.OpPull, args: []string{"reset", "--keep", "--quiet", s.head}}); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, e.removeTempObjects(ctx, b.SandboxID, b.GitDir()))
	// A merge stopped while writing files: its lock, and the files it
	// wrote, which differ between HEAD and the fetched tip.
	if _, err := p.Remove(ctx, b.SandboxID, b.GitDir(), "index.lock"); err != nil {
		errs = append(errs, err)
	}
	ref := "refs/remotes/origin/" + branch
	if tip := e.revParse(ctx, b, ref); tip != "" && tip != s.tracking {
		var err error
		written, err = e.restoreWrittenFiles(ctx, b, tip)
		errs = append(errs, err)
	}
	args := []string{"update-ref", "-d", ref}
	if s.tracking != "" {
		args = []string{"update-ref", ref, s.tracking}
	}
	if _, err := e.git(ctx, b, gitRun{op: backends.OpPull, noTree: true, args: args}); err != nil {
		errs = append(errs, err)
	}
	var err error
	if s.hadFetch {
		_, err = p.WriteFile(ctx, b.SandboxID, b.GitDir(), "FETCH_HEAD", s.fetchHead)
	} else {
		_, err = p.Remove(ctx, b.SandboxID, b.GitDir(), "FETCH_HEAD")
	}
	return written, errors.Join(append(errs, err)...)
}

// restoreWrittenFiles puts back, from HEAD, the files a merge of tip into
// HEAD may have begun to write: those tip changed since their merge base.
// It returns their paths.
//
// The paths go to git as they are: every command runs with
// --literal-pathspecs, under which a ":(literal)" prefix would be part of
// the name and match nothing (git rm --ignore-unmatch then removes
// nothing, and says nothing).
func (e *Executor) restoreWrittenFiles(ctx context.Context, b sandbox.Binding, tip string) ([]string, error) {
	res, err := e.git(ctx, b, gitRun{op: backends.OpPull, read: true, args: []string{"merge-base", "HEAD", tip}})
	if err != nil {
		return nil, err
	}
	base := strings.TrimSpace(string(res.Stdout))
	res, err = e.git(ctx, b, gitRun{op: backends.OpPull, read: true, maxOut: 16 << 20,
		args: []string{"diff", "--no-renames", "--name-only", "-z", base, tip, "--"}})
	if err != nil {
		return nil, err
	}
	if res.StdoutTruncated {
		return nil, backends.Errorf(backends.Internal, "the list of the files the pull changed is longer than gitgate reads")
	}
	var written, inHead, gone []string
	for _, path := range strings.Split(strings.TrimSuffix(string(res.Stdout), "\x00"), "\x00") {
		if path == "" {
			continue
		}
		written = append(written, path)
		r, err := e.run(ctx, b, gitRun{op: backends.OpPull, read: true, noTree: true, args: []string{"cat-file", "-e", "HEAD:" + path}})
		if err != nil {
			return written, err
		}
		if r.ExitCode == 0 {
			inHead = append(inHead, path)
		} else {
			gone = append(gone, path)
		}
	}
	for _, path := range gone {
		if _, err := e.provider().Remove(ctx, b.SandboxID, b.WorkTree(), path); err != nil {
			return written, err
		}
	}
	if len(gone) > 0 {
		// A merge stopped after it wrote the index has added them there
		// too: take them out of it (the work tree is done above).
		_, err = e.git(ctx, b, gitRun{op: backends.OpPull, stdin: nulPaths(gone),
			args: []string{"rm", "--cached", "--quiet", "--ignore-unmatch", "--pathspec-from-file=-", "--pathspec-file-nul"}})
		if err != nil {
			return written, err
		}
	}
	if len(inHead) == 0 {
		return written, nil
	}
	_, err = e.git(ctx, b, gitRun{op: backends.OpPull, stdin: nulPaths(inHead),
		args: []string{"checkout", "--no-overlay", "--pathspec-from-file=-", "--pathspec-file-nul", "HEAD", "--"}})
	return written, err
}

// nulPaths is paths NUL-separated, for git's --pathspec-from-file=-
// --pathspec-file-nul (literal: the commands run with --literal-pathspecs).
func nulPaths(paths []string) []byte {
	var out []byte
	for _, path := range paths {
		out = append(append(out, path...), 0)
	}
	return out
}

// checkPullRestored checks what restorePull did against the workspace
// itself: HEAD is s.head again, and none of the paths written (those the
// stopped pull may have written) shows in git status, in the index or in
// the work tree. git merge refuses to start when any of them has
// uncommitted changes, so any entry there is the pull's. The error names
// what differs (at most ten paths, and how many more).
func (e *Executor) checkPullRestored(ctx context.Context, b sandbox.Binding, s pullSnapshot, written []string) error {
	if head := e.revParse(ctx, b, "HEAD"); s.head != "" && head != s.head {
		return backends.Errorf(backends.Internal, "HEAD is at %.12s, not at %.12s as before the pull", head, s.head)
	}
	if len(written) == 0 {
		return nil
	}
	res, err := e.git(ctx, b, gitRun{op: backends.OpPull, read: true, maxOut: 16 << 20,
		args: []string{"status", "--porcelain=v1", "-z", "--no-renames", "--untracked-files=all"}})
	if err != nil {
		return err
	}
	if res.StdoutTruncated {
		return backends.Errorf(backends.Internal, "the workspace's status is longer than gitgate reads, so the restore could not be checked")
	}
	want := make(map[string]bool, len(written))
	for _, path := range written {
		want[path] = true
	}
	var left []string
	for _, entry := range strings.Split(string(res.Stdout), "\x00") {
		// "XY path": X the index against HEAD, Y the work tree against the index.
		if len(entry) > 3 && want[entry[3:]] {
			left = append(left, pathState(entry[:2])+" "+entry[3:])
		}
	}
	if len(left) == 0 {
		return nil
	}
	n, more := len(left), ""
	if n > 10 {
		more = fmt.Sprintf(" and %d more", len(left)-10)
		left = left[:10]
	}
	return backends.Errorf(backends.Internal, "%d of the files the pull wrote still differ from HEAD: %s%s",
		n, strings.Join(left, ", "), more)
}

// pathState says what a porcelain v1 status code means, in words.
func pathState(xy string) string {
	index := map[byte]string{'A': "added to the index", 'M': "modified in the index", 'D': "deleted from the index", 'T': "changed type in the index", 'U': "unmerged"}
	tree := map[byte]string{'M': "modified in the work tree", 'D': "deleted from the work tree", 'T': "changed type in the work tree"}
	if xy == "??" {
		return "untracked"
	}
	var words []string
	if w, ok := index[xy[0]]; ok {
		words = append(words, w)
	}
	if w, ok := tree[xy[1]]; ok {
		words = append(words, w)
	}
	if len(words) == 0 {
		return xy
	}
	return strings.Join(words, " and ")
}

// removeTempObjects removes what a stopped fetch leaves in the object
// store of the repository at gitDir: tmp_pack_*, tmp_idx_* in
// objects/pack, tmp_obj_* among loose objects, incoming-* quarantines.
func (e *Executor) removeTempObjects(ctx context.Context, id, gitDir string) error {
	p := e.provider()
	var errs []error
	for _, dir := range []string{"objects/pack", "objects"} {
		entries, err := p.ListDir(ctx, id, gitDir, dir, dir == "objects", 100_000)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, en := range entries {
			base := en.Path[strings.LastIndex(en.Path, "/")+1:]
			if strings.HasPrefix(base, "tmp_") || (en.Type == "dir" && strings.HasPrefix(base, "incoming-")) {
				if err := p.RemoveAll(ctx, id, gitDir+"/"+en.Path); err != nil { // paths are relative to the git dir
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
