package main

import (
	"os"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/backendtest"
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

// TestLedgerInPostgres: with canary.ledger_dsn_env set, the gateway's
// routed calls and shadow comparisons land in PostgreSQL (and no ledger
// file is written).
func TestLedgerInPostgres(t *testing.T) {
	f := flags.NewFile(opNames())
	_ = f.SetRoute("status", 100)
	_ = f.SetShadow("read_file", 1)
	dsn := backendtest.PostgresDSN(t)
	w, flagPath, _ := newCanaryWorld(t, f, func(c *Config) { c.Canary.LedgerDSN = dsn })
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "pg", "url": w.repoURL})
	for range 5 {
		w.ok(t, c, "status", map[string]any{"workspace": "pg"})
		w.ok(t, c, "read_file", map[string]any{"workspace": "pg", "path": "README.md"})
	}
	store, err := canary.OpenPGStore(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var status, comparisons []canary.Entry
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && (len(status) < 5 || len(comparisons) < 5); time.Sleep(100 * time.Millisecond) {
		status, _ = store.Read(t.Context(), "status", time.Time{})
		all, _ := store.Read(t.Context(), "read_file", time.Time{})
		comparisons = comparisons[:0]
		for _, e := range all {
			if e.Kind == "comparison" {
				comparisons = append(comparisons, e)
			}
		}
	}
	if len(status) != 5 || len(comparisons) != 5 {
		t.Fatalf("PostgreSQL ledger: %d status calls (want 5), %d read_file comparisons (want 5)", len(status), len(comparisons))
	}
	for _, e := range status {
		if e.Kind != "call" || e.Routed != "approach2" || e.Backend != "approach2" || e.DurationMS <= 0 {
			t.Fatalf("status entry %+v", e)
		}
	}
	if _, err := os.Stat(flagPath + ".ledger.jsonl"); !os.IsNotExist(err) {
		t.Fatalf("a ledger file was written too: %v", err)
	}
}
