package branches

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// localBranches is a backend that keeps a workspace's local branches and
// serves delete_branch on them, refusing the checked-out one.
type localBranches struct {
	current string
	tips    map[string]string
	calls   []string // the branches it was asked to delete
}

func (b *localBranches) Execute(_ context.Context, req backends.Request) (backends.Result, error) {
	r, ok := req.(*backends.DeleteBranchRequest)
	if !ok {
		return nil, backends.Errorf(backends.Internal, "unexpected %s", req.Op())
	}
	b.calls = append(b.calls, r.Branch)
	sha, ok := b.tips[r.Branch]
	switch {
	case r.Branch == b.current:
		return nil, backends.Errorf(backends.Conflict, "branch %q is checked out", r.Branch)
	case !ok:
		return nil, backends.Errorf(backends.NotFound, "there is no local branch %q", r.Branch)
	}
	delete(b.tips, r.Branch)
	return &backends.DeleteBranchResult{Served: backends.Served{Backend: "fake"}, Branch: r.Branch, Local: true, Head: sha}, nil
}

// TestDeleteBranchTool: with remote (the default) the guard refuses, before
// the backend deletes anything, a protected branch, another agent's, one
// gitgate never pushed and one with commits on top; it deletes an own
// branch locally and on the remote, recorded (restorable: the e2e test
// restores one), and the
// remote's alone when the workspace has no local branch; a retry with the
// first call's idempotency key gets its deletion back. Without remote
// only the local branch goes, whoever pushed it.
func TestDeleteBranchTool(t *testing.T) {
	f := newFixture(t)
	own := f.commit("agent/a1/mine", "mine")
	f.pushed("agent/a1/mine", own, f.now)
	gone := f.commit("agent/a1/gone-here", "pushed, then deleted locally")
	f.pushed("agent/a1/gone-here", gone, f.now)
	f.pushed("agent/a1/taken", f.commit("agent/a1/taken", "mine"), f.now)
	taken := f.commit("agent/a1/taken", "someone else's on top")
	theirs := f.commit("agent/a2/theirs", "theirs")
	if err := f.store.RecordPush(t.Context(), Pushed{Project: "p", Agent: "a2", URL: f.url, Branch: "agent/a2/theirs", Commit: theirs, At: f.now}); err != nil {
		t.Fatal(err)
	}
	human := f.commit("feature/human", "a person's branch")
	main := f.ref("main")
	local := &localBranches{current: "main", tips: map[string]string{"main": main, "agent/a1/mine": own, "agent/a1/taken": taken,
		"agent/a2/theirs": theirs, "feature/human": human, "scratch": main}}
	g := NewGuard(GuardConfig{Next: local, Git: f.git, Store: f.store, Metrics: NewMetrics(nil), Now: func() time.Time { return f.now },
		Policy: Policy{Default: Rules{Protected: DefaultProtected}},
		Workspace: func(_ context.Context, _ backends.Principal, name string) (Workspace, bool, error) {
			return Workspace{URL: f.url, Branch: "main"}, name == "w", nil
		}})
	delKey := func(branch string, remote bool, key string) (*backends.DeleteBranchResult, error) {
		return backends.Do[*backends.DeleteBranchResult](t.Context(), g, &backends.DeleteBranchRequest{
			Scope: backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a1"}, Workspace: "w", IdempotencyKey: key}, Branch: branch, Remote: remote})
	}
	del := func(branch string, remote bool) (*backends.DeleteBranchResult, error) {
		return delKey(branch, remote, "")
	}
	for _, c := range []struct {
		branch string
		want   backends.Category
	}{
		{"main", backends.Forbidden},            // protected
		{"feature/human", backends.Forbidden},   // gitgate never pushed it
		{"agent/a2/theirs", backends.Forbidden}, // another agent's
		{"agent/a1/taken", backends.Conflict},   // someone pushed on top
	} {
		if _, err := del(c.branch, true); backends.CategoryOf(err) != c.want {
			t.Errorf("deleting %s: %v, want %s", c.branch, err, c.want)
		}
	}
	if len(local.calls) != 0 {
		t.Fatalf("refused deletions reached the backend: %v", local.calls)
	}
	for branch, sha := range map[string]string{"main": main, "feature/human": human, "agent/a2/theirs": theirs, "agent/a1/taken": taken} {
		if f.ref(branch) != sha || local.tips[branch] != sha {
			t.Errorf("%s moved: remote %q, local %q, want %s", branch, f.ref(branch), local.tips[branch], sha)
		}
	}

	res, err := delKey("agent/a1/mine", true, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	dels, _ := f.store.Deletions(t.Context())
	if !res.Local || res.Head != own || !res.Remote || len(dels) != 1 || res.RestoreID != dels[0].ID || dels[0].Reason != "agent" || dels[0].By != "a1" {
		t.Fatalf("result %+v, deletions %+v", res, dels)
	}
	if f.ref("agent/a1/mine") != "" || local.tips["agent/a1/mine"] != "" {
		t.Fatal("the branch is still there")
	}
	// A retry of the call (same key) is answered with its deletion; another
	// call is refused: the branch is no longer one gitgate pushed.
	if again, err := delKey("agent/a1/mine", true, "key-1"); err != nil || !again.Remote || again.RestoreID != res.RestoreID {
		t.Fatalf("retry with the same key: %+v, %v", again, err)
	}
	for _, key := range []string{"key-2", ""} {
		if _, err := delKey("agent/a1/mine", true, key); backends.CategoryOf(err) != backends.Forbidden {
			t.Fatalf("another call (key %q) deleting the deleted branch: %v, want forbidden", key, err)
		}
	}

	res, err = del("agent/a1/gone-here", true)
	if err != nil || res.Local || !res.Remote || f.ref("agent/a1/gone-here") != "" {
		t.Fatalf("deleting a branch only the remote has: %+v, %v", res, err)
	}

	// The backend refuses the checked-out branch: the remote keeps it.
	f.pushed("main-copy", main, f.now) // an own, unprotected branch at main's commit
	f.setRef("main-copy", main)
	local.tips["main-copy"], local.current = main, "main-copy"
	if _, err := del("main-copy", true); backends.CategoryOf(err) != backends.Conflict || f.ref("main-copy") != main {
		t.Fatalf("deleting the checked-out branch: %v; remote at %q", err, f.ref("main-copy"))
	}

	calls := len(local.calls)
	if res, err := del("feature/human", false); err != nil || !res.Local || res.Remote || f.ref("feature/human") != human {
		t.Fatalf("local-only deletion: %+v, %v; remote at %q", res, err, f.ref("feature/human"))
	}
	if res, err := del("scratch", false); err != nil || !res.Local || res.Remote {
		t.Fatalf("deleting a branch never pushed: %+v, %v", res, err)
	}
	if got := local.calls[calls:]; !slices.Equal(got, []string{"feature/human", "scratch"}) {
		t.Fatalf("backend calls %v", got)
	}
	if _, err := del("scratch", true); backends.CategoryOf(err) != backends.Forbidden {
		t.Fatalf("remote deletion of a branch gitgate never pushed: %v, want forbidden", err)
	}
}
