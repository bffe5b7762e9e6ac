package canary

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gitgate/gitgate/backends"
)

// TestRecorderWritesCallsAndComparisons: a recorder writes every call and
// comparison to the ledger (the diff redacted), counts comparisons by
// operation and outcome, and gives calls and comparisons to the automatic
// rollback, which rolls an operation back on either and records it.
func TestRecorderWritesCallsAndComparisons(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	reg := prometheus.NewRegistry()
	a := &applied{reasons: map[string][]string{}}
	rec := NewRecorder(RecorderConfig{Store: NewFileStore(path), Ledger: LedgerConfig{FlushEvery: 10 * time.Millisecond},
		Rollback:   RollbackConfig{Apply: a.apply},
		Redact:     func(s string) string { return strings.ReplaceAll(s, "s3cret", "[redacted]") },
		Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	at := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	// push: 200 clean calls on approach1, then approach2 failing every call.
	for i := range 220 {
		e := Entry{At: at.Add(time.Duration(i) * time.Millisecond), Kind: KindCall, Op: backends.OpPush, Stage: 10, Routed: backends.Approach1,
			Backend: backends.Approach1, Duration: time.Millisecond}
		if i >= 200 {
			e.Routed, e.Backend, e.Category = backends.Approach2, backends.Approach2, backends.Unavailable
		}
		rec.Record(e)
	}
	// status: every comparison a mismatch.
	for i := range 20 {
		rec.Record(Entry{At: at.Add(time.Duration(i) * time.Millisecond), Kind: KindComparison, Op: backends.OpStatus, Stage: 10, Routed: backends.Approach1,
			Backend: backends.Approach2, Outcome: OutcomeMismatch, Detail: "branch: main != s3cret"})
	}
	cancel()
	<-done
	rec.Wait()
	entries, err := ReadFile(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[Kind]int{}
	for _, e := range entries {
		kinds[e.Kind]++
		if e.Kind == "comparison" && (e.Detail != "branch: main != [redacted]" || e.Routed != "approach1" || e.Backend != "approach2") {
			t.Errorf("comparison entry %+v", e)
		}
	}
	if kinds["call"] != 220 || kinds["comparison"] != 20 || kinds["rollback"] != 2 {
		t.Fatalf("ledger entries by kind: %v", kinds)
	}
	if push, status := a.get("push"), a.get("status"); len(push) != 1 || len(status) != 1 || len(rec.Applied()) != 2 ||
		!strings.Contains(status[0], "shadow mismatch rate 100.00%") || !strings.Contains(status[0], "main != [redacted]") {
		t.Fatalf("rollbacks applied: push %q, status %q, recorded %v", push, status, rec.Applied())
	}
	if n := testutil.ToFloat64(rec.comparisons.WithLabelValues("status", "mismatch")); n != 20 {
		t.Fatalf("gitgate_shadow_comparisons_total{status,mismatch} = %v", n)
	}
}
