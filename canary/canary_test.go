package canary

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
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
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for range 10000 {
			l.Record(Entry{Kind: KindCall, Op: backends.OpStatus})
		}
	}()
	select { // a blocked caller never returns: any generous bound tells
	case <-recorded:
	case <-time.After(time.Minute):
		t.Fatal("recording 10,000 entries with a stuck store blocked the caller")
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
		l.Record(Entry{At: at.Add(time.Duration(i) * time.Minute), Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach2, Backend: backends.Approach1, FellBack: true})
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
		o := Entry{At: at.Add(time.Duration(i) * time.Millisecond), Kind: KindCall, Op: backends.Op(op), Routed: backends.Approach2, Duration: d}
		if failEvery > 0 && i%failEvery == 0 {
			o.Category = backends.Unavailable
		}
		r.Observe(o)
	}
}

func TestRollbackOnErrorRate(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	r := newWatcher(a)
	feed(r, "push", 100, 5, 10*time.Millisecond) // 20 % failures
	r.Wait()
	got := a.get("push")
	if len(got) != 1 || !strings.Contains(got[0], "error rate 20.0% > 5.0%") {
		t.Fatalf("rollbacks %q", got)
	}
}

func TestRollbackOnLatency(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	r := newWatcher(a)
	feed(r, "clone", 40, 0, 3*time.Second)
	r.Wait()
	if got := a.get("clone"); len(got) != 1 || !strings.Contains(got[0], "P95 latency 3s > 2s") {
		t.Fatalf("rollbacks %q", got)
	}
}

func TestNoRollbackWithinThresholdsOrOnApproach1(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	r := newWatcher(a)
	feed(r, "status", 400, 50, 10*time.Millisecond) // 2 % failures
	for i := range 100 {
		o := Entry{At: time.Now(), Kind: KindCall, Op: backends.OpCommit, Routed: backends.Approach1}
		if i%2 == 0 {
			o.Category = backends.Unavailable
		}
		r.Observe(o)
	}
	r.Wait() // any rollback Observe started
	if got := a.get("status"); len(got) != 0 {
		t.Fatalf("rolled back within thresholds: %q", got)
	}
	if got := a.get("commit"); len(got) != 0 {
		t.Fatalf("rolled back an operation on approach1: %q", got)
	}
}
