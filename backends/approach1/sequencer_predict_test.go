package approach1_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// Shadow predictions of merge, rebase, cherry_pick, revert, mark_resolved,
// continue and abort (sequencer_predict.go), on real git through the
// engine's own handlers: each write, predicted after it was made, predicts
// exactly what it did (A/A), stops on conflicts included, and changes no
// file of any sandbox; a result or a workspace that differs from what the
// write should have done is a mismatch in the fact that differs; a
// workspace a later write changed gives a stale prediction.

// spWorld is one workspace ("sp") of a fresh remote, on the engine.
type spWorld struct {
	t   *testing.T
	env *backendtest.Env
	ex  *approach1.Executor
	p   backends.Principal
}

func newSPWorld(t *testing.T) *spWorld {
	env := backendtest.NewEnv(t)
	w := &spWorld{t: t, env: env, ex: backendtest.NewApproach1(t, env), p: env.Agent}
	backendtest.Clone(t, w.ex, env, w.p, "sp")
	return w
}

func (w *spWorld) scope() backends.Scope { return backends.Scope{Workspace: "sp", Principal: w.p} }

func (w *spWorld) do(req backends.Request) backends.Result {
	w.t.Helper()
	req.GetScope().Principal = w.p
	res, err := w.ex.Execute(backendtest.Ctx(w.t), req)
	if err != nil {
		w.t.Fatalf("%s: %v", req.Op(), err)
	}
	return res
}

// predict predicts req's write from res and checks that it changed no
// file of the sandboxes and no ref of the remote.
func (w *spWorld) predict(req backends.Request, res backends.Result) *backends.Prediction {
	w.t.Helper()
	req.GetScope().Principal = w.p
	before := w.fingerprint()
	pred, err := w.ex.Predict(backendtest.Ctx(w.t), req, res)
	if err != nil {
		w.t.Fatalf("predict %s: %v", req.Op(), err)
	}
	if after := w.fingerprint(); after != before {
		w.t.Fatalf("predicting %s changed the sandbox or the remote", req.Op())
	}
	return pred
}

// match makes the write and wants its prediction to equal what it did.
func (w *spWorld) match(req backends.Request) backends.Result {
	w.t.Helper()
	res := w.do(req)
	pred := w.predict(req, res)
	if pred.Stale != "" || len(pred.Expected) == 0 || !maps.Equal(pred.Expected, pred.Found) {
		w.t.Fatalf("%s: prediction does not match:\nexpected %v\nfound    %v\nstale %q\nresult %+v", req.Op(), pred.Expected, pred.Found, pred.Stale, res)
	}
	return res
}

// mismatch wants the prediction of req from res to differ in key (and
// only where something differs: every other key must agree).
func (w *spWorld) mismatch(req backends.Request, res backends.Result, key string) {
	w.t.Helper()
	pred := w.predict(req, res)
	if pred.Stale != "" || pred.Expected[key] == pred.Found[key] {
		w.t.Fatalf("want a mismatch in %q: expected %v, found %v, stale %q", key, pred.Expected, pred.Found, pred.Stale)
	}
}

func (w *spWorld) wf(path, content string) {
	w.t.Helper()
	w.do(&backends.WriteFileRequest{Scope: w.scope(), Path: path, Content: content})
}

func (w *spWorld) commit(msg string) string {
	w.t.Helper()
	return w.do(&backends.CommitRequest{Scope: w.scope(), Message: msg}).(*backends.CommitResult).SHA
}

func (w *spWorld) checkout(branch string, create bool) {
	w.t.Helper()
	w.do(&backends.CheckoutRequest{Scope: w.scope(), Branch: branch, Create: create})
}

