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
// operation and outcome, and gives calls to the automatic rollback, which
// rolls an operation back and records it.
func TestRecorderWritesCallsAndComparisons(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	reg := prometheus.NewRegistry()
	a := &applied{reasons: map[string][]string{}}
	rec := NewRecorder(RecorderConfig{Store: NewFileStore(path), Ledger: LedgerConfig{FlushEvery: 10 * time.Millisecond},
		Rollback:   RollbackConfig{Window: time.Minute, MinCalls: 20, Apply: a.apply},
		Redact:     func(s string) string { return strings.ReplaceAll(s, "s3cret", "[redacted]") },
		Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	at := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	for i := range 20 {
		rec.Record(Entry{At: at.Add(time.Duration(i) * time.Millisecond), Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach2,
			Backend: backends.Approach2, Category: backends.Unavailable, Duration: time.Millisecond})
	}
	rec.Record(Entry{At: at, Kind: KindComparison, Op: backends.OpStatus, Routed: backends.Approach1, Backend: backends.Approach2, Outcome: OutcomeMismatch,
		Detail: "branch: main != s3cret"})
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
	if kinds["call"] != 20 || kinds["comparison"] != 1 || kinds["rollback"] != 1 {
		t.Fatalf("ledger entries by kind: %v", kinds)
	}
	if got := a.get("push"); len(got) != 1 || len(rec.Applied()) != 1 {
		t.Fatalf("rollbacks applied: %q, recorded %v", got, rec.Applied())
	}
	if n := testutil.ToFloat64(rec.comparisons.WithLabelValues("status", "mismatch")); n != 1 {
		t.Fatalf("gitgate_shadow_comparisons_total{status,mismatch} = %v", n)
	}
}
