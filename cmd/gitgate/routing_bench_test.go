package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkRoutingOverhead measures what canary routing adds to a call —
// flag evaluation, the circuit breaker, the ledger write and the automatic
// rollback (its summaries, and the judge's looks after Approach 2 calls,
// at the default canary.judge) — against the
// same router without flags, interleaved, with backends that return at
// once, and reports the medians and the added median.
func BenchmarkRoutingOverhead(b *testing.B) {
	quiet := slog.New(slog.DiscardHandler)
	instant := backends.ExecutorFunc(func(_ context.Context, req backends.Request) (backends.Result, error) {
		return backends.NewResult(req.Op()), nil
	})
	execs := map[backends.Name]backends.Executor{"approach1": instant, "approach2": instant}
	plain, err := gateway.NewRouter(gateway.RouterConfig{Backends: execs, Default: "approach1", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "flags.json")
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute("status", 50)
	_ = f.Save(path)
	ev, err := flags.Open(b.Context(), flags.Config{Path: path, Ops: backends.OpNames(), Domain: b.Name(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer ev.Close()
	rec := canary.NewRecorder(canary.RecorderConfig{Store: canary.NewFileStore(filepath.Join(b.TempDir(), "ledger.jsonl")),
		Rollback: canary.RollbackConfig{Judge: canary.JudgeConfig{}.WithDefaults(), Apply: func(string, string) error { return nil }},
		Redact:   func(s string) string { return s }, Logger: quiet})
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	go rec.Run(ctx)
	routed, err := gateway.NewRouter(gateway.RouterConfig{Backends: execs, Default: "approach1", Flags: ev,
		Observe: rec.Record, Registerer: prometheus.NewRegistry(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	var base, canaryd []time.Duration
	i := 0
	for b.Loop() {
		i++
		req := &backends.StatusRequest{Scope: backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a"}, Workspace: fmt.Sprintf("w%d", i%1000)}}
		t0 := time.Now()
		_, _ = plain.Execute(b.Context(), req)
		t1 := time.Now()
		_, _ = routed.Execute(b.Context(), req)
		base, canaryd = append(base, t1.Sub(t0)), append(canaryd, time.Since(t1))
	}
	m0, m1 := testkit.Median(base), testkit.Median(canaryd)
	b.ReportMetric(float64(m0.Nanoseconds())/1000, "plain-median-µs")
	b.ReportMetric(float64(m1.Nanoseconds())/1000, "routed-median-µs")
	b.ReportMetric(float64((m1-m0).Nanoseconds())/1000, "added-median-µs")
}
