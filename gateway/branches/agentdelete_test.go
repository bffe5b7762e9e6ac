package branches

import (
	"context"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

func TestAgentDeletesOnlyItsOwnBranches(t *testing.T) {
	f := newFixture(t)
	m := NewMetrics(nil)
	g := NewGuard(GuardConfig{Next: &fakeBackend{}, Git: f.git, Store: f.store, Metrics: m, Now: func() time.Time { return f.now },
		Policy: Policy{Default: Rules{Protected: DefaultProtected}},
		Workspace: func(context.Context, backends.Principal, string) (Workspace, bool, error) {
			return Workspace{URL: f.url}, true, nil
		}})
	own := f.commit("agent/a1/mine", "mine")
	f.pushed("agent/a1/mine", own, f.now)
	f.pushed("agent/a1/taken", f.commit("agent/a1/taken", "mine"), f.now)
	taken := f.commit("agent/a1/taken", "someone else's on top")
	theirs := f.commit("agent/a2/theirs", "theirs")
	if err := f.store.RecordPush(t.Context(), Pushed{Project: "p", Agent: "a2", URL: f.url, Branch: "agent/a2/theirs", Commit: theirs, At: f.now}); err != nil {
		t.Fatal(err)
	}
	human := f.commit("feature/human", "a person's branch")
	del := func(agent, branch string) error {
		_, err := g.DeleteBranch(t.Context(), DeleteRequest{Principal: backends.Principal{Project: "p", Agent: agent}, Workspace: "w", Branch: branch})
		return err
	}
	for _, c := range []struct {
		agent, branch string
		want          backends.Category
	}{
		{"a1", "main", backends.Forbidden},
		{"a1", "feature/human", backends.Forbidden},   // not pushed by gitgate
		{"a1", "agent/a2/theirs", backends.Forbidden}, // another agent's
		{"a1", "agent/a1/taken", backends.Conflict},   // someone pushed on top
	} {
		if err := del(c.agent, c.branch); backends.CategoryOf(err) != c.want {
			t.Errorf("%s deleting %s: got %v, want %s", c.agent, c.branch, err, c.want)
		}
	}
	for branch, sha := range map[string]string{"main": f.ref("main"), "feature/human": human, "agent/a2/theirs": theirs, "agent/a1/taken": taken} {
		if got := f.ref(branch); got != sha || sha == "" {
			t.Errorf("%s moved to %q", branch, got)
		}
	}
	if err := del("a1", "agent/a1/mine"); err != nil {
		t.Fatal(err)
	}
	if f.ref("agent/a1/mine") != "" {
		t.Fatal("the agent's branch is still on the remote")
	}
	dels, _ := f.store.Deletions(t.Context())
	if len(dels) != 1 || dels[0].By != "a1" || dels[0].Reason != "agent" || dels[0].Commit != own {
		t.Fatalf("deletions: %+v", dels)
	}
	if _, err := Restore(t.Context(), f.store, f.git, dels[0].ID, f.now); err != nil || f.ref("agent/a1/mine") != own {
		t.Fatalf("restore: %v", err)
	}
}
