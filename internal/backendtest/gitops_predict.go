package backendtest

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// testGitOpsPredictions: every new write, made by the backend and then
// predicted by it (A/A), predicts exactly what it did, and the prediction
// changes nothing (sideEffects) and reads the remote only with the
// read-only token; a request or result that differs from what was done is
// a mismatch; a workspace that moved on is stale.
func testGitOpsPredictions(t *testing.T, f Factory) {
	rig := newPredictRig(t, f)
	env, pr, p := rig.env, rig.pr, rig.p
	write, predict := rig.write, rig.predict
	covered := map[backends.Op]bool{}
	match := func(req backends.Request) backends.Result {
		t.Helper()
		res := rig.match(req)
		covered[req.Op()] = true
		return res
	}
	mismatch := func(what string, req backends.Request, res backends.Result) {
		t.Helper()
		pred := predict(req, res)
		if pred.Stale != "" || maps.Equal(pred.Expected, pred.Found) {
			t.Errorf("%s: want a mismatch, got expected %v, found %v, stale %q", what, pred.Expected, pred.Found, pred.Stale)
		}
	}
	ws := scope("gpred")
	wf := func(path, content string) {
		t.Helper()
		write(&backends.WriteFileRequest{Scope: ws, Path: path, Content: content})
	}
	commit := func(msg string) string {
		t.Helper()
		return write(&backends.CommitRequest{Scope: ws, Message: msg}).(*backends.CommitResult).SHA
	}
	checkout := func(branch string, create bool) {
		t.Helper()
		write(&backends.CheckoutRequest{Scope: ws, Branch: branch, Create: create})
	}

	write(&backends.CloneRequest{Scope: ws, URL: env.RepoURL})

	// fetch
	if _, err := env.Remote.CommitFile(Ctx(t), "demo", "main", "up.txt", "up\n", "Upstream"); err != nil {
		t.Fatal(err)
	}
	fetched := match(&backends.FetchRequest{Scope: ws})
	ghost := *fetched.(*backends.FetchResult)
	ghost.Updated = append(slices.Clone(ghost.Updated), backends.RefUpdate{Ref: "origin/ghost", After: strings.Repeat("ab", 20)})
	mismatch("a fetch claiming a branch it did not fetch", &backends.FetchRequest{Scope: ws}, &ghost)
	match(&backends.FetchRequest{Scope: ws}) // nothing new
	if _, err := env.Remote.CommitFile(Ctx(t), "demo", "gone", "g.txt", "g\n", "Soon gone"); err != nil {
		t.Fatal(err)
	}
	match(&backends.FetchRequest{Scope: ws})
	env.RemoteGit(t, "update-ref", "-d", "refs/heads/gone")
	match(&backends.FetchRequest{Scope: ws, Prune: true})

	// merge: fast-forward to the upstream, then a merge commit, then one
	// that stops on conflicts and is aborted, then resolved and continued
	match(&backends.MergeRequest{Scope: ws})
	checkout("topic", true)
	wf("topic.txt", "t\n")
	commit("Topic")
	checkout("main", false)
	wf("main.txt", "m\n")
	commit("Main")
	merged := match(&backends.MergeRequest{Scope: ws, Branch: "topic", Message: "Merge topic"})
	mismatch("merge with another message", &backends.MergeRequest{Scope: ws, Branch: "topic", Message: "Another message"}, merged)
	match(&backends.MergeRequest{Scope: ws, Branch: "topic"}) // up to date
	checkout("theirs", true)
	wf("README.md", "theirs\n")
	commit("Their readme")
	checkout("main", false)
	wf("README.md", "mine\n")
	commit("My readme")
	match(&backends.MergeRequest{Scope: ws, Branch: "theirs"}) // stops
	match(&backends.AbortRequest{Scope: ws})
	match(&backends.MergeRequest{Scope: ws, Branch: "theirs", NoFF: true}) // stops again
	wf("README.md", "both\n")
	match(&backends.MarkResolvedRequest{Scope: ws, Paths: []string{"README.md"}})
	continued := match(&backends.ContinueRequest{Scope: ws, Message: "Merge theirs"})
	mismatch("continue with another message", &backends.ContinueRequest{Scope: ws, Message: "Another message"}, continued)

	// rebase: clean, then stopped, resolved, continued
	checkout("feature", true)
	wf("feature.txt", "f\n")
	commit("Feature")
	checkout("main", false)
	wf("main2.txt", "m2\n")
	commit("Main again")
	checkout("feature", false)
	rebased := match(&backends.RebaseRequest{Scope: ws, Onto: "main"})
	mismatch("rebase onto another branch", &backends.RebaseRequest{Scope: ws, Onto: "topic"}, rebased)
	wf("README.md", "feature readme\n")
	commit("Feature readme")
	checkout("main", false)
	wf("README.md", "main readme\n")
	commit("Main readme")
	checkout("feature", false)
	match(&backends.RebaseRequest{Scope: ws, Onto: "main"}) // stops
	wf("README.md", "rebased readme\n")
	match(&backends.MarkResolvedRequest{Scope: ws, Paths: []string{"README.md"}})
	match(&backends.ContinueRequest{Scope: ws})

	// cherry_pick and revert, clean and stopped
	checkout("picks", true)
	wf("pick.txt", "p\n")
	pick := commit("Pick me")
	wf("README.md", "picked readme\n")
	conflicting := commit("Conflicting pick")
	checkout("main", false)
	picked := match(&backends.CherryPickRequest{Scope: ws, Commits: []string{pick}})
	mismatch("cherry_pick of another commit", &backends.CherryPickRequest{Scope: ws, Commits: []string{conflicting}}, picked)
	match(&backends.CherryPickRequest{Scope: ws, Commits: []string{conflicting}}) // stops
	match(&backends.AbortRequest{Scope: ws})
	match(&backends.CherryPickRequest{Scope: ws, Commits: []string{conflicting}}) // stops
	wf("README.md", "resolved pick\n")
	match(&backends.MarkResolvedRequest{Scope: ws, Paths: []string{"README.md"}})
	match(&backends.ContinueRequest{Scope: ws})
	match(&backends.RevertRequest{Scope: ws, Commits: []string{picked.(*backends.CherryPickResult).Created[0]}})
	wf("README.md", "changed again\n")
	commit("Change the readme again")
	match(&backends.RevertRequest{Scope: ws, Commits: []string{conflicting}}) // stops
	wf("README.md", "resolved revert\n")
	match(&backends.MarkResolvedRequest{Scope: ws, Paths: []string{"README.md"}})
	match(&backends.ContinueRequest{Scope: ws})

	// reset, restore, stash
	wf("x.txt", "x\n")
	commit("Add x")
	reset := match(&backends.ResetRequest{Scope: ws, Ref: "HEAD~1", Mode: "soft"})
	mismatch("reset to another commit", &backends.ResetRequest{Scope: ws, Ref: "HEAD~2", Mode: "soft"}, reset)
	match(&backends.RestoreRequest{Scope: ws, Paths: []string{"x.txt"}, Staged: true})
	commit("Add x again")
	match(&backends.ResetRequest{Scope: ws, Ref: "HEAD~1"})
	match(&backends.ResetRequest{Scope: ws, Ref: "HEAD@{1}"})
	wf("README.md", "scribbles\n")
	match(&backends.ResetRequest{Scope: ws, Hard: true})
	wf("README.md", "more scribbles\n")
	match(&backends.RestoreRequest{Scope: ws, Paths: []string{"README.md"}})
	restored := match(&backends.RestoreRequest{Scope: ws, Paths: []string{"x.txt"}, Source: "HEAD~1"})
	mismatch("restore from the index predicted for one from HEAD~1", &backends.RestoreRequest{Scope: ws, Paths: []string{"x.txt"}}, restored)
	match(&backends.RestoreRequest{Scope: ws, Paths: []string{"."}})
	wf("README.md", "wip\n")
	wf("untracked.txt", "u\n")
	stashed := match(&backends.StashRequest{Scope: ws, Action: "push", Message: "wip", IncludeUntracked: true})
	mismatch("stash push with another message", &backends.StashRequest{Scope: ws, Action: "push", Message: "not what was asked", IncludeUntracked: true}, stashed)
	match(&backends.StashRequest{Scope: ws, Action: "apply"})
	match(&backends.RestoreRequest{Scope: ws, Paths: []string{"README.md"}})
	write(&backends.DeleteFileRequest{Scope: ws, Path: "untracked.txt"})
	match(&backends.StashRequest{Scope: ws, Action: "pop"})
	match(&backends.StashRequest{Scope: ws, Action: "push"})
	match(&backends.StashRequest{Scope: ws, Action: "drop"})
	wf("README.md", "stashed line\n")
	match(&backends.StashRequest{Scope: ws, Action: "push"})
	wf("README.md", "committed line\n")
	commit("Committed line")
	match(&backends.StashRequest{Scope: ws, Action: "pop"}) // conflicts
	wf("README.md", "resolved pop\n")
	match(&backends.MarkResolvedRequest{Scope: ws, Paths: []string{"README.md"}})
	write(&backends.CommitRequest{Scope: ws, Message: "After the pop"})

	// tag, push with tags
	tagged := match(&backends.TagRequest{Scope: ws, Name: "v1"})
	mismatch("tag of another target", &backends.TagRequest{Scope: ws, Name: "v1", Target: "HEAD~1"}, tagged)
	mismatch("lightweight tag predicted as annotated", &backends.TagRequest{Scope: ws, Name: "v1", Message: "annotated"}, tagged)
	match(&backends.TagRequest{Scope: ws, Name: "v0", Target: "HEAD~1", Message: "Annotated"})
	pushed := match(&backends.PushRequest{Scope: ws, Tags: []string{"v1"}})
	claim := *pushed.(*backends.PushResult)
	claim.Tags = []string{"v1", "v0"}
	mismatch("a push claiming a tag it did not push", &backends.PushRequest{Scope: ws, Tags: []string{"v1", "v0"}}, &claim)
	match(&backends.PushRequest{Scope: ws, Tags: []string{"v1", "v0"}})

	// pull in merge mode that stops on conflicts
	if _, err := env.Remote.CommitFile(Ctx(t), "demo", "main", "README.md", "upstream readme\n", "Upstream readme"); err != nil {
		t.Fatal(err)
	}
	wf("README.md", "local readme\n")
	commit("Local readme")
	match(&backends.PullRequest{Scope: ws, Mode: "merge"}) // stops
	match(&backends.AbortRequest{Scope: ws})
	match(&backends.PullRequest{Scope: ws, Mode: "merge"}) // stops
	wf("README.md", "resolved pull\n")
	match(&backends.MarkResolvedRequest{Scope: ws, Paths: []string{"README.md"}})
	match(&backends.ContinueRequest{Scope: ws})
	match(&backends.PushRequest{Scope: ws})

	// fork_workspace
	fork := &backends.ForkWorkspaceRequest{Scope: scope("gpred-fork"), Source: "gpred", Branch: "forked"}
	forked := match(fork)
	other := *fork
	other.StartPoint = "HEAD~1"
	mismatch("fork from another start point", &other, forked)
	match(&backends.ForkWorkspaceRequest{Scope: scope("gpred-fork2"), Source: "gpred", Branch: "forked2", StartPoint: "v0"})

	// a workspace that moved on since the write: stale, not a mismatch
	wf("s.txt", "s\n")
	commit("Soon undone")
	stale := &backends.ResetRequest{Scope: ws, Ref: "HEAD~1", Mode: "soft"}
	staleRes := write(stale)
	commit("Redone")
	if pred := predict(stale, staleRes); pred.Stale == "" {
		t.Fatalf("prediction of a reset the workspace moved on from is not stale: expected %v, found %v", pred.Expected, pred.Found)
	}

	var missing []string
	for _, info := range backends.Ops() {
		if info.Kind == backends.Write && isGitOp(info.Op) && !covered[info.Op] {
			missing = append(missing, string(info.Op))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("no matched prediction for %s", strings.Join(missing, ", "))
	}
	for _, r := range env.Remote.Requests() {
		if r.ReadOnly && (r.Service == "git-receive-pack" || strings.HasSuffix(r.Path, "git-receive-pack")) {
			t.Fatalf("a prediction asked to push: %+v", r)
		}
	}
	// reads are refused: they are mirrored, not predicted
	for _, read := range []backends.Request{&backends.ShowRequest{Scope: ws}, &backends.TagsRequest{Scope: ws}, &backends.StashesRequest{Scope: ws}} {
		read.GetScope().Principal = p
		_, err := pr.Predict(Ctx(t), read, backends.NewResult(read.Op()))
		WantCategory(t, err, backends.InvalidArgument)
	}
}

// isGitOp reports whether op is one of issue 16's operations.
func isGitOp(op backends.Op) bool {
	return slices.Contains([]backends.Op{
		backends.OpFetch, backends.OpShow, backends.OpBlame, backends.OpTags, backends.OpReflog, backends.OpStashes,
		backends.OpMerge, backends.OpRebase, backends.OpCherryPick, backends.OpRevert, backends.OpReset, backends.OpRestore,
		backends.OpStash, backends.OpTag, backends.OpMarkResolved, backends.OpContinue, backends.OpAbort, backends.OpForkWorkspace,
	}, op)
}
