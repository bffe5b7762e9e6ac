package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// realFlow runs a whole agent session through r, waiting after each call
// for its shadow comparison, and returns the comparisons by operation.
func realFlow(t *testing.T, r *Router, c *collected, env *backendtest.Env) map[backends.Op][]canary.Entry {
	t.Helper()
	steps := []backends.Request{
		&backends.CloneRequest{URL: env.RepoURL},
		&backends.WriteFileRequest{Path: "notes/a.txt", Content: "a\n"},
		&backends.StatusRequest{},
		&backends.CommitRequest{Message: "Add notes"},
		&backends.CheckoutRequest{Branch: "topic", Create: true},
		&backends.WriteFileRequest{Path: "README.md", Content: "changed\n"},
		&backends.DiffRequest{},
		&backends.CommitRequest{Message: "Change the README", Paths: []string{"README.md"}},
		&backends.PushRequest{},
		&backends.LogRequest{},
		&backends.DeleteFileRequest{Path: "notes/a.txt"},
		&backends.CommitRequest{Message: "Drop the notes"},
		&backends.PullRequest{Mode: "merge"},
		&backends.BranchesRequest{Remote: true},
		&backends.ReadFileRequest{Path: "src/main.go"},
	}
	out := map[backends.Op][]canary.Entry{}
	for i, step := range steps {
		*step.GetScope() = backends.Scope{Principal: env.Agent, Workspace: "real"}
		if _, err := r.Execute(backendtest.Ctx(t), step); err != nil {
			t.Fatalf("step %d %s: %v", i, step.Op(), err)
		}
		obs := c.wait(t, 1)
		o := obs[len(obs)-1]
		out[o.Op] = append(out[o.Op], o)
	}
	return out
}

// TestAAOnRealGitFindsNoMismatch calibrates the noise: Approach 1 shadowed
// by itself, reads mirrored and writes predicted on a real repository,
// gives a match for every call.
func TestAAOnRealGitFindsNoMismatch(t *testing.T) {
	env := backendtest.NewEnv(t)
	a1 := backendtest.NewApproach1(t, env)
	r, c := shadowRouter(t, a1, a1, ShadowConfig{Self: true})
	pushes := env.Remote.Pushes("demo")
	for op, obs := range realFlow(t, r, c, env) {
		for _, o := range obs {
			if o.Outcome != "match" {
				t.Errorf("%s: %+v", op, o)
			}
		}
	}
	if n := env.Remote.Pushes("demo") - pushes; n != 1 {
		t.Fatalf("%d pushes reached the remote, want the agent's 1", n)
	}
}

// messageMangler is a shadow backend with an injected behaviour
// difference: it would end every commit message with a newline.
type messageMangler struct{ inner backends.Predictor }

func (m messageMangler) Execute(context.Context, backends.Request) (backends.Result, error) {
	return nil, backends.Errorf(backends.Internal, "the shadow executed a call")
}

func (m messageMangler) Predict(ctx context.Context, req backends.Request, primary backends.Result) (*backends.Prediction, error) {
	if c, ok := req.(*backends.CommitRequest); ok {
		mangled := *c
		mangled.Message += "\n"
		req = &mangled
	}
	return m.inner.Predict(ctx, req, primary)
}

// TestInjectedDifferenceShowsAsMismatch: a shadow that would write commit
// messages differently is caught on every commit with a readable diff
// naming the commit id, and on nothing else.
func TestInjectedDifferenceShowsAsMismatch(t *testing.T) {
	env := backendtest.NewEnv(t)
	a1 := backendtest.NewApproach1(t, env)
	r, c := shadowRouter(t, a1, messageMangler{a1}, ShadowConfig{})
	for op, obs := range realFlow(t, r, c, env) {
		for _, o := range obs {
			switch {
			case op == backends.OpCommit:
				if o.Outcome != "mismatch" || !strings.Contains(o.Detail, "message: primary \"") || !strings.Contains(o.Detail, "sha: primary \"") || strings.Contains(o.Detail, "tree") {
					t.Errorf("commit: %+v", o)
				}
			case op.IsRead():
				if o.Outcome != "shadow_error" { // the mangler executes nothing
					t.Errorf("%s: %+v", op, o)
				}
			case o.Outcome != "match":
				t.Errorf("%s: %+v", op, o)
			}
		}
	}
}