// git runs raw git in the workspace, as something other than the engine
// would (to make a workspace the write should not have left).
func (w *spWorld) git(args ...string) string {
	w.t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(w.env.SandboxRoots[0], "*", "git", "sp.git"))
	if len(dirs) != 1 {
		w.t.Fatalf("the workspace's git directory: %v", dirs)
	}
	root := filepath.Dir(filepath.Dir(dirs[0]))
	cmd := exec.Command("git", append([]string{"--git-dir=" + dirs[0], "--work-tree=" + filepath.Join(root, "ws", "sp"),
		"-c", "user.name=Someone Else", "-c", "user.email=else@example.com", "-c", "core.hooksPath=/dev/null"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// writeRaw writes a file of the work tree behind the engine's back.
func (w *spWorld) writeRaw(path, content string) {
	w.t.Helper()
	root := filepath.Dir(filepath.Dir(w.git("rev-parse", "--absolute-git-dir")))
	if err := os.WriteFile(filepath.Join(root, "ws", "sp", path), []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// fingerprint hashes every file of the sandboxes (scratch space under tmp/
// excepted, where no prediction may leave anything) and the remote's refs.
func (w *spWorld) fingerprint() string {
	w.t.Helper()
	h := sha256.New()
	for _, root := range w.env.SandboxRoots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), "predict-") {
				w.t.Fatalf("a prediction left %s behind", path)
			}
			if d.IsDir() && d.Name() == "tmp" {
				return filepath.SkipDir
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			h.Write([]byte(path + "\x00" + info.Mode().String() + "\x00"))
			if info.Mode().IsRegular() {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				h.Write(data)
			}
			return nil
		})
		if err != nil {
			w.t.Fatal(err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)) + w.env.RemoteGit(w.t, "for-each-ref", "--format=%(refname) %(objectname)")
}

// TestSequencerPredictMerge: a fast-forward, a merge commit, an up-to-date
// merge, a merge that stops on two conflicts (both_modified, both_added),
// its abort, and a stopped merge resolved path by path and continued.
func TestSequencerPredictMerge(t *testing.T) {
	w := newSPWorld(t)
	w.checkout("topic", true)
	w.wf("topic.txt", "t\n")
	w.commit("Topic")
	w.checkout("main", false)
	ff := w.match(&backends.MergeRequest{Scope: w.scope(), Branch: "topic"}).(*backends.MergeResult)
	if !ff.FastForward {
		t.Fatalf("merge of topic: %+v, want a fast-forward", ff)
	}
	claim := *ff
	claim.FastForward, claim.Merged = false, true
	w.mismatch(&backends.MergeRequest{Scope: w.scope(), Branch: "topic"}, &claim, "fast_forward")
	w.mismatch(&backends.MergeRequest{Scope: w.scope(), Branch: "topic", NoFF: true}, ff, "after")

	w.checkout("topic", false)
	w.wf("topic2.txt", "t2\n")
	w.commit("Topic again")
	w.checkout("main", false)
	w.wf("main.txt", "m\n")
	w.commit("Main")
	merged := w.match(&backends.MergeRequest{Scope: w.scope(), Branch: "topic", Message: "Merge topic"}).(*backends.MergeResult)
	if !merged.Merged {
		t.Fatalf("merge of diverged topic: %+v, want a merge commit", merged)
	}
	w.mismatch(&backends.MergeRequest{Scope: w.scope(), Branch: "topic", Message: "Another message"}, merged, "message")
	w.mismatch(&backends.MergeRequest{Scope: w.scope(), Branch: "main~1", Message: "Merge topic"}, merged, "parents")
	w.match(&backends.MergeRequest{Scope: w.scope(), Branch: "topic"})  // up to date
	w.match(&backends.MergeRequest{Scope: w.scope(), Branch: "HEAD~1"}) // up to date, relative to HEAD before it

	w.checkout("theirs", true)
	w.wf("README.md", "theirs\n")
	w.wf("both.txt", "their new file\n")
	w.commit("Their readme")
	w.checkout("main", false)
	w.wf("README.md", "mine\n")
	w.wf("both.txt", "my new file\n")
	w.commit("My readme")
	stop := &backends.MergeRequest{Scope: w.scope(), Branch: "theirs"}
	stopped := w.match(stop).(*backends.MergeResult)
	if stopped.InProgress != "merge" || len(stopped.Conflicts) != 2 || stopped.After != stopped.Before {
		t.Fatalf("conflicting merge: %+v, want stopped on 2 conflicts", stopped)
	}
	lost := *stopped
	lost.Conflicts = lost.Conflicts[:1]
	w.mismatch(stop, &lost, "conflicts")
	w.match(&backends.AbortRequest{Scope: w.scope()})

	again := &backends.MergeRequest{Scope: w.scope(), Branch: "theirs", NoFF: true}
	againRes := w.match(again)
	w.wf("README.md", "both\n")
	resolved := &backends.MarkResolvedRequest{Scope: w.scope(), Paths: []string{"README.md"}}
	res := w.match(resolved).(*backends.MarkResolvedResult)
	if len(res.Remaining) != 1 || res.Remaining[0].Path != "both.txt" {
		t.Fatalf("mark_resolved: %+v, want both.txt remaining", res)
	}
	forgot := *res
	forgot.Remaining = nil
	w.mismatch(resolved, &forgot, "remaining")
	// The index not holding what the work tree holds (as if the path had
	// not been staged) is a mismatch in staged.
	w.writeRaw("README.md", "not staged\n")
	w.mismatch(resolved, res, "staged")
	w.writeRaw("README.md", "both\n")
	w.match(resolved)
	// The merge's prediction now finds a later write: stale.
	if pred := w.predict(again, againRes); pred.Stale == "" {
		t.Fatalf("prediction of a merge whose conflicts were resolved since: not stale: %v / %v", pred.Expected, pred.Found)
	}
	w.do(&backends.DeleteFileRequest{Scope: w.scope(), Path: "both.txt"}) // resolved by deletion
	w.match(&backends.MarkResolvedRequest{Scope: w.scope(), Paths: []string{"both.txt"}})
	cont := &backends.ContinueRequest{Scope: w.scope(), Message: "Merge theirs"}
	done := w.match(cont).(*backends.ContinueResult)
	if !done.Done || done.Operation != "merge" {
		t.Fatalf("continue: %+v", done)
	}
	w.mismatch(&backends.ContinueRequest{Scope: w.scope(), Message: "Another message"}, done, "message")
	notDone := *done
	notDone.Done = false
	w.mismatch(cont, &notDone, "done")
}

// TestSequencerPredictRebase: a clean rebase, an up-to-date one, one that
// stops on the second of three commits (and its abort), and the same
// resolved and continued.
func TestSequencerPredictRebase(t *testing.T) {
	w := newSPWorld(t)
	w.checkout("feature", true)
	w.wf("f1.txt", "f1\n")
	w.commit("F1")
	w.checkout("main", false)
	w.wf("m1.txt", "m1\n")
	w.commit("M1")
	w.checkout("feature", false)
	onto := &backends.RebaseRequest{Scope: w.scope(), Onto: "main"}
	clean := w.match(onto).(*backends.RebaseResult)
	if clean.Replayed != 1 || clean.UpToDate {
		t.Fatalf("rebase: %+v, want 1 commit replayed", clean)
	}
	more := *clean
	more.Replayed++
	w.mismatch(onto, &more, "replayed")
	w.mismatch(&backends.RebaseRequest{Scope: w.scope(), Onto: "main~1"}, clean, "up_to_date")
	w.match(onto) // up to date

	w.wf("README.md", "feature readme\n")
	w.commit("F2 readme")
	w.wf("f3.txt", "f3\n")
	w.commit("F3")
	w.checkout("main", false)
	w.wf("README.md", "main readme\n")
	w.commit("M2 readme")
	w.checkout("feature", false)
	stopped := w.match(onto).(*backends.RebaseResult)
	if stopped.InProgress != "rebase" || stopped.Replayed != 1 || len(stopped.Conflicts) != 1 {
		t.Fatalf("rebase: %+v, want stopped after 1 commit on README.md", stopped)
	}
	quiet := *stopped
	quiet.Stopped = backends.Stopped{}
	w.mismatch(onto, &quiet, "in_progress")
	aborted := w.match(&backends.AbortRequest{Scope: w.scope()}).(*backends.AbortResult)
	if aborted.Head != stopped.Before || aborted.Operation != "rebase" {
		t.Fatalf("abort: %+v, want back at %s", aborted, stopped.Before)
	}
	wrong := *aborted
	wrong.Head = clean.After
	if pred := w.predict(&backends.AbortRequest{Scope: w.scope()}, &wrong); pred.Stale == "" {
		t.Fatalf("an abort result naming another head than HEAD: not stale: %v / %v", pred.Expected, pred.Found)
	}

	w.match(onto)
	w.wf("README.md", "rebased readme\n")
	w.match(&backends.MarkResolvedRequest{Scope: w.scope(), Paths: []string{"README.md"}})
	done := w.match(&backends.ContinueRequest{Scope: w.scope()}).(*backends.ContinueResult)
	if !done.Done || done.Operation != "rebase" || done.Branch != "feature" {
		t.Fatalf("continue: %+v", done)
	}

	// Two conflicting commits: the continue stops again; the abort goes
	// back to before the rebase, across the steps it made.
	w.wf("README.md", "g1\n")
	w.commit("G1")
	w.wf("README.md", "g2\n")
	before := w.commit("G2")
	w.checkout("main", false)
	w.wf("README.md", "main again\n")
	w.commit("M3 readme")
	w.checkout("feature", false)
	w.match(onto)
	w.wf("README.md", "g1 on main\n")
	w.match(&backends.MarkResolvedRequest{Scope: w.scope(), Paths: []string{"README.md"}})
	again := w.match(&backends.ContinueRequest{Scope: w.scope()}).(*backends.ContinueResult)
	if again.Done || again.InProgress != "rebase" || len(again.Conflicts) != 1 {
		t.Fatalf("continue: %+v, want stopped again on README.md", again)
	}
	claimDone := *again
	claimDone.Done, claimDone.Stopped = true, backends.Stopped{}
	w.mismatch(&backends.ContinueRequest{Scope: w.scope()}, &claimDone, "done")
	if back := w.match(&backends.AbortRequest{Scope: w.scope()}).(*backends.AbortResult); back.Head != before {
		t.Fatalf("abort: %+v, want back at %s", back, before)
	}
}

// TestSequencerPredictPicks: cherry-picks and reverts, clean, stopped on a
// conflict part-way (and aborted back to before the first), stopped on a
// pick that would make an empty commit, resolved and continued; a commit
// of the pick whose files differ (amended behind the engine's back) is a
// mismatch in the trees.
func TestSequencerPredictPicks(t *testing.T) {
	w := newSPWorld(t)
	w.checkout("picks", true)
	w.wf("p1.txt", "p1\n")
	p1 := w.commit("P1")
	w.wf("p2.txt", "p2\n")
	p2 := w.commit("P2")
	w.wf("README.md", "picked readme\n")
	conflicting := w.commit("Conflicting")
	w.wf("p3.txt", "p3\n")
	p3 := w.commit("P3")
	w.checkout("main", false)
	w.wf("README.md", "main readme\n")
	w.commit("Main readme")

	two := &backends.CherryPickRequest{Scope: w.scope(), Commits: []string{p1, p2}}
	picked := w.match(two).(*backends.CherryPickResult)
	if len(picked.Created) != 2 {
		t.Fatalf("cherry_pick: %+v, want 2 commits", picked)
	}
	swapped := *picked
	swapped.Created = []string{picked.Created[1], picked.Created[0]}
	w.mismatch(two, &swapped, "trees")
	w.mismatch(&backends.CherryPickRequest{Scope: w.scope(), Commits: []string{p2, p1}}, picked, "trees")

	// The second commit's files are not what the pick makes.
	last := picked.Created[1]
	w.writeRaw("p2.txt", "changed\n")
	w.git("commit", "-q", "--amend", "--no-edit", "-a")
	amended := *picked
	amended.After = w.git("rev-parse", "HEAD")
	amended.Created = []string{picked.Created[0], amended.After}
	w.mismatch(two, &amended, "trees")
	w.git("reset", "-q", "--hard", last)

	// Stopped at the second of three: one commit made, then aborted back.
	three := &backends.CherryPickRequest{Scope: w.scope(), Commits: []string{p3, conflicting, p3}}
	stopped := w.match(three).(*backends.CherryPickResult)
	if stopped.InProgress != "cherry_pick" || len(stopped.Created) != 1 || len(stopped.Conflicts) != 1 {
		t.Fatalf("cherry_pick: %+v, want stopped after 1 commit on README.md", stopped)
	}
	aborted := w.match(&backends.AbortRequest{Scope: w.scope()}).(*backends.AbortResult)
	if aborted.Head != last {
		t.Fatalf("abort: %+v, want back at %s", aborted, last)
	}

	// Picking a change the branch has: nothing to commit, git stops.
	empty := w.match(&backends.CherryPickRequest{Scope: w.scope(), Commits: []string{p1}}).(*backends.CherryPickResult)
	if empty.InProgress != "cherry_pick" || len(empty.Conflicts) != 0 || len(empty.Created) != 0 {
		t.Fatalf("cherry_pick of a change the branch has: %+v, want stopped without conflicts", empty)
	}
	w.match(&backends.AbortRequest{Scope: w.scope()})

	// revert: clean, then stopped, resolved and continued
	reverted := w.match(&backends.RevertRequest{Scope: w.scope(), Commits: []string{picked.Created[0]}}).(*backends.RevertResult)
	if len(reverted.Created) != 1 {
		t.Fatalf("revert: %+v", reverted)
	}
	w.mismatch(&backends.RevertRequest{Scope: w.scope(), Commits: []string{picked.Created[1]}}, reverted, "trees")
	stopRevert := w.match(&backends.RevertRequest{Scope: w.scope(), Commits: []string{conflicting}}).(*backends.RevertResult)
	if stopRevert.InProgress != "revert" || len(stopRevert.Conflicts) != 1 {
		t.Fatalf("revert of a commit the branch never had: %+v, want stopped on README.md", stopRevert)
	}
	w.wf("README.md", "resolved revert\n")
	w.match(&backends.MarkResolvedRequest{Scope: w.scope(), Paths: []string{"README.md"}})
	w.match(&backends.ContinueRequest{Scope: w.scope()})

	// cherry_pick stopped, resolved and continued with a commit after it
	w.match(&backends.CherryPickRequest{Scope: w.scope(), Commits: []string{conflicting, p3}})
	w.wf("README.md", "resolved pick\n")
	w.match(&backends.MarkResolvedRequest{Scope: w.scope(), Paths: []string{"README.md"}})
	done := w.match(&backends.ContinueRequest{Scope: w.scope()}).(*backends.ContinueResult)
	if !done.Done || done.Operation != "cherry_pick" {
		t.Fatalf("continue: %+v", done)
	}

	// Two conflicting commits: the continue stops again; the abort goes
	// back to before the pick, across the commit the continue made.
	w.checkout("picks", false)
	w.wf("README.md", "c1\n")
	c1 := w.commit("C1")
	w.wf("README.md", "c2\n")
	c2 := w.commit("C2")
	w.checkout("main", false)
	before := done.Head
	w.match(&backends.CherryPickRequest{Scope: w.scope(), Commits: []string{c1, c2}})
	w.wf("README.md", "c1 on main\n")
	w.match(&backends.MarkResolvedRequest{Scope: w.scope(), Paths: []string{"README.md"}})
	again := w.match(&backends.ContinueRequest{Scope: w.scope()}).(*backends.ContinueResult)
	if again.Done || again.InProgress != "cherry_pick" {
		t.Fatalf("continue: %+v, want stopped again", again)
	}
	if back := w.match(&backends.AbortRequest{Scope: w.scope()}).(*backends.AbortResult); back.Head != before {
		t.Fatalf("abort: %+v, want back at %s", back, before)
	}
}

// TestSequencerPredictPullConflict: a pull in merge mode that stops on
// conflicts is predicted (conflicts, merge in progress, HEAD unchanged);
// a result that hides the stop is a mismatch; its abort, and the same
// stop resolved and continued, are predicted.
func TestSequencerPredictPullConflict(t *testing.T) {
	w := newSPWorld(t)
	if _, err := w.env.Remote.CommitFile(backendtest.Ctx(t), "demo", "main", "README.md", "upstream readme\n", "Upstream readme"); err != nil {
		t.Fatal(err)
	}
	w.wf("README.md", "local readme\n")
	w.commit("Local readme")
	pull := &backends.PullRequest{Scope: w.scope(), Mode: "merge"}
	stopped := w.match(pull).(*backends.PullResult)
	if stopped.InProgress != "merge" || len(stopped.Conflicts) != 1 || stopped.After != stopped.Before {
		t.Fatalf("pull: %+v, want stopped on README.md", stopped)
	}
	hidden := *stopped
	hidden.Stopped = backends.Stopped{}
	w.mismatch(pull, &hidden, "conflicts")
	w.match(&backends.AbortRequest{Scope: w.scope()})
	w.match(pull)
	w.wf("README.md", "resolved pull\n")
	w.match(&backends.MarkResolvedRequest{Scope: w.scope(), Paths: []string{"README.md"}})
	if done := w.match(&backends.ContinueRequest{Scope: w.scope()}).(*backends.ContinueResult); !done.Done || done.Operation != "merge" {
		t.Fatalf("continue: %+v", done)
	}
}

// TestSequencerPredictReplayRules: the replays follow git's rules, which
// the predictions re-derive: a rebase skips a commit whose change onto
// already has, drops one that becomes empty and keeps one that started
// empty; a cherry-pick keeps the commit's author (here the remote's) and
// picks a root commit (its base the empty tree); a revert is the agent's.
// A pick the workspace moved on from is stale.
func TestSequencerPredictReplayRules(t *testing.T) {
	w := newSPWorld(t)
	w.checkout("feature", true)
	w.wf("a.txt", "a\n")
	w.wf("b.txt", "b\n")
	w.commit("F1: a and b")
	w.git("commit", "-q", "--allow-empty", "-m", "F2: empty")
	w.wf("c.txt", "c\n")
	w.commit("F3: c")
	w.wf("d.txt", "d\n")
	f4 := w.commit("F4: d")
	w.checkout("main", false)
	w.wf("a.txt", "a\n")
	w.commit("M1: a")
	w.wf("b.txt", "b\n")
	w.commit("M2: b")
	w.match(&backends.CherryPickRequest{Scope: w.scope(), Commits: []string{f4}})
	w.checkout("feature", false)
	rebased := w.match(&backends.RebaseRequest{Scope: w.scope(), Onto: "main"}).(*backends.RebaseResult)
	if rebased.Replayed != 2 {
		t.Fatalf("rebase: %+v, want 2 commits (F2 kept empty, F3; F1 became empty, F4 is upstream)", rebased)
	}

	if _, err := w.env.Remote.CommitFile(backendtest.Ctx(t), "demo", "other", "g.txt", "g\n", "Root of other"); err != nil {
		t.Fatal(err)
	}
	w.do(&backends.FetchRequest{Scope: w.scope()})
	pick := &backends.CherryPickRequest{Scope: w.scope(), Commits: []string{"origin/other"}}
	picked := w.match(pick).(*backends.CherryPickResult)
	// The same commit authored by someone else than the picked commit's
	// author: only the authors differ.
	w.git("commit", "-q", "--amend", "--no-edit", "--reset-author")
	reauthored := *picked
	reauthored.After = w.git("rev-parse", "HEAD")
	reauthored.Created = []string{reauthored.After}
	pred := w.predict(pick, &reauthored)
	if pred.Stale != "" || pred.Expected["authors"] == pred.Found["authors"] {
		t.Fatalf("a pick with another author: want a mismatch in authors: expected %v, found %v, stale %q", pred.Expected, pred.Found, pred.Stale)
	}
	for k := range pred.Expected {
		if (pred.Expected[k] != pred.Found[k]) != (k == "authors") {
			t.Fatalf("a pick with another author: want a mismatch in authors only: expected %v, found %v", pred.Expected, pred.Found)
		}
	}
	w.git("reset", "-q", "--hard", picked.After)
	reverted := w.match(&backends.RevertRequest{Scope: w.scope(), Commits: []string{"HEAD"}}).(*backends.RevertResult)
	if len(reverted.Created) != 1 {
		t.Fatalf("revert: %+v", reverted)
	}

	w.wf("later.txt", "later\n")
	w.commit("Later")
	if pred := w.predict(pick, picked); pred.Stale == "" {
		t.Fatalf("prediction of a cherry-pick the workspace moved on from: not stale: %v / %v", pred.Expected, pred.Found)
	}
}

// TestSequencerPredictWhileWriting: predictions made while the agent goes
// on (as a shadow makes them, after the answer) over rounds of a
// cherry-pick, a revert of it and a merge that stops and is aborted: each
// matches or, when a later write came first, is stale; never a mismatch
// nor an error.
func TestSequencerPredictWhileWriting(t *testing.T) {
	w := newSPWorld(t)
	w.checkout("side", true)
	w.wf("side.txt", "side\n")
	side := w.commit("Side")
	w.wf("README.md", "side readme\n")
	w.commit("Side readme")
	w.checkout("main", false)
	w.wf("README.md", "main readme\n")
	w.commit("Main readme")
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for range 4 {
		for _, req := range []backends.Request{
			&backends.CherryPickRequest{Scope: w.scope(), Commits: []string{side}},
			&backends.RevertRequest{Scope: w.scope(), Commits: []string{"HEAD"}},
			&backends.MergeRequest{Scope: w.scope(), Branch: "side"},
			&backends.AbortRequest{Scope: w.scope()},
		} {
			res := w.do(req)
			wg.Add(1)
			go func() {
				defer wg.Done()
				pred, err := w.ex.Predict(backendtest.Ctx(t), req, res)
				outcome := "match"
				switch {
				case err != nil:
					outcome = "error: " + err.Error()
				case pred.Stale != "":
					outcome = "stale"
				case !maps.Equal(pred.Expected, pred.Found):
					outcome = fmt.Sprintf("%s mismatch: %v / %v", req.Op(), pred.Expected, pred.Found)
				}
				mu.Lock()
				outcomes[outcome]++
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if outcomes["match"]+outcomes["stale"] != 16 || outcomes["match"] == 0 {
		t.Fatalf("predictions made while the agent kept writing: %v", outcomes)
	}
}
