package backendtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// testPredictions: every write, made by the backend and then predicted by
// it (A/A), predicts exactly what it did; a prediction changes no file of
// any sandbox and nothing on the remote, and reads the remote only with the
// read-only token; a workspace that moved on gives a stale prediction, and
// a result that does not match the workspace or remote a mismatch.
func testPredictions(t *testing.T, f Factory, o options) {
	rig := newPredictRig(t, f)
	env, ex, pr, p := rig.env, rig.ex, rig.pr, rig.p
	write, predict := rig.write, rig.predict
	match := func(req backends.Request) { rig.match(req) }

	match(&backends.CloneRequest{Scope: scope("pred"), URL: env.RepoURL})
	match(&backends.WriteFileRequest{Scope: scope("pred"), Path: "src/new.txt", Content: "new\n"})
	match(&backends.WriteFileRequest{Scope: scope("pred"), Path: "bin.dat", Content: "AAEC/w==", Encoding: "base64"})
	match(&backends.CommitRequest{Scope: scope("pred"), Message: "Add two files", Paths: []string{"src/new.txt", "bin.dat"}})
	match(&backends.DeleteFileRequest{Scope: scope("pred"), Path: "README.md"})
	match(&backends.WriteFileRequest{Scope: scope("pred"), Path: "untracked.txt", Content: "u"})
	match(&backends.CommitRequest{Scope: scope("pred"), Message: "Everything\n\nwith a body, no trailing newline"})
	match(&backends.CheckoutRequest{Scope: scope("pred"), Branch: "feature", Create: true})
	match(&backends.PushRequest{Scope: scope("pred")})
	match(&backends.CheckoutRequest{Scope: scope("pred"), Branch: "main"})
	match(&backends.CheckoutRequest{Scope: scope("pred"), Branch: "from-start", Create: true, StartPoint: "HEAD~1"})
	match(&backends.CheckoutRequest{Scope: scope("pred"), Branch: "main"})
	match(&backends.PushRequest{Scope: scope("pred"), Branch: "feature"})
	match(&backends.PushRequest{Scope: scope("pred")}) // main, with the two commits

	// pull: a fast-forward, then a merge of diverged histories
	if _, err := env.Remote.CommitFile(Ctx(t), "demo", "main", "upstream.txt", "up\n", "Upstream change"); err != nil {
		t.Fatal(err)
	}
	match(&backends.PullRequest{Scope: scope("pred")})
	match(&backends.PullRequest{Scope: scope("pred")}) // already up to date
	write(&backends.WriteFileRequest{Scope: scope("pred"), Path: "local.txt", Content: "mine\n"})
	write(&backends.CommitRequest{Scope: scope("pred"), Message: "Local change"})
	if _, err := env.Remote.CommitFile(Ctx(t), "demo", "main", "upstream2.txt", "more\n", "Second upstream change"); err != nil {
		t.Fatal(err)
	}
	match(&backends.PullRequest{Scope: scope("pred"), Mode: "merge"})

	// a workspace that moved on since the write: stale, not a mismatch
	first := &backends.CommitRequest{Scope: scope("pred"), Message: "First"}
	write(&backends.WriteFileRequest{Scope: scope("pred"), Path: "a.txt", Content: "a"})
	firstRes := write(first)
	write(&backends.WriteFileRequest{Scope: scope("pred"), Path: "b.txt", Content: "b"})
	write(&backends.CommitRequest{Scope: scope("pred"), Message: "Second"})
	if pred := predict(first, firstRes); pred.Stale == "" {
		t.Fatalf("prediction of a superseded commit is not stale: %+v", pred)
	}

	// a primary that did something else than asked: a mismatch naming it
	write(&backends.WriteFileRequest{Scope: scope("pred"), Path: "c.txt", Content: "c"})
	msg := &backends.CommitRequest{Scope: scope("pred"), Message: "What the agent asked for"}
	res := write(msg)
	other := *msg
	other.Message = "What another backend would have written"
	wantMismatch(t, predict(&other, res), "sha")
	unpushed := &backends.PushRequest{Scope: scope("pred")}
	unpushed.Principal = p
	claim := &backends.PushResult{Branch: "main", RemoteRef: "refs/heads/main", Head: res.(*backends.CommitResult).SHA}
	wantMismatch(t, predict(unpushed, claim), "remote_head")

	predictWhileWriting(t, ex, pr, p, o.agents(40))

	// a clone whose remote branch moved on after it (another user pushed):
	// stale, not a mismatch
	moved := &backends.CloneRequest{Scope: scope("pred-moved"), URL: env.RepoURL}
	movedRes := write(moved)
	if _, err := env.Remote.CommitFile(Ctx(t), "demo", "main", "after-the-clone.txt", "later\n", "Pushed after the clone"); err != nil {
		t.Fatal(err)
	}
	if pred := predict(moved, movedRes); pred.Stale == "" {
		t.Fatalf("prediction of a clone whose remote moved on is not stale: expected %v, found %v", pred.Expected, pred.Found)
	}

	match(&backends.ReleaseWorkspaceRequest{Scope: scope("pred"), Force: true})

	// reads are refused: they are mirrored, not predicted
	read := &backends.StatusRequest{Scope: scope("pred")}
	read.Principal = p
	_, err := pr.Predict(Ctx(t), read, &backends.StatusResult{})
	WantCategory(t, err, backends.InvalidArgument)
	if env.Remote.Pushes("demo") != 2 { // feature, main; the second push of feature was up to date
		t.Fatalf("%d pushes reached the remote, want the 2 the backend made", env.Remote.Pushes("demo"))
	}
	var readOnly int
	for _, r := range env.Remote.Requests() {
		if r.ReadOnly {
			readOnly++
		}
		if r.ReadOnly && (r.Service == "git-receive-pack" || strings.HasSuffix(r.Path, "git-receive-pack")) {
			t.Fatalf("a prediction asked to push: %+v", r)
		}
	}
	if readOnly == 0 {
		t.Fatal("no prediction read the remote with the read-only token")
	}
}

