package backendtest

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/lock/filelock"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// NewApproach1Once is Approach 1 as the gateway runs it on one machine
// without PostgreSQL or Redis: the engine (NewEngine, local sandboxes)
// behind the exactly-once layer (approach2.Once) with the embedded journal
// (journal.OpenDir) and workspace locks in lock files (filelock), both in
// temporary directories. Idempotency keys, limits and categories are then
// those of Approach 2. It also makes the engine's shadow predictions.
func NewApproach1Once(t testing.TB, env *Env) backends.Executor {
	t.Helper()
	locker := NewFileLocker(t)
	engine := NewEngine(t, env, lock.Reentrant(locker), nil)
	return WithOnce(t, engine, locker, NewDirJournal(t))
}

// WithOnce wraps engine in approach2.Once journaling in j. engine must
// have been built with lock.Reentrant(locker), so that it reuses the lease
// Once holds. The result runs reads directly, writes exactly once, and
// makes shadow predictions with engine (a prediction changes nothing, so
// it is not journaled).
func WithOnce(t testing.TB, engine *approach1.Executor, locker lock.Locker, j journal.Store) backends.Executor {
	t.Helper()
	once, err := approach2.NewOnce(approach2.OnceConfig{Engine: engine, Locker: locker, Journal: j,
		LockKey: LockKey, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return struct {
		backends.Executor
		backends.Predictor
	}{once, engine}
}

// LockKey is the workspace lock key of a request, the one the engine takes
// (sandboxes shared per project, as NewEngine configures them).
func LockKey(req backends.Request) string {
	s := req.GetScope()
	return approach1.LockKey(sandbox.WorkspaceKey{Project: s.Principal.Project, Name: s.Workspace})
}

// NewDirJournal opens the embedded journal in a temporary directory.
func NewDirJournal(t testing.TB) *journal.Dir {
	t.Helper()
	j, err := journal.OpenDir(filepath.Join(t.TempDir(), "journal"), journal.DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// NewFileLocker returns file locks in a temporary directory.
func NewFileLocker(t testing.TB) *filelock.Locker {
	t.Helper()
	l, err := filelock.New(filepath.Join(t.TempDir(), "locks"), filelock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}
