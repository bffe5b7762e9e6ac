package approach1

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// Shadow predictions of the merge-like writes (merge, rebase, cherry_pick,
// revert) and of the calls that finish or abandon them (mark_resolved,
// continue, abort). As for the others (predict.go), nothing here changes
// the workspace: every merge is computed with `git merge-tree
// --write-tree` in a scratch object directory.
//
// Git 2.39 has no `merge-tree --merge-base` and no `git replay`, so one
// step of a cherry-pick, revert or rebase — a three-way merge of the trees
// base, ours and theirs — is computed on synthetic commits built in the
// scratch object directory: B' (base's tree, no parent), O' (ours, parent
// B') and T' (theirs, parent B'). Their only merge base is B', so
// merge-tree O' T' merges exactly what cherry-pick (base = C^, theirs = C)
// and revert (base = C, theirs = C^) merge, with the same merge machinery
// (ort) and the same conflicts.
//
// Facts compared, besides the primary's own flags: trees of the commits
// made (never their ids, which carry the time they were made), the
// conflicted paths with their kind (as merge-tree reports them, as the
// primary's result reports them, and as the workspace's index holds them
// when it stopped), what the workspace is in the middle of, and the
// commit it stopped at. A later write to the workspace makes a prediction
// stale (it may have resolved conflicts or moved refs the request named).

// maxListing caps what a prediction reads of a listing (unmerged entries,
// conflicts).
const maxListing = 16 << 20

// predictionIdentity signs the synthetic commits of the scratch object
// directory; they are deleted with it and never reach the workspace.
var predictionIdentity = &gitcmd.Identity{Name: "gitgate prediction", Email: "prediction@gitgate.invalid",
	AuthorDate: "1000000000 +0000", CommitterDate: "1000000000 +0000"}

// predictMergeOp predicts a merge of the request's branch (default the
// current branch's upstream) into the current branch from the primary's
// "before": up to date, a fast-forward, a merge commit (its tree and
// parents), a refusal (ff_only), or a stop on conflicts (the conflicts,
// the merge in progress, HEAD unchanged).
func (e *Executor) predictMergeOp(ctx context.Context, r *backends.MergeRequest, res *backends.MergeResult) (*backends.Prediction, error) {
	if r.Branch != "" {
		if err := gitcmd.ValidateRev(r.Branch); err != nil {
			return nil, err
		}
	}
	if !isObjectID(res.Before) || !isObjectID(res.After) {
		return nil, backends.Errorf(backends.InvalidArgument, "the primary's merge result does not name commits")
	}
	w, branch, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if branch != res.Branch || head != res.After {
		return stale("HEAD moved on from the merge"), nil
	}
	rev := r.Branch
	if rev == "" {
		rev = "refs/remotes/origin/" + branch
	}
	theirs, err := e.commitAt(ctx, w.Binding, rev, res.Before)
	if err != nil {
		return nil, err
	}
	expected := map[string]string{"branch": branch}
	found := map[string]string{"branch": res.Branch, "after": res.After,
		"up_to_date": strconv.FormatBool(res.UpToDate), "fast_forward": strconv.FormatBool(res.FastForward),
		"merged": strconv.FormatBool(res.Merged), "in_progress": res.InProgress, "conflicts": conflictsOf(res.Conflicts)}
	outcome := func(after string, upToDate, ff, merged bool) {
		expected["after"] = after
		expected["up_to_date"], expected["fast_forward"], expected["merged"] = strconv.FormatBool(upToDate), strconv.FormatBool(ff), strconv.FormatBool(merged)
		expected["in_progress"], expected["conflicts"] = "", ""
	}
	if theirs == "" {
		expected["after"] = "(refused: " + rev + " names no commit)"
		return e.settled(ctx, w.Binding, &r.Scope, res, head, expected, found)
	}
	before := res.Before
	upToDate, err := e.isAncestor(ctx, w.Binding, theirs, before)
	if err != nil {
		return nil, err
	}
	ff, err := e.isAncestor(ctx, w.Binding, before, theirs)
	if err != nil {
		return nil, err
	}
	switch {
	case upToDate:
		outcome(before, true, false, false)
	case ff && !r.NoFF:
		outcome(theirs, false, true, false)
	case r.FFOnly:
		expected["after"] = "(refused: not a fast-forward)"
	default:
		m, err := e.mergeTrees(ctx, w.Binding, before, theirs)
		if err != nil {
			return nil, err
		}
		if m.conflicts != nil {
			outcome(before, false, false, false)
			expected["in_progress"], expected["conflicts"] = "merge", m.conflicts.String()
			if err := e.stoppedFacts(ctx, w.Binding, "MERGE_HEAD", theirs, m.conflicts, expected, found); err != nil {
				return nil, err
			}
			break
		}
		outcome("(a merge commit)", false, false, true)
		expected["tree"], expected["parents"] = m.tree, before+" "+theirs
		if r.Message != "" {
			expected["message"] = r.Message // --cleanup=verbatim: as given
		}
	}
	if res.Merged {
		made, err := e.commitFacts(ctx, w.Binding, res.After)
		if err != nil {
			return nil, err
		}
		found["after"], found["tree"], found["parents"] = "(a merge commit)", made.tree, made.parents
		if r.Message != "" {
			found["message"] = made.message
		}
	}
	return e.settled(ctx, w.Binding, &r.Scope, res, head, expected, found)
}

