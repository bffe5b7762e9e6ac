package sandbox_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/testkit"
)

// process is one process's view of a shared sandbox directory.
type process struct {
	p *local.Provider
	m *sandbox.Manager
}

func startProcess(t *testing.T, dir string, creator func(sandbox.Provider) sandbox.Creator) *process {
	t.Helper()
	lp, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sandbox.ManagerConfig{Provider: lp, Bindings: sandbox.NewMemoryBindings(), IdleTTL: time.Hour,
		Logger: slog.New(slog.DiscardHandler), KeepOnClose: true}
	if creator != nil {
		cfg.Creator = creator(lp)
	}
	m, err := sandbox.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &process{p: lp, m: m}
}

// exit is what a process's end does to its holds: the kernel drops its
// locks, and its sandboxes stay.
func (pr *process) exit(ctx context.Context, ids ...string) {
	pr.m.Close(ctx)
	for _, id := range ids {
		pr.p.Release(id)
	}
}

// TestRestartAdoptsTheOwnersSandbox: after a restart, an owner's next
// Acquire gets the sandbox it had (with its files), not a new one.
func TestRestartAdoptsTheOwnersSandbox(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	owner := sandbox.Owner{Project: "p"}
	first := startProcess(t, dir, nil)
	info, release, err := first.m.Acquire(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if err := os.WriteFile(filepath.Join(info.Root, "ws", "kept"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	first.exit(ctx, info.ID)

	second := startProcess(t, dir, nil)
	defer second.m.Close(context.WithoutCancel(ctx))
	again, release, err := second.m.Acquire(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if again.ID != info.ID {
		t.Fatalf("after a restart the owner got sandbox %s, want its own %s", again.ID, info.ID)
	}
	if _, err := os.Stat(filepath.Join(again.Root, "ws", "kept")); err != nil {
		t.Errorf("the sandbox's files are gone: %v", err)
	}
	other, release, err := second.m.Acquire(ctx, sandbox.Owner{Project: "q"})
	if err != nil {
		t.Fatal(err)
	}
	release()
	if other.ID == info.ID {
		t.Error("another owner was given p's sandbox")
	}
}

// TestSweepOrphans: warm sandboxes of a killed process are swept by the
// next one; a sandbox that holds a workspace, and sandboxes a live process
// holds, are not.
func TestSweepOrphans(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	var pool *sandbox.Pool
	killed := startProcess(t, dir, func(p sandbox.Provider) sandbox.Creator {
		var err error
		pool, err = sandbox.NewPool(sandbox.PoolConfig{Provider: p, MinIdle: 3, MaxSize: 8, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return pool
	})
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	t.Cleanup(stop) // never before the sweep: a killed process does not drain its pool
	go pool.Run(runCtx)
	testkit.Eventually(t, "the pool is filled", func() bool { return pool.Ready() })
	owned, release, err := killed.m.Acquire(ctx, sandbox.Owner{Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	release()
	if err := os.Mkdir(filepath.Join(owned.Root, "git", "w.git"), 0o700); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the pool is filled again", func() bool { return pool.Ready() })
	all, err := killed.p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live := startProcess(t, dir, nil) // a live neighbour with a sandbox of its own
	mine, release, err := live.m.Acquire(ctx, sandbox.Owner{Project: "r"})
	if err != nil {
		t.Fatal(err)
	}
	release()
	defer live.m.Close(context.WithoutCancel(ctx))
	ids := make([]string, 0, len(all))
	for _, info := range all {
		ids = append(ids, info.ID)
	}
	killed.exit(ctx, ids...) // SIGKILL: the pool's sandboxes stay behind, held by nobody

	next := startProcess(t, dir, nil)
	defer next.m.Close(context.WithoutCancel(ctx))
	swept := next.m.SweepOrphans(ctx)
	if want := len(all) - 1; swept != want {
		t.Errorf("swept %d sandboxes, want %d (every warm one of the killed process)", swept, want)
	}
	left, err := next.p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, info := range left {
		kept[info.ID] = true
	}
	if !kept[owned.ID] {
		t.Error("the sandbox holding a workspace was swept")
	}
	if !kept[mine.ID] {
		t.Error("a live process's sandbox was swept")
	}
	if len(left) != 2 {
		t.Errorf("%d sandboxes left, want 2", len(left))
	}
	if owner := findOwner(t, next.p, owned.ID); owner.Project != "p" {
		t.Errorf("the pool sandbox handed to p records owner %v", owner)
	}
}

func findOwner(t *testing.T, p *local.Provider, id string) sandbox.Owner {
	t.Helper()
	found, err := p.Find(t.Context(), sandbox.Owner{Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range found {
		if info.ID == id {
			return info.Owner
		}
	}
	return sandbox.Owner{}
}
