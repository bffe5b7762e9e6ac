package approach2_test

import (
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestRetryOfAnAbandonedEntryIsSettledAtOnce: a write another replica left
// started when it was killed (its entry planned, its lease gone) is settled
// by the first same-key retry that gets the workspace lock, as crash
// reconciliation settles it, instead of that retry holding the lock while it
// waits for the entry (which only reconciliation, needing the same lock,
// could settle): the pushed commit that reached the remote is reported
// pushed, without pushing again; an interrupted commit is reported unknown,
// without committing again.
func TestRetryOfAnAbandonedEntryIsSettledAtOnce(t *testing.T) {
	env := backendtest.NewEnv(t)
	r := newRig(t, env, &lock.Memory{})
	r.reconfigure(t, func(c *approach2.OnceConfig) { c.WaitForDuplicate = 10 * time.Minute }) // a wait would outlast the test
	a := env.Agent
	sha := r.commitOn(t, r.once, "ws", "abandoned", "pushed by the dead replica\n")
	push := &backends.PushRequest{Scope: r.scope("ws", "push-1")}
	pushEntry := r.leaveStarted(t, push)
	backendtest.Do[*backends.PushResult](t, r.engine, a, &backends.PushRequest{Scope: r.scope("ws", "")}) // it reached the remote
	pushes := env.Remote.Pushes("demo")

	got := backendtest.Do[*backends.PushResult](t, r.once, a, &backends.PushRequest{Scope: r.scope("ws", "push-1")})
	if got.Head != sha || env.Remote.Pushes("demo") != pushes {
		t.Fatalf("retry of the abandoned push: %+v, remote pushes %d → %d", got, pushes, env.Remote.Pushes("demo"))
	}
	if e, err := r.j.Get(t.Context(), pushEntry.ID); err != nil || e.State != journal.Succeeded || !e.Reconciled {
		t.Fatalf("the abandoned push's entry: %+v %v", e, err)
	}

	backendtest.Do[*backends.WriteFileResult](t, r.once, a, &backends.WriteFileRequest{Scope: r.scope("ws", ""), Path: "b.txt", Content: "b\n"})
	commit := &backends.CommitRequest{Scope: r.scope("ws", "commit-1"), Message: "interrupted"}
	commitEntry := r.leaveStarted(t, commit)
	_, err := r.once.Execute(backendtest.Ctx(t), &backends.CommitRequest{Scope: r.scope("ws", "commit-1"), Message: "interrupted"})
	if backends.CategoryOf(err) != backends.Conflict {
		t.Fatalf("retry of the abandoned commit: %v, want conflict (unknown outcome)", err)
	}
	if e, err := r.j.Get(t.Context(), commitEntry.ID); err != nil || e.State != journal.Unknown {
		t.Fatalf("the abandoned commit's entry: %+v %v", e, err)
	}
	if st := backendtest.Do[*backends.StatusResult](t, r.once, a, &backends.StatusRequest{Scope: r.scope("ws", "")}); st.Clean {
		t.Fatalf("the interrupted commit ran on the retry: %+v", st)
	}
}
