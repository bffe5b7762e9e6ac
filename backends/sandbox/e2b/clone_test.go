package e2b_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// unstoppable is the E2B provider whose git clone ends as a call whose
// command could not be confirmed stopped; it records the removals asked
// for after that.
type unstoppable struct {
	*e2b.Provider
	mu       sync.Mutex
	failed   bool
	removals []string
}

func (u *unstoppable) Exec(ctx context.Context, id string, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	if slices.Contains(req.Args, "clone") {
		u.mu.Lock()
		u.failed = true
		u.mu.Unlock()
		return sandbox.ExecResult{}, backends.Errorf(backends.Unavailable, "e2b: the call was cancelled; the command may still be running: %w", sandbox.ErrMayStillRun)
	}
	return u.Provider.Exec(ctx, id, req)
}

func (u *unstoppable) RemoveAll(ctx context.Context, id, path string) error {
	u.mu.Lock()
	if u.failed && !strings.Contains(path, "/tmp/.credential-") { // the credential file is gitgate's, not the workspace
		u.removals = append(u.removals, path)
	}
	u.mu.Unlock()
	return u.Provider.RemoveAll(ctx, id, path)
}

// TestFailedCloneThatMayStillRunIsNotRemoved: when the provider cannot
// confirm that a failed clone's git stopped, Approach 1 does not remove
// (and so never re-clones into) what that git may still be writing.
func TestFailedCloneThatMayStillRunIsNotRemoved(t *testing.T) {
	t.Parallel()
	env := backendtest.NewEnv(t)
	s := fake(t, e2bfake.Config{})
	env.SandboxRoots = append(env.SandboxRoots, s.Root())
	u := &unstoppable{Provider: newProvider(t, s)}
	ex := backendtest.NewEngineOn(t, env, u, &lock.Memory{}, nil)
	err := backendtest.Fail(t, ex, env.Agent, &backends.CloneRequest{Scope: ws("w"), URL: env.RepoURL})
	if !errors.Is(err, sandbox.ErrMayStillRun) {
		t.Fatalf("error %v: want it marked ErrMayStillRun", err)
	}
	if len(u.removals) != 0 {
		t.Fatalf("removed beside a git that may still run: %q", u.removals)
	}
}
