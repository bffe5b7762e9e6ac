package e2b_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

func onlySandbox(t *testing.T, s *e2bfake.Server) string {
	t.Helper()
	sbs := s.Sandboxes()
	if len(sbs) != 1 {
		t.Fatalf("%d sandboxes on E2B, want 1", len(sbs))
	}
	return sbs[0].ID
}

func ws(name string) backends.Scope { return backends.Scope{Workspace: name} }

// TestDeadSandboxIsReplaced: a sandbox that dies fails the operation that
// finds it (unavailable, saying so); the next operation gets a new sandbox
// with the workspace cloned again on its branch — nothing was unsaved.
func TestDeadSandboxIsReplaced(t *testing.T) {
	t.Parallel()
	env, s, ex := onE2B(t, e2bfake.Config{})
	p := env.Agent
	backendtest.Clone(t, ex, env, p, "w")
	backendtest.Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: ws("w"), Branch: "topic", Create: true})
	backendtest.Do[*backends.PushResult](t, ex, p, &backends.PushRequest{Scope: ws("w")}) // topic is on the remote: nothing unsaved
	dead := onlySandbox(t, s)
	s.Kill(dead)
	err := backendtest.Fail(t, ex, p, &backends.StatusRequest{Scope: ws("w")})
	wantCategory(t, err, backends.Unavailable)
	if !strings.Contains(err.Error(), "next operation replaces") {
		t.Fatalf("the failure does not say what happens next: %v", err)
	}
	st := backendtest.Do[*backends.StatusResult](t, ex, p, &backends.StatusRequest{Scope: ws("w")})
	if st.Branch != "topic" || !st.Clean {
		t.Fatalf("replaced workspace: %+v", st)
	}
	if now := onlySandbox(t, s); now == dead {
		t.Fatal("the dead sandbox is still the workspace's")
	}
	r := backendtest.Do[*backends.ReadFileResult](t, ex, p, &backends.ReadFileRequest{Scope: ws("w"), Path: "README.md"})
	if r.Content != backendtest.SeedFiles["README.md"] {
		t.Fatalf("README after the re-clone: %q", r.Content)
	}
}

// TestDeadSandboxWithUnsavedWorkIsReported: when the dead sandbox held
// work that was not pushed, the workspace is not silently re-cloned: the
// agent is told what was lost, and may clone again.
func TestDeadSandboxWithUnsavedWorkIsReported(t *testing.T) {
	t.Parallel()
	env, s, ex := onE2B(t, e2bfake.Config{})
	p := env.Agent
	backendtest.Clone(t, ex, env, p, "w")
	backendtest.Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: ws("w"), Path: "a.txt", Content: "a"})
	backendtest.Do[*backends.CommitResult](t, ex, p, &backends.CommitRequest{Scope: ws("w"), Message: "not pushed"})
	backendtest.Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: ws("w"), Path: "b.txt", Content: "b"})
	s.Kill(onlySandbox(t, s))
	wantCategory(t, backendtest.Fail(t, ex, p, &backends.StatusRequest{Scope: ws("w")}), backends.Unavailable)
	err := backendtest.Fail(t, ex, p, &backends.StatusRequest{Scope: ws("w")})
	wantCategory(t, err, backends.NotFound)
	if msg := err.Error(); !strings.Contains(msg, "uncommitted changes") || !strings.Contains(msg, "commits not pushed on main") {
		t.Fatalf("the agent is not told what was lost: %v", err)
	}
	backendtest.Clone(t, ex, env, p, "w") // and may start again
}

// TestStreamCutAndCapacity: a command stream cut before its end frame is
// unavailable and says the command may have run, the workspace stays
// usable; at E2B's concurrency cap a new sandbox is rate_limited (after
// retries that honour Retry-After) and nothing is left bound.
func TestStreamCutAndCapacity(t *testing.T) {
	t.Parallel()
	env, s, ex := onE2B(t, e2bfake.Config{MaxConcurrent: 1, RetryAfter: 1})
	backendtest.Clone(t, ex, env, env.Agent, "w")
	s.CutStreamsAfter(1)
	err := backendtest.Fail(t, ex, env.Agent, &backends.LogRequest{Scope: ws("w")})
	wantCategory(t, err, backends.Unavailable)
	if !strings.Contains(err.Error(), "may have run") {
		t.Fatalf("%v", err)
	}
	s.CutStreamsAfter(0)
	backendtest.Do[*backends.StatusResult](t, ex, env.Agent, &backends.StatusRequest{Scope: ws("w")})

	err = backendtest.Fail(t, ex, env.Stranger, &backends.CloneRequest{Scope: ws("other"), URL: env.RepoURL})
	wantCategory(t, err, backends.RateLimited)
	wantCategory(t, backendtest.Fail(t, ex, env.Stranger, &backends.StatusRequest{Scope: ws("other")}), backends.NotFound)
}

