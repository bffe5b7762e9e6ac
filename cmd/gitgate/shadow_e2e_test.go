package main

import (
	"testing"
	"time"

	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
)

// TestShadowedReadsMatchAcrossBackends: status served by Approach 1 and
// mirrored to the Approach 2 service on the same (shared) workspace; every
// comparison in the ledger is a match.
func TestShadowedReadsMatchAcrossBackends(t *testing.T) {
	f := flags.NewFile(opNames())
	_ = f.SetShadow("status", 1)
	_ = f.SetShadow("read_file", 1)
	w, flagPath, _ := newCanaryWorld(t, f)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "sh", "url": w.repoURL})
	w.ok(t, c, "write_file", map[string]any{"workspace": "sh", "path": "new.txt", "content": "n"})
	for range 10 {
		w.ok(t, c, "status", map[string]any{"workspace": "sh"})
		w.ok(t, c, "read_file", map[string]any{"workspace": "sh", "path": "README.md"})
	}
	ledger := flagPath + ".ledger.jsonl"
	var comparisons []canary.Entry
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && len(comparisons) < 20; time.Sleep(100 * time.Millisecond) {
		entries, _ := canary.ReadFile(ledger, time.Time{})
		comparisons = comparisons[:0]
		for _, e := range entries {
			if e.Kind == "comparison" {
				comparisons = append(comparisons, e)
			}
		}
	}
	if len(comparisons) != 20 {
		t.Fatalf("%d comparisons in the ledger, want 20", len(comparisons))
	}
	for _, e := range comparisons {
		if e.Outcome != "match" || e.Routed != "approach1" || e.Backend != "approach2" {
			t.Fatalf("comparison %+v", e)
		}
	}
}
