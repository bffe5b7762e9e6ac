package backendtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// protectHook refuses updates of refs/heads/protected the way GitHub
// refuses a protected branch.
const protectHook = `#!/bin/sh
while read old new ref; do
  if [ "$ref" = refs/heads/protected ]; then
    echo "GH006: Protected branch update failed for $ref." >&2
    exit 1
  fi
done
exit 0
`

// testPushRefusals: a push the remote refuses is forbidden (an agent's
// mistake, not the backend's failure), a non-fast-forward push is a
// conflict, and neither changes the remote.
func testPushRefusals(t *testing.T, f Factory) {
	env := NewEnv(t)
	hook := filepath.Join(env.RemoteFS, "demo.git", "hooks", "pre-receive")
	if err := os.WriteFile(hook, []byte(protectHook), 0o755); err != nil {
		t.Fatal(err)
	}
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "push")
	Do[*backends.CheckoutResult](t, ex, env.Agent, &backends.CheckoutRequest{Scope: scope("push"), Branch: "protected", Create: true})
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("push"), Path: "p.txt", Content: "p"})
	Do[*backends.CommitResult](t, ex, env.Agent, &backends.CommitRequest{Scope: scope("push"), Message: "p"})
	WantCategory(t, Fail(t, ex, env.Agent, &backends.PushRequest{Scope: scope("push")}), backends.Forbidden)
	if got := env.RemoteRef(t, "refs/heads/protected"); got != "" {
		t.Fatalf("refused push created the branch at %s", got)
	}
	Do[*backends.CheckoutResult](t, ex, env.Agent, &backends.CheckoutRequest{Scope: scope("push"), Branch: "main"})
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("push"), Path: "mine.txt", Content: "m"})
	Do[*backends.CommitResult](t, ex, env.Agent, &backends.CommitRequest{Scope: scope("push"), Message: "mine"})
	theirs, err := env.Remote.CommitFile(Ctx(t), "demo", "main", "theirs.txt", "t", "theirs")
	if err != nil {
		t.Fatal(err)
	}
	WantCategory(t, Fail(t, ex, env.Agent, &backends.PushRequest{Scope: scope("push")}), backends.Conflict)
	if got := env.RemoteRef(t, "refs/heads/main"); got != theirs {
		t.Fatalf("non-fast-forward push moved main to %s", got)
	}
}
