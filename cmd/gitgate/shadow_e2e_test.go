package main

import (
	"path/filepath"
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
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	w.sharedSandboxes = t.TempDir()
	w.cfg = w.config(t)
	addr, _ := w.startBackend(t)
	flagPath := filepath.Join(t.TempDir(), "flags.json")
	f := flags.NewFile(opNames())
	_ = f.SetShadow("status", 1)
	_ = f.SetShadow("read_file", 1)
	if err := f.Save(flagPath); err != nil {
		t.Fatal(err)
	}
	w.cfg.Flags.Path = flagPath
	w.cfg.Redis.Addr, w.cfg.Redis.Prefix = "127.0.0.1:6379", w.redisPrefix
	w.cfg.Approach2.Target, w.cfg.Approach2.Token, w.cfg.Approach2.Insecure = addr, serviceToken, true
	w.startHTTP(t)
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
