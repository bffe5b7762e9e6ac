package canary

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// blockingStore blocks every Append until released.
type blockingStore struct{ release chan struct{} }

func (s blockingStore) Append(context.Context, []Entry) error { <-s.release; return nil }

// TestLedgerNeverBlocksTheCaller: with the store stuck and the buffer full,
// Record returns at once and counts what it drops.
func TestLedgerNeverBlocksTheCaller(t *testing.T) {
	store := blockingStore{release: make(chan struct{})}
	l := NewLedger(store, LedgerConfig{Buffer: 4, FlushEvery: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(t.Context())
	go l.Run(ctx)
	start := time.Now()
	for range 10000 {
		l.Record(Entry{Kind: "call", Op: "status"})
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("recording 10,000 entries with a stuck store took %s", took)
	}
	if testutil.ToFloat64(l.dropped) == 0 {
		t.Fatal("nothing was counted as dropped although the store was stuck")
	}
	close(store.release)
	cancel()
	l.Wait()
}

func TestFileStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := NewLedger(NewFileStore(path), LedgerConfig{FlushEvery: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(t.Context())
	go l.Run(ctx)
	at := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	for i := range 3 {
		l.Record(Entry{At: at.Add(time.Duration(i) * time.Minute), Kind: "call", Op: "push", Routed: "approach2", Backend: "approach1", FellBack: true})
	}
	cancel()
	l.Wait()
	got, err := ReadFile(path, at.Add(time.Minute))
	if err != nil || len(got) != 2 || !got[0].FellBack || got[1].At != at.Add(2*time.Minute) {
		t.Fatalf("read back %+v %v", got, err)
	}
}

type applied struct {
	mu      sync.Mutex
	reasons map[string][]string
}

func (a *applied) apply(op, reason string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reasons[op] = append(a.reasons[op], reason)
	return nil
}

func (a *applied) get(op string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.reasons[op]...)
}

func newWatcher(a *applied) *Rollback {
	return NewRollback(RollbackConfig{Window: time.Minute, MinCalls: 20, Apply: a.apply, Logger: slog.New(slog.DiscardHandler)})
}

func feed(r *Rollback, op string, n, failEvery int, d time.Duration) {
	at := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	for i := range n {
		r.Observe(Call{At: at.Add(time.Duration(i) * time.Millisecond), Op: op, Routed: "approach2",
			Failed: failEvery > 0 && i%failEvery == 0, Duration: d})
	}
}

func waitReasons(t *testing.T, a *applied, op string, want int) []string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if r := a.get(op); len(r) >= want {
			return r
		}
	}
	return a.get(op)
}

func TestRollbackOnErrorRate(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	r := newWatcher(a)
	feed(r, "push", 100, 5, 10*time.Millisecond) // 20 % failures
	got := waitReasons(t, a, "push", 1)
	if len(got) != 1 || !strings.Contains(got[0], "error rate 20.0% > 5.0%") {
		t.Fatalf("rollbacks %q", got)
	}
}

func TestRollbackOnLatency(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	feed(newWatcher(a), "clone", 40, 0, 3*time.Second)
	if got := waitReasons(t, a, "clone", 1); len(got) != 1 || !strings.Contains(got[0], "P95 latency 3s > 2s") {
		t.Fatalf("rollbacks %q", got)
	}
}

func TestNoRollbackWithinThresholdsOrOnApproach1(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	r := newWatcher(a)
	feed(r, "status", 400, 50, 10*time.Millisecond) // 2 % failures
	for i := range 100 {
		r.Observe(Call{At: time.Now(), Op: "commit", Routed: "approach1", Failed: i%2 == 0})
	}
	time.Sleep(50 * time.Millisecond)
	if got := a.get("status"); len(got) != 0 {
		t.Fatalf("rolled back within thresholds: %q", got)
	}
	if got := a.get("commit"); len(got) != 0 {
		t.Fatalf("rolled back an operation on approach1: %q", got)
	}
}
