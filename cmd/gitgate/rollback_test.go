package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// TestAutomaticRollback: an Approach 2 that fails 20% of pushes is rolled
// back to 0% by the gateway within the window, with the reason recorded in
// the flag change log and the ledger; later pushes go to Approach 1.
func TestAutomaticRollback(t *testing.T) {
	dir := t.TempDir()
	flagPath := filepath.Join(dir, "flags.json")
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute("push", 100)
	if err := f.Save(flagPath); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	ev, err := flags.Open(t.Context(), flags.Config{Path: flagPath, Ops: backends.OpNames(), Domain: t.Name(), Logger: quiet, CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	ledgerPath := filepath.Join(dir, "ledger.jsonl")
	rec := canary.NewRecorder(canary.RecorderConfig{Store: canary.NewFileStore(ledgerPath), Ledger: canary.LedgerConfig{FlushEvery: 10 * time.Millisecond},
		Rollback: canary.RollbackConfig{Window: time.Minute, MinCalls: 20, Apply: flags.AutomaticRollback(flagPath, backends.OpNames(), changeLogLockWait)},
		Redact:   func(s string) string { return s }, Logger: quiet})
	ctx, cancel := context.WithCancel(t.Context())
	go rec.Run(ctx)
	var pushes atomic.Int64
	a2 := backends.ExecutorFunc(func(_ context.Context, req backends.Request) (backends.Result, error) {
		if pushes.Add(1)%5 == 0 {
			return nil, backends.Errorf(backends.Unavailable, "approach2 push failed")
		}
		return backends.NewResult(req.Op()), nil
	})
	a1 := backends.ExecutorFunc(func(_ context.Context, req backends.Request) (backends.Result, error) {
		return backends.NewResult(req.Op()), nil
	})
	r, err := gateway.NewRouter(gateway.RouterConfig{Backends: map[backends.Name]backends.Executor{"approach1": a1, "approach2": a2},
		Default: "approach1", Flags: ev, Observe: rec.Record, Registerer: prometheus.NewRegistry(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	push := func(i int) (backends.Result, error) {
		req := &backends.PushRequest{Scope: backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a"}, Workspace: "w" + string(rune('a'+i%26))}}
		return r.Execute(t.Context(), req)
	}
	start := time.Now()
	rolledBack := func() bool {
		g, err := flags.Load(flagPath)
		return err == nil && g.Route("push") == 0
	}
	// Push (as agents keep doing) until the gateway has rolled push back in
	// the flag file; the rollback runs beside the calls, not in them.
	n := 0
	testkit.Eventually(t, "push is rolled back in the flag file", func() bool {
		_, _ = push(n)
		n++
		return rolledBack()
	})
	t.Logf("rolled back after %s and %d pushes on approach2", time.Since(start), pushes.Load())
	// The change record is written with the flag file, never after it.
	changes, _ := os.ReadFile(flagPath + ".changes.jsonl")
	if !strings.Contains(string(changes), "gitgate (automatic rollback)") || !strings.Contains(string(changes), "error rate 20.0%") {
		t.Fatalf("change log: %s", changes)
	}
	testkit.Eventually(t, "the evaluator reads the rolled-back file", func() bool {
		return ev.Decide(t.Context(), "push", "p/wa").Backend == flags.Approach1
	})
	for i := range 5 {
		if res, err := push(i); err != nil || res.GetServed().Backend != "approach1" {
			t.Fatalf("after the rollback push went to %+v (%v)", res, err)
		}
	}
	cancel()
	rec.Wait()
	entries, err := canary.ReadFile(ledgerPath, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		found = found || (e.Kind == "rollback" && e.Op == "push" && strings.Contains(e.Detail, "error rate"))
	}
	if !found {
		t.Fatalf("no rollback entry among %d ledger entries", len(entries))
	}
}