// predictWhileWriting predicts writes while the agent goes on writing (as a
// shadow does, after the answer), over rounds of a write and a commit: a
// prediction that finds later writes is stale, never a mismatch.
func predictWhileWriting(t *testing.T, ex backends.Executor, pr backends.Predictor, p backends.Principal, rounds int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for i := range rounds {
		for _, req := range []backends.Request{
			&backends.WriteFileRequest{Scope: scope("pred"), Path: "busy.txt", Content: strconv.Itoa(i)},
			&backends.CommitRequest{Scope: scope("pred"), Message: "busy " + strconv.Itoa(i)},
		} {
			req.GetScope().Principal = p
			res, err := ex.Execute(Ctx(t), req)
			if err != nil {
				t.Fatalf("%s: %v", req.Op(), err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				pred, err := pr.Predict(Ctx(t), req, res)
				outcome := "match"
				switch {
				case err != nil:
					outcome = "error: " + err.Error()
				case pred.Stale != "":
					outcome = "stale"
				case !maps.Equal(pred.Expected, pred.Found):
					outcome = fmt.Sprintf("mismatch: %v / %v", pred.Expected, pred.Found)
				}
				mu.Lock()
				outcomes[outcome]++
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if len(outcomes) > 2 || outcomes["match"] == 0 || outcomes["match"]+outcomes["stale"] != 2*rounds {
		t.Fatalf("predictions made while the agent kept writing: %v", outcomes)
	}
}

func wantMismatch(t *testing.T, pred *backends.Prediction, key string) {
	t.Helper()
	if pred.Stale != "" || pred.Expected[key] == pred.Found[key] {
		t.Fatalf("want a mismatch in %q: expected %v, found %v, stale %q", key, pred.Expected, pred.Found, pred.Stale)
	}
}

// sideEffects fingerprints everything a prediction must not change: every
// file of every sandbox (git directories, indexes, work trees; scratch
// space under tmp/ excepted, but none may be left there), and the
// remote's refs and pushes.
func sideEffects(t *testing.T, env *Env) string {
	t.Helper()
	h := sha256.New()
	for _, root := range env.SandboxRoots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if strings.Contains(d.Name(), "predict-") {
				t.Fatalf("a prediction left %s behind", rel)
			}
			if d.IsDir() && d.Name() == "tmp" {
				return filepath.SkipDir
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			h.Write([]byte(rel + "\x00" + info.Mode().String() + "\x00"))
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
			t.Fatal(err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)) + " " + env.RemoteGit(t, "for-each-ref", "--format=%(refname) %(objectname)") +
		strings.Repeat("|", 1+env.Remote.Pushes("demo"))
}

// predictRig runs the writes of a prediction suite and predicts them on
// the executor under test, which must be a backends.Predictor.
type predictRig struct {
	t   *testing.T
	env *Env
	ex  backends.Executor
	pr  backends.Predictor
	p   backends.Principal // the agent who writes
}

func newPredictRig(t *testing.T, f Factory) *predictRig {
	env := NewEnv(t)
	ex := f(t, env)
	pr, ok := ex.(backends.Predictor)
	if !ok {
		t.Fatalf("%T does not implement backends.Predictor", ex)
	}
	return &predictRig{t: t, env: env, ex: ex, pr: pr, p: env.Agent}
}

// write runs req as the agent; it must succeed.
func (r *predictRig) write(req backends.Request) backends.Result {
	r.t.Helper()
	req.GetScope().Principal = r.p
	res, err := r.ex.Execute(Ctx(r.t), req)
	if err != nil {
		r.t.Fatalf("%s: %v", req.Op(), err)
	}
	return res
}

// predict predicts req's write from its result res; the prediction must
// change nothing (sideEffects).
func (r *predictRig) predict(req backends.Request, res backends.Result) *backends.Prediction {
	r.t.Helper()
	req.GetScope().Principal = r.p
	before := sideEffects(r.t, r.env)
	pred, err := r.pr.Predict(Ctx(r.t), req, res)
	if err != nil {
		r.t.Fatalf("predict %s: %v", req.Op(), err)
	}
	if after := sideEffects(r.t, r.env); after != before {
		r.t.Fatalf("predicting %s changed something:\nbefore %s\nafter  %s", req.Op(), before, after)
	}
	return pred
}

// match writes req and fails unless its prediction matches what it did
// (A/A).
func (r *predictRig) match(req backends.Request) backends.Result {
	r.t.Helper()
	res := r.write(req)
	pred := r.predict(req, res)
	if pred.Stale != "" || len(pred.Expected) == 0 || !maps.Equal(pred.Expected, pred.Found) {
		r.t.Fatalf("%s: prediction does not match:\nexpected %v\nfound    %v\nstale %q", req.Op(), pred.Expected, pred.Found, pred.Stale)
	}
	return res
}