// predictCherryPick replays the request's commits, one after the other,
// on the primary's "before" in the scratch object directory.
func (e *Executor) predictCherryPick(ctx context.Context, r *backends.CherryPickRequest, res *backends.CherryPickResult) (*backends.Prediction, error) {
	return e.predictPicks(ctx, &r.Scope, res, r.Commits, false, pickedResult{branch: res.Branch, before: res.Before, after: res.After, created: res.Created, stopped: res.Stopped})
}

// predictRevert replays the inverse of the request's commits, one after
// the other, on the primary's "before" in the scratch object directory.
func (e *Executor) predictRevert(ctx context.Context, r *backends.RevertRequest, res *backends.RevertResult) (*backends.Prediction, error) {
	return e.predictPicks(ctx, &r.Scope, res, r.Commits, true, pickedResult{branch: res.Branch, before: res.Before, after: res.After, created: res.Created, stopped: res.Stopped})
}

// pickedResult is what cherry_pick's and revert's results say.
type pickedResult struct {
	branch, before, after string
	created               []string
	stopped               backends.Stopped
}

// predictPicks expects, for each commit in order, a new commit whose tree
// is the three-way merge of the previous tree with the commit's change
// (cherry-pick: base C^, theirs C; revert: base C, theirs C^), each the
// child of the one before (the first of "before"), authored as git does
// (a cherry-pick keeps the commit's author, a revert is the agent's);
// or, at the first commit whose change conflicts or leaves nothing to
// commit (git does not make empty commits here), a stop: the commits made
// so far, the conflicts, the operation in progress and the commit it
// stopped at (CHERRY_PICK_HEAD, REVERT_HEAD).
func (e *Executor) predictPicks(ctx context.Context, s *backends.Scope, primary backends.Result, revs []string, revert bool, res pickedResult) (*backends.Prediction, error) {
	if len(revs) == 0 {
		return nil, backends.Errorf(backends.InvalidArgument, "name at least one commit")
	}
	for _, rev := range revs {
		if err := gitcmd.ValidateRev(rev); err != nil {
			return nil, err
		}
	}
	if !isObjectID(res.before) || !isObjectID(res.after) {
		return nil, backends.Errorf(backends.InvalidArgument, "the primary's result does not name commits")
	}
	for _, c := range res.created {
		if !isObjectID(c) {
			return nil, backends.Errorf(backends.InvalidArgument, "the primary's created commit %q is not an object id", c)
		}
	}
	op, stopFile := "cherry_pick", "CHERRY_PICK_HEAD"
	if revert {
		op, stopFile = "revert", "REVERT_HEAD"
	}
	author := ""
	if revert {
		id, err := identity(s.Principal)
		if err != nil {
			return nil, err
		}
		author = id.Name + " <" + id.Email + ">"
	}
	w, branch, head, err := e.openAtHead(ctx, s)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if branch != res.branch || head != res.after {
		return stale("HEAD moved on from the %s", op), nil
	}
	sc, cleanup, err := e.scratch(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	rp := &replayer{e: e, b: w.Binding, sc: sc}
	start, err := e.commitFacts(ctx, w.Binding, res.before)
	if err != nil {
		return nil, err
	}
	ours := start.tree
	var trees, authors []string
	var stop *mergeOutcome
	stopAt := ""
	for _, rev := range revs {
		sha, err := e.commitAt(ctx, w.Binding, rev, res.before)
		if err != nil {
			return nil, err
		}
		if sha == "" {
			return stale("%s names no commit now", rev), nil
		}
		c, err := e.commitFacts(ctx, w.Binding, sha)
		if err != nil {
			return nil, err
		}
		parentTree, err := rp.parentTree(ctx, c)
		if err != nil {
			return nil, err
		}
		base, theirs := parentTree, c.tree
		if revert {
			base, theirs = c.tree, parentTree
		}
		m, err := rp.pick(ctx, base, ours, theirs)
		if err != nil {
			return nil, err
		}
		if m.conflicts != nil {
			stop, stopAt = &m, sha
			break
		}
		if m.tree == ours {
			// Nothing left to commit: git stops (a cherry-pick waits with
			// CHERRY_PICK_HEAD; a revert leaves no REVERT_HEAD).
			stop = &mergeOutcome{tree: ours, conflicts: conflictSet{}}
			if !revert {
				stopAt = sha
			}
			break
		}
		ours = m.tree
		trees = append(trees, m.tree)
		if revert {
			authors = append(authors, author)
		} else {
			authors = append(authors, c.author)
		}
	}
	expected := map[string]string{"branch": branch, "created": strconv.Itoa(len(trees)), "trees": strings.Join(trees, " "),
		"authors": strings.Join(authors, ", "), "in_progress": "", "conflicts": ""}
	found := map[string]string{"branch": res.branch, "created": strconv.Itoa(len(res.created)),
		"in_progress": res.stopped.InProgress, "conflicts": conflictsOf(res.stopped.Conflicts)}
	// The chain: each created commit is the child of the one before, the
	// first of "before", and HEAD is the last.
	chain := append([]string{res.before}, res.created...)
	expected["parents"], expected["after"] = strings.Join(chain[:len(chain)-1], " "), chain[len(chain)-1]
	found["after"] = res.after
	var madeTrees, madeParents, madeAuthors []string
	for _, c := range res.created {
		made, err := e.commitFacts(ctx, w.Binding, c)
		if err != nil {
			return nil, err
		}
		first, _, _ := strings.Cut(made.parents, " ")
		madeTrees, madeParents, madeAuthors = append(madeTrees, made.tree), append(madeParents, first), append(madeAuthors, made.author)
	}
	found["trees"], found["parents"], found["authors"] = strings.Join(madeTrees, " "), strings.Join(madeParents, " "), strings.Join(madeAuthors, ", ")
	if stop != nil {
		expected["in_progress"], expected["conflicts"] = op, stop.conflicts.String()
		if err := e.stoppedFacts(ctx, w.Binding, stopFile, stopAt, stop.conflicts, expected, found); err != nil {
			return nil, err
		}
	}
	return e.settled(ctx, w.Binding, s, primary, head, expected, found)
}

// predictRebase replays the commits the branch had that the onto commit
// lacks — git's list: no merges, none whose change onto already has
// (rev-list --cherry-pick) — on onto in the scratch object directory, as
// git's merge backend does: a commit that started empty is kept, one
// that becomes empty is dropped. Expected: up to date (onto is already in
// a linear history of the branch), or the final tree, the number of
// commits on onto (replayed) and onto an ancestor of the result; or, at
// the first conflicting commit, the tree so far, the commits before it,
// the conflicts, the rebase in progress and the commit it stopped at
// (REBASE_HEAD). A stopped rebase's result keeps "after" at "before"
// (HEAD is detached on the commits replayed so far): HEAD is read then.
func (e *Executor) predictRebase(ctx context.Context, r *backends.RebaseRequest, res *backends.RebaseResult) (*backends.Prediction, error) {
	if r.Onto != "" {
		if err := gitcmd.ValidateRev(r.Onto); err != nil {
			return nil, err
		}
	}
	if !isObjectID(res.Before) || !isObjectID(res.After) {
		return nil, backends.Errorf(backends.InvalidArgument, "the primary's rebase result does not name commits")
	}
	if err := gitcmd.ValidateBranch(res.Branch); err != nil {
		return nil, err
	}
	w, branch, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	now, _, err := e.shadowInProgress(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	// Stopped, by the result or by the workspace (a later rebase would
	// be another write: settled finds it).
	stopped := res.InProgress != "" || now == "rebase"
	if !stopped && (branch != res.Branch || head != res.After) {
		return stale("HEAD moved on from the rebase"), nil
	}
	rev := r.Onto
	if rev == "" {
		rev = "refs/remotes/origin/" + res.Branch
	}
	onto, err := e.commitAt(ctx, w.Binding, rev, res.Before)
	if err != nil {
		return nil, err
	}
	if onto == "" {
		return stale("%s names no commit now", rev), nil
	}
	expected := map[string]string{"branch": res.Branch, "in_progress": "", "conflicts": ""}
	found := map[string]string{"branch": branch, "up_to_date": strconv.FormatBool(res.UpToDate), "replayed": strconv.Itoa(res.Replayed),
		"in_progress": res.InProgress, "conflicts": conflictsOf(res.Conflicts)}
	after := res.After
	if stopped {
		// HEAD is detached on the commits replayed so far; the branch is
		// the one rebase-merge/head-name names.
		headName, err := e.readGitFile(ctx, w.Binding, "rebase-merge/head-name")
		if err != nil && backends.CategoryOf(err) != backends.NotFound {
			return nil, err
		}
		found["branch"], found["after"], expected["after"] = strings.TrimPrefix(strings.TrimSpace(string(headName)), "refs/heads/"), res.After, res.Before
		after = head
	}
	upToDate, err := e.isAncestor(ctx, w.Binding, onto, res.Before)
	if err != nil {
		return nil, err
	}
	if upToDate {
		merges, err := e.predictGit(ctx, w.Binding, nil, gitRun{args: []string{"rev-list", "--count", "--merges", onto + ".." + res.Before}, noTree: true})
		if err != nil {
			return nil, err
		}
		upToDate = firstLine(merges) == "0" // git rebases a history with merges (it flattens it)
	}
	expected["up_to_date"] = strconv.FormatBool(upToDate)
	if upToDate {
		expected["after"], found["after"], expected["replayed"] = res.Before, res.After, "0"
		return e.settled(ctx, w.Binding, &r.Scope, res, head, expected, found)
	}
	out, err := e.predictGit(ctx, w.Binding, nil, gitRun{args: []string{"rev-list", "--reverse", "--topo-order", "--no-merges",
		"--right-only", "--cherry-pick", onto + "..." + res.Before}, noTree: true})
	if err != nil {
		return nil, err
	}
	sc, cleanup, err := e.scratch(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	rp := &replayer{e: e, b: w.Binding, sc: sc}
	base, err := e.commitFacts(ctx, w.Binding, onto)
	if err != nil {
		return nil, err
	}
	ours, made := base.tree, 0
	var stop *mergeOutcome
	stopAt, picks := "", 0
	for _, sha := range strings.Fields(string(out)) {
		c, err := e.commitFacts(ctx, w.Binding, sha)
		if err != nil {
			return nil, err
		}
		parentTree, err := rp.parentTree(ctx, c)
		if err != nil {
			return nil, err
		}
		if parentTree == c.tree { // started empty: kept
			made++
			picks++
			continue
		}
		m, err := rp.pick(ctx, parentTree, ours, c.tree)
		if err != nil {
			return nil, err
		}
		if m.conflicts != nil {
			stop, stopAt = &m, sha
			break
		}
		picks++
		if m.tree != ours { // one that became empty is dropped
			ours = m.tree
			made++
		}
	}
	expected["tree"], expected["commits"], expected["on_onto"], expected["replayed"] = ours, strconv.Itoa(made), "true", strconv.Itoa(made)
	madeNow, err := e.commitFacts(ctx, w.Binding, after)
	if err != nil {
		return nil, err
	}
	count, err := e.predictGit(ctx, w.Binding, nil, gitRun{args: []string{"rev-list", "--count", onto + ".." + after}, noTree: true})
	if err != nil {
		return nil, err
	}
	onOnto, err := e.isAncestor(ctx, w.Binding, onto, after)
	if err != nil {
		return nil, err
	}
	found["tree"], found["commits"], found["on_onto"] = madeNow.tree, firstLine(count), strconv.FormatBool(onOnto)
	if stop != nil {
		// replayed: the commits picked before the one that stopped,
		// those that became empty included.
		expected["replayed"] = strconv.Itoa(picks)
		expected["in_progress"], expected["conflicts"] = "rebase", stop.conflicts.String()
		if err := e.stoppedFacts(ctx, w.Binding, "REBASE_HEAD", stopAt, stop.conflicts, expected, found); err != nil {
			return nil, err
		}
	}
	return e.settled(ctx, w.Binding, &r.Scope, res, head, expected, found)
}

// predictMarkResolved expects the requested paths to have left the
// conflicts — no unmerged entry in the index, their index entries holding
// what the work tree holds (git add: a deleted file resolves by deletion)
// — and the result's remaining conflicts to be the index's.
func (e *Executor) predictMarkResolved(ctx context.Context, r *backends.MarkResolvedRequest, res *backends.MarkResolvedResult) (*backends.Prediction, error) {
	paths, err := gitcmd.ValidatePaths(r.Paths)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, backends.Errorf(backends.InvalidArgument, "name at least one path")
	}
	w, _, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	unmerged, err := e.unmergedIndex(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	still := conflictSet{}
	for _, p := range paths {
		if st, ok := unmerged[p]; ok {
			still[p] = st
		}
	}
	diff, err := e.predictRun(ctx, w.Binding, nil, gitRun{args: append([]string{"diff-files", "--quiet", "--"}, paths...)})
	if err != nil {
		return nil, err
	}
	staged := "the work tree's content"
	switch diff.ExitCode {
	case 0:
	case 1:
		staged = "differs from the work tree"
	default:
		return nil, gitError(diff, w.Root)
	}
	want := slices.Clone(paths)
	slices.Sort(want)
	got := slices.Clone(res.Resolved)
	slices.Sort(got)
	expected := map[string]string{"resolved": strings.Join(want, ", "), "still_unmerged": "", "staged": "the work tree's content",
		"remaining": unmerged.String()}
	found := map[string]string{"resolved": strings.Join(got, ", "), "still_unmerged": still.String(), "staged": staged,
		"remaining": conflictsOf(res.Remaining)}
	return e.settled(ctx, w.Binding, &r.Scope, res, head, expected, found)
}

// predictContinue checks what a continue left: HEAD at the result's head;
// done, what is in progress and unmerged as the workspace shows them;
// when done, the operation the reflog's last entry names (a merge's
// commit has two parents, the first where HEAD was); when stopped again,
// the operation still in progress. A merge's commit carries the
// request's message as given.
func (e *Executor) predictContinue(ctx context.Context, r *backends.ContinueRequest, res *backends.ContinueResult) (*backends.Prediction, error) {
	if !isObjectID(res.Head) {
		return nil, backends.Errorf(backends.InvalidArgument, "the primary's continue result does not name a commit")
	}
	w, _, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if head != res.Head {
		return stale("HEAD moved on from the continue"), nil
	}
	now, _, err := e.shadowInProgress(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	unmerged, err := e.unmergedIndex(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	// The workspace says whether it is done: what is in progress, what
	// is unmerged; the result must say the same.
	expected := map[string]string{"done": strconv.FormatBool(now == ""), "in_progress": now, "conflicts": unmerged.String()}
	found := map[string]string{"done": strconv.FormatBool(res.Done), "in_progress": res.InProgress, "conflicts": conflictsOf(res.Conflicts)}
	if !res.Done {
		// Stopped again (a rebase or a cherry-pick of several commits).
		expected["operation"], found["operation"] = now, res.Operation
		return e.settled(ctx, w.Binding, &r.Scope, res, head, expected, found)
	}
	log, err := e.headReflog(ctx, w.Binding, 2)
	if err != nil {
		return nil, err
	}
	found["operation"] = res.Operation
	if len(log) > 0 {
		if op := reflogOperation(log[0].subject); op != "" {
			expected["operation"] = op
		} else {
			delete(found, "operation") // the reflog does not say (a revert's commit)
		}
	}
	if res.Operation == "merge" && len(log) > 1 {
		made, err := e.commitFacts(ctx, w.Binding, res.Head)
		if err != nil {
			return nil, err
		}
		parents := strings.Fields(made.parents)
		found["parents"], found["first_parent"] = strconv.Itoa(len(parents)), ""
		if len(parents) > 0 {
			found["first_parent"] = parents[0]
		}
		expected["parents"], expected["first_parent"] = "2", log[1].sha
		if r.Message != "" {
			expected["message"], found["message"] = r.Message, made.message // --cleanup=verbatim
		}
	}
	return e.settled(ctx, w.Binding, &r.Scope, res, head, expected, found)
}

// predictAbort checks what an abort left: nothing in progress, nothing
// unmerged, HEAD at the result's head and on its branch, and that head
// where the operation began. The reflog tells where: the abort is its
// last entry; a rebase began at its "rebase (start)" entry (among the
// last 1000); a merge never moved HEAD; a cherry-pick or revert of
// several commits began before the run of their entries just before the
// abort (the reflog does not separate two such runs, so any start inside
// the run is accepted).
func (e *Executor) predictAbort(ctx context.Context, r *backends.AbortRequest, res *backends.AbortResult) (*backends.Prediction, error) {
	if !isObjectID(res.Head) {
		return nil, backends.Errorf(backends.InvalidArgument, "the primary's abort result does not name a commit")
	}
	w, branch, head, err := e.openAtHead(ctx, &r.Scope)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if head != res.Head {
		return stale("HEAD moved on from the abort"), nil
	}
	now, _, err := e.shadowInProgress(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	unmerged, err := e.unmergedIndex(ctx, w.Binding)
	if err != nil {
		return nil, err
	}
	expected := map[string]string{"branch": branch, "in_progress": "", "unmerged": ""}
	found := map[string]string{"branch": res.Branch, "in_progress": now, "unmerged": unmerged.String(), "head": res.Head}
	log, err := e.headReflog(ctx, w.Binding, 1000)
	if err != nil {
		return nil, err
	}
	if len(log) < 2 || log[0].sha != res.Head {
		return stale("the reflog does not end with the abort"), nil
	}
	starts := []string{log[1].sha}
	switch {
	case strings.HasPrefix(log[0].subject, "rebase"):
		// Back to the rebase's start, across its steps (the commits a
		// continue made among them), never past the end of another.
		starts = nil
		for i := 1; i+1 < len(log); i++ {
			if strings.HasPrefix(log[i].subject, "rebase (start)") {
				starts = []string{log[i+1].sha}
				break
			}
			if strings.HasPrefix(log[i].subject, "rebase (finish)") || strings.HasPrefix(log[i].subject, "rebase (abort)") {
				break
			}
		}
	default:
		for i := 1; i+1 < len(log) && pickEntry(log[i].subject); i++ {
			starts = append(starts, log[i+1].sha)
		}
	}
	switch {
	case len(starts) == 0:
		expected["head"] = "(the reflog shows no rebase start)"
	case slices.Contains(starts, res.Head):
		expected["head"] = res.Head
	default:
		expected["head"] = "one of " + strings.Join(starts, " ")
	}
	return e.settled(ctx, w.Binding, &r.Scope, res, head, expected, found)
}

// settled returns the prediction, or a stale one when HEAD moved while it
// was made or another write came after the primary's (it may have
// resolved conflicts, or moved a ref the request named).
func (e *Executor) settled(ctx context.Context, b sandbox.Binding, s *backends.Scope, primary backends.Result, head string, expected, found map[string]string) (*backends.Prediction, error) {
	later, err := e.superseded(ctx, s, primary)
	if err != nil {
		return nil, err
	}
	if later {
		return stale("another write to the workspace came after it"), nil
	}
	return e.unlessMoved(ctx, b, head, expected, found)
}

// stoppedFacts adds what a workspace stopped on conflicts shows: the
// commit it stopped at (the file file of the git directory: MERGE_HEAD,
// CHERRY_PICK_HEAD, REVERT_HEAD, REBASE_HEAD) and its unmerged paths.
func (e *Executor) stoppedFacts(ctx context.Context, b sandbox.Binding, file, at string, conflicts conflictSet, expected, found map[string]string) error {
	data, err := e.readGitFile(ctx, b, file)
	if err != nil && backends.CategoryOf(err) != backends.NotFound {
		return err
	}
	unmerged, err := e.unmergedIndex(ctx, b)
	if err != nil {
		return err
	}
	expected["stopped_at"], found["stopped_at"] = at, firstLine(data)
	expected["unmerged"], found["unmerged"] = conflicts.String(), unmerged.String()
	return nil
}

// commitAt resolves an agent's rev to a commit ("" when it names none).
// A rev relative to HEAD is read relative to before, HEAD before the
// write moved it.
func (e *Executor) commitAt(ctx context.Context, b sandbox.Binding, rev, before string) (string, error) {
	if rest, ok := strings.CutPrefix(rev, "HEAD"); ok && before != "" {
		rev = before + rest
	}
	out, err := e.predictRun(ctx, b, nil, gitRun{args: []string{"rev-parse", "--verify", "--quiet", rev + "^{commit}"}, noTree: true})
	if err != nil {
		return "", err
	}
	return firstLine(out.Stdout), nil
}

// mergeOutcome is a merge computed by merge-tree: its tree, or its
// conflicts (nil when clean).
type mergeOutcome struct {
	tree      string
	conflicts conflictSet
}

// mergeTrees merges two commits as git merge does, in a scratch object
// directory.
func (e *Executor) mergeTrees(ctx context.Context, b sandbox.Binding, ours, theirs string) (mergeOutcome, error) {
	sc, cleanup, err := e.scratch(ctx, b)
	if err != nil {
		return mergeOutcome{}, err
	}
	defer cleanup()
	return (&replayer{e: e, b: b, sc: sc}).mergeTree(ctx, ours, theirs)
}

// replayer computes merges and cherry-pick steps in a scratch object
// directory.
type replayer struct {
	e         *Executor
	b         sandbox.Binding
	sc        *gitcmd.Scratch
	emptyTree string
}

func (p *replayer) git(ctx context.Context, stdin []byte, args ...string) (string, error) {
	out, err := p.e.predictGit(ctx, p.b, p.sc, gitRun{args: args, noTree: true, author: predictionIdentity, stdin: stdin})
	if err != nil {
		return "", err
	}
	return firstLine(out), nil
}

// parentTree returns the tree of c's first parent (the empty tree for a
// root commit).
func (p *replayer) parentTree(ctx context.Context, c commit) (string, error) {
	if parent, _, _ := strings.Cut(c.parents, " "); parent != "" {
		return p.git(ctx, nil, "rev-parse", "--verify", parent+"^{tree}")
	}
	if p.emptyTree == "" {
		tree, err := p.git(ctx, []byte{}, "mktree")
		if err != nil {
			return "", err
		}
		p.emptyTree = tree
	}
	return p.emptyTree, nil
}

// pick merges the change from the tree base to the tree theirs into the
// tree ours (a cherry-pick or revert step) through synthetic commits.
func (p *replayer) pick(ctx context.Context, base, ours, theirs string) (mergeOutcome, error) {
	b, err := p.git(ctx, []byte("base\n"), "commit-tree", base)
	if err != nil {
		return mergeOutcome{}, err
	}
	o, err := p.git(ctx, []byte("ours\n"), "commit-tree", ours, "-p", b)
	if err != nil {
		return mergeOutcome{}, err
	}
	t, err := p.git(ctx, []byte("theirs\n"), "commit-tree", theirs, "-p", b)
	if err != nil {
		return mergeOutcome{}, err
	}
	return p.mergeTree(ctx, o, t)
}

// mergeTree runs merge-tree --write-tree -z: the tree, then (exit 1) one
// "<mode> <object> <stage>\t<path>" entry for each stage of each
// conflicted path, NUL-terminated.
func (p *replayer) mergeTree(ctx context.Context, ours, theirs string) (mergeOutcome, error) {
	out, err := p.e.predictRun(ctx, p.b, p.sc, gitRun{args: []string{"merge-tree", "--write-tree", "-z", "--no-messages", "--end-of-options", ours, theirs}, noTree: true, maxOut: maxListing})
	if err != nil {
		return mergeOutcome{}, err
	}
	if out.ExitCode != 0 && out.ExitCode != 1 {
		return mergeOutcome{}, gitError(out, p.b.Root)
	}
	if out.StdoutTruncated {
		return mergeOutcome{}, backends.Errorf(backends.Internal, "merge-tree listed more conflicts than a prediction reads")
	}
	fields := strings.Split(string(out.Stdout), "\x00")
	m := mergeOutcome{tree: fields[0]}
	if out.ExitCode == 1 {
		m.conflicts = conflictSet{}
		for _, f := range fields[1:] {
			if f == "" {
				break // the end, or the messages after an empty field
			}
			if err := m.conflicts.addEntry(f); err != nil {
				return mergeOutcome{}, err
			}
		}
	}
	return m, nil
}

// unmerged reads the workspace index's unmerged entries (ls-files -u).
func (e *Executor) unmergedIndex(ctx context.Context, b sandbox.Binding) (conflictSet, error) {
	res, err := e.predictRun(ctx, b, nil, gitRun{args: []string{"ls-files", "-u", "-z"}, maxOut: maxListing})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, gitError(res, b.Root)
	}
	if res.StdoutTruncated {
		return nil, backends.Errorf(backends.Internal, "the index has more unmerged entries than a prediction reads")
	}
	out := res.Stdout
	set := conflictSet{}
	for f := range strings.SplitSeq(string(out), "\x00") {
		if f == "" {
			continue
		}
		if err := set.addEntry(f); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// inProgress names what the workspace is in the middle of, from git's
// files (rebase first: a rebase stopped on a pick has its own state), and
// the commit it stopped at.
func (e *Executor) shadowInProgress(ctx context.Context, b sandbox.Binding) (string, string, error) {
	for _, s := range []struct{ file, op string }{
		{"rebase-merge/head-name", "rebase"}, {"rebase-apply/head-name", "rebase"},
		{"MERGE_HEAD", "merge"}, {"CHERRY_PICK_HEAD", "cherry_pick"}, {"REVERT_HEAD", "revert"},
	} {
		data, err := e.readGitFile(ctx, b, s.file)
		if err == nil {
			return s.op, firstLine(data), nil
		}
		if backends.CategoryOf(err) != backends.NotFound {
			return "", "", err
		}
	}
	// A sequence of picks or reverts between two steps.
	todo, err := e.readGitFile(ctx, b, "sequencer/todo")
	if err == nil {
		if strings.HasPrefix(strings.TrimSpace(string(todo)), "revert") {
			return "revert", "", nil
		}
		return "cherry_pick", "", nil
	}
	if backends.CategoryOf(err) != backends.NotFound {
		return "", "", err
	}
	return "", "", nil
}

// headReflogEntry is one entry of HEAD's reflog: the commit HEAD moved to and
// why.
type headReflogEntry struct{ sha, subject string }

// reflog reads the newest n entries of HEAD's reflog, newest first (the
// commit HEAD left for entry i is entry i+1's).
func (e *Executor) headReflog(ctx context.Context, b sandbox.Binding, n int) ([]headReflogEntry, error) {
	out, err := e.predictGit(ctx, b, nil, gitRun{args: []string{"log", "-g", "-n", strconv.Itoa(n), "--format=%H%x09%gs", "HEAD", "--"}, noTree: true})
	if err != nil {
		return nil, err
	}
	var entries []headReflogEntry
	for line := range strings.SplitSeq(strings.TrimRight(string(out), "\n"), "\n") {
		if sha, subject, ok := strings.Cut(line, "\t"); ok {
			entries = append(entries, headReflogEntry{sha: sha, subject: subject})
		}
	}
	return entries, nil
}

// pickEntry reports whether a reflog entry's subject is a step of a
// cherry-pick or revert: one the sequence made, or the commit a continue
// made (a revert's with git's message).
func pickEntry(subject string) bool {
	for _, prefix := range []string{"cherry-pick", "revert", "commit (cherry-pick)", "commit: Revert \""} {
		if strings.HasPrefix(subject, prefix) {
			return true
		}
	}
	return false
}

// reflogOperation names the operation a reflog entry's subject shows
// ("" when it does not say: a revert's continue commits as "commit:").
func reflogOperation(subject string) string {
	switch {
	case strings.HasPrefix(subject, "commit (merge)"):
		return "merge"
	case strings.HasPrefix(subject, "rebase"):
		return "rebase"
	case strings.HasPrefix(subject, "commit (cherry-pick)"), strings.HasPrefix(subject, "cherry-pick"):
		return "cherry_pick"
	case strings.HasPrefix(subject, "revert"):
		return "revert"
	}
	return ""
}

// conflictSet maps each conflicted path to the index stages it has.
type conflictSet map[string][]int

// addEntry adds one "<mode> <object> <stage>\t<path>" entry.
func (s conflictSet) addEntry(f string) error {
	info, path, ok := strings.Cut(f, "\t")
	fields := strings.Fields(info)
	if !ok || len(fields) != 3 {
		return backends.Errorf(backends.Internal, "unexpected unmerged entry %q", f)
	}
	stage, err := strconv.Atoi(fields[2])
	if err != nil || stage < 1 || stage > 3 {
		return backends.Errorf(backends.Internal, "unexpected unmerged entry %q", f)
	}
	if !slices.Contains(s[path], stage) {
		s[path] = append(s[path], stage)
		slices.Sort(s[path])
	}
	return nil
}

// String lists the paths, sorted, each with its kind: "a.txt
// (both_modified), b.txt (added_by_them)"; "" for none.
func (s conflictSet) String() string {
	var list []backends.ConflictPath
	for path, stages := range s {
		list = append(list, backends.ConflictPath{Path: path, Kind: kindOfStages(stages)})
	}
	return conflictsOf(list)
}

// conflictsOf lists conflicts as conflictSet.String does.
func conflictsOf(list []backends.ConflictPath) string {
	items := make([]string, 0, len(list))
	for _, c := range list {
		items = append(items, c.Path+" ("+c.Kind+")")
	}
	slices.Sort(items)
	return strings.Join(items, ", ")
}

// kindOfStages names an unmerged path's state from its stages, as git
// status does (UU, AA, DD, AU, UA, DU, UD).
func kindOfStages(stages []int) string {
	has := [4]bool{}
	for _, s := range stages {
		has[s] = true
	}
	switch {
	case has[1] && has[2] && has[3]:
		return "both_modified"
	case has[2] && has[3]:
		return "both_added"
	case has[1] && has[2]:
		return "deleted_by_them"
	case has[1] && has[3]:
		return "deleted_by_us"
	case has[2]:
		return "added_by_us"
	case has[3]:
		return "added_by_them"
	}
	return "both_deleted"
}