// TestSlowEnvdPastTheDeadline: an envd that does not even answer within a
// command's deadline (and its own, later one) gives a timeout, not a hang.
func TestSlowEnvdPastTheDeadline(t *testing.T) {
	t.Parallel()
	s := fake(t, e2bfake.Config{})
	p := newProviderWith(t, s, func(c *e2b.ProviderConfig) { c.KillGrace, c.StopWait = 100*time.Millisecond, time.Second })
	info, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s.SetHook(func(_, path string) {
		if path == "/process.Process/Start" {
			select { // held until the test ends (at most a minute)
			case <-release:
			case <-time.After(time.Minute):
			}
		}
	})
	_, err = p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Path: "/bin/true", Timeout: 200 * time.Millisecond})
	wantCategory(t, err, backends.Timeout)
}

// TestSandboxDiesMidOperation: the sandbox dies between the two commands
// of a commit (after add): the commit fails as unavailable, and the next
// operation reports the uncommitted change as lost.
func TestSandboxDiesMidOperation(t *testing.T) {
	t.Parallel()
	env, s, ex := onE2B(t, e2bfake.Config{})
	p := env.Agent
	backendtest.Clone(t, ex, env, p, "w")
	backendtest.Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: ws("w"), Path: "a.txt", Content: "a"})
	starts := 0
	s.SetHook(func(id, path string) {
		if path == "/process.Process/Start" {
			if starts++; starts == 1 {
				s.Kill(id) // the add runs; the commit after it finds the sandbox gone
			}
		}
	})
	err := backendtest.Fail(t, ex, p, &backends.CommitRequest{Scope: ws("w"), Message: "never made"})
	wantCategory(t, err, backends.Unavailable)
	s.SetHook(nil)
	err = backendtest.Fail(t, ex, p, &backends.StatusRequest{Scope: ws("w")})
	wantCategory(t, err, backends.NotFound)
	if !strings.Contains(err.Error(), "uncommitted changes") {
		t.Fatalf("%v", err)
	}
	if env.Remote.Pushes("demo") != 0 {
		t.Fatal("something reached the remote")
	}
}

// TestReleaseWhenTheSandboxIsGone: releasing a workspace whose sandbox died
// does not clone it again first; with unsaved work it needs force.
func TestReleaseWhenTheSandboxIsGone(t *testing.T) {
	t.Parallel()
	env, s, ex := onE2B(t, e2bfake.Config{})
	p := env.Agent
	backendtest.Clone(t, ex, env, p, "clean")
	backendtest.Clone(t, ex, env, p, "dirty")
	backendtest.Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: ws("dirty"), Path: "a.txt", Content: "a"})
	s.Kill(onlySandbox(t, s))
	fetches := env.Remote.Requests()
	backendtest.Do[*backends.ReleaseWorkspaceResult](t, ex, p, &backends.ReleaseWorkspaceRequest{Scope: ws("clean")})
	err := backendtest.Fail(t, ex, p, &backends.ReleaseWorkspaceRequest{Scope: ws("dirty")})
	wantCategory(t, err, backends.Conflict)
	if !strings.Contains(err.Error(), "uncommitted changes") {
		t.Fatalf("%v", err)
	}
	backendtest.Do[*backends.ReleaseWorkspaceResult](t, ex, p, &backends.ReleaseWorkspaceRequest{Scope: ws("dirty"), Force: true})
	if n := len(env.Remote.Requests()) - len(fetches); n != 0 {
		t.Fatalf("releasing reached the remote %d times (a re-clone)", n)
	}
	ls := backendtest.Do[*backends.ListWorkspacesResult](t, ex, p, &backends.ListWorkspacesRequest{})
	if len(ls.Workspaces) != 0 {
		t.Fatalf("workspaces left: %+v", ls.Workspaces)
	}
}
