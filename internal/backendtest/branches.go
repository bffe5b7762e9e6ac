package backendtest

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// testDeleteBranch: delete_branch deletes a local branch, merged or not
// (git branch -D), and nothing else: never the checked-out branch
// (conflict), an unknown branch is not_found, a bad name invalid_argument,
// and a refused call changes no branch. A backend leaves the remote alone
// even when the request asks for the remote too (that is the gateway's).
// The backend predicts its own deletion (A/A).
func testDeleteBranch(t *testing.T, f Factory) {
	env := NewEnv(t)
	ex := f(t, env)
	p := env.Agent
	ws := scope("del")
	Clone(t, ex, env, p, "del")
	main := Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: "main"}).Head
	Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: "merged", Create: true})
	Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: "unmerged", Create: true})
	Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: ws, Path: "u.txt", Content: "u"})
	unmerged := Do[*backends.CommitResult](t, ex, p, &backends.CommitRequest{Scope: ws, Message: "only here"}).SHA
	Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: "pushed", Create: true})
	pushed := Do[*backends.PushResult](t, ex, p, &backends.PushRequest{Scope: ws}).Head
	Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: "main"})

	local := func() map[string]string {
		t.Helper()
		tips := map[string]string{}
		for _, b := range Do[*backends.BranchesResult](t, ex, p, &backends.BranchesRequest{Scope: ws}).Branches {
			tips[b.Name] = b.Head
		}
		return tips
	}
	before := local()
	want := map[string]string{"main": main, "merged": main, "unmerged": unmerged, "pushed": pushed}
	if !maps.Equal(before, want) {
		t.Fatalf("local branches %v, want %v", before, want)
	}
	for _, c := range []struct {
		name, branch string
		want         backends.Category
		text         string
	}{
		{"current", "main", backends.Conflict, "checked out"},
		{"unknown", "nope", backends.NotFound, `"nope"`},
		{"option", "-D", backends.InvalidArgument, ""},
		{"dotdot", "a..b", backends.InvalidArgument, ""},
		{"HEAD", "HEAD", backends.InvalidArgument, ""},
		{"lock", "merged.lock", backends.InvalidArgument, ""},
		{"space", "mer ged", backends.InvalidArgument, ""},
		{"refs prefix", "refs/heads/merged", backends.InvalidArgument, ""},
		{"empty", "", backends.InvalidArgument, ""},
	} {
		err := Fail(t, ex, p, &backends.DeleteBranchRequest{Scope: ws, Branch: c.branch})
		if backends.CategoryOf(err) != c.want || !strings.Contains(backends.MessageOf(err), c.text) {
			t.Errorf("%s: deleting %q: %v, want %s mentioning %q", c.name, c.branch, err, c.want, c.text)
		}
		if after := local(); !maps.Equal(after, before) {
			t.Fatalf("%s: a refused delete_branch changed the branches: %v, was %v", c.name, after, before)
		}
	}

	pr, canPredict := ex.(backends.Predictor)
	del := func(branch string, remote bool, head string) {
		t.Helper()
		req := &backends.DeleteBranchRequest{Scope: ws, Branch: branch, Remote: remote}
		res := Do[*backends.DeleteBranchResult](t, ex, p, req)
		if res.Branch != branch || !res.Local || res.Head != head || res.Remote || res.RestoreID != "" {
			t.Fatalf("deleting %s: %+v, want local at %s and no remote deletion (the backend's part is local)", branch, res, head)
		}
		if _, ok := local()[branch]; ok {
			t.Fatalf("branch %s is still there after delete_branch", branch)
		}
		if !canPredict {
			return
		}
		pred, err := pr.Predict(Ctx(t), req, res)
		if err != nil || pred.Stale != "" || !maps.Equal(pred.Expected, pred.Found) {
			t.Fatalf("prediction of deleting %s: %+v, %v", branch, pred, err)
		}
	}
	del("merged", false, main)
	del("unmerged", false, unmerged) // not merged anywhere: deleted all the same
	del("pushed", true, pushed)      // remote: true is the gateway's to serve
	if got := env.RemoteRef(t, "refs/heads/pushed"); got != pushed {
		t.Fatalf("a backend's delete_branch changed the remote's branch: %q, was %s", got, pushed)
	}
	if got := slices.Sorted(maps.Keys(local())); !slices.Equal(got, []string{"main"}) {
		t.Fatalf("left %v, want only main", got)
	}
	WantCategory(t, Fail(t, ex, p, &backends.DeleteBranchRequest{Scope: ws, Branch: "merged"}), backends.NotFound)
	WantCategory(t, Fail(t, ex, env.Agent2, &backends.DeleteBranchRequest{Scope: scope("nowhere"), Branch: "x"}), backends.NotFound)
}
