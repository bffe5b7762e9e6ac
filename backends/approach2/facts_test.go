package approach2_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// askedLocker closes asked at the first Acquire once armed.
type askedLocker struct {
	lock.Locker
	mu    sync.Mutex
	asked chan struct{}
}

func (l *askedLocker) arm() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = make(chan struct{})
	return l.asked
}

func (l *askedLocker) Acquire(ctx context.Context, key string) (lock.Lease, error) {
	l.mu.Lock()
	if l.asked != nil {
		close(l.asked)
		l.asked = nil
	}
	l.mu.Unlock()
	return l.Locker.Acquire(ctx, key)
}

// TestServedFactsCrossTheService: through the gRPC service (the engine on
// E2B sandboxes, which bill by the second, behind the exactly-once layer)
// a result carries its cost, a read the write counts it began and ended
// at, and a write that queued behind its workspace's lock that wait.
func TestServedFactsCrossTheService(t *testing.T) {
	env := backendtest.NewEnv(t)
	mem := &lock.Memory{}
	locker := &askedLocker{Locker: mem}
	engine, _ := backendtest.NewE2BEngineWith(t, env, e2bfake.Config{}, lock.Reentrant(mem))
	c := startService(t, backendtest.WithOnce(t, engine, locker, backendtest.NewDirJournal(t)))

	clone := backendtest.Clone(t, c, env, env.Agent, "w")
	if clone.CostUSD <= 0 || clone.WriteSeq == 0 {
		t.Fatalf("clone through the service: cost %v, write count %d", clone.CostUSD, clone.WriteSeq)
	}
	ws := backends.Scope{Workspace: "w"}
	st := backendtest.Do[*backends.StatusResult](t, c, env.Agent, &backends.StatusRequest{Scope: ws})
	if st.ReadFrom != clone.WriteSeq || st.WriteSeq != clone.WriteSeq || st.CostUSD <= 0 || st.Wait != 0 {
		t.Fatalf("status through the service: read from %d, ended at %d, cost %v, wait %v; the clone left %d writes",
			st.ReadFrom, st.WriteSeq, st.CostUSD, st.Wait, clone.WriteSeq)
	}

	held, err := mem.Acquire(t.Context(), approach1.LockKey(sandbox.WorkspaceKey{Project: env.Agent.Project, Name: "w"}))
	if err != nil {
		t.Fatal(err)
	}
	asked := locker.arm()
	done := make(chan *backends.WriteFileResult, 1)
	go func() {
		req := &backends.WriteFileRequest{Scope: ws, Path: "queued.txt", Content: "y"}
		req.Principal = env.Agent
		res, err := backends.Do[*backends.WriteFileResult](backendtest.Ctx(t), c, req)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-asked
	queuedFrom := time.Now()
	backendtest.Do[*backends.StatusResult](t, c, env.Agent, &backends.StatusRequest{Scope: ws}) // reads pass
	queued := time.Since(queuedFrom)
	if err := held.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	wr := <-done
	if wr == nil {
		t.Fatal("the queued write failed")
	}
	if wr.Wait < queued {
		t.Fatalf("queued write's wait %v through the service, shorter than the %v it was seen queued", wr.Wait, queued)
	}
}
