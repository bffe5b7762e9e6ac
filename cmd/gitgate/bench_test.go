package main

import (
	"os/exec"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/client"
)

// benchSetup is a gateway with one cloned workspace, and the same status
// command ready to run directly with git.
type benchSetup struct {
	w      *world
	direct gitcmd.Command // the exact git status the gateway runs, run without the gateway
}

func newBenchSetup(b *testing.B) *benchSetup {
	tuneRuntime() // as the gitgate binary does at start
	w := newWorld(b)
	w.cfg.Log.Level = "info" // the production default: successful reads log at debug
	w.startHTTP(b)
	c := w.httpClient(b, agentToken)
	w.ok(b, c, "clone", map[string]any{"workspace": "bench", "url": w.repoURL})
	bnd, ok, err := w.app.bindings.Get(b.Context(), sandbox.WorkspaceKey{Project: "alpha", Name: "bench"})
	if err != nil || !ok {
		b.Fatalf("binding: %v %v", ok, err)
	}
	inv := gitcmd.Invocation{GitDir: bnd.GitDir(), WorkTree: bnd.WorkTree(), Args: gitcmd.StatusArgs, ReadOnly: true}
	return &benchSetup{
		w:      w,
		direct: gitcmd.Build(w.cfg.Git.Path, bnd.Root+"/home", bnd.Root+"/tmp", inv),
	}
}

// runDirect runs the status command without the gateway and reads its
// output, as any program that runs git status must.
func (s *benchSetup) runDirect(b *testing.B) {
	cmd := exec.Command(s.direct.Path, s.direct.Args...)
	cmd.Env = s.direct.Env
	if _, err := cmd.Output(); err != nil {
		b.Fatal(err)
	}
}

func (s *benchSetup) runGateway(b *testing.B, c *client.Client) {
	if res := s.w.call(b, c, "status", map[string]any{"workspace": "bench"}); res.IsError {
		b.Fatal(text(res))
	}
}

// BenchmarkStatusLatency interleaves an agent's status (MCP Streamable HTTP
// → gateway → Approach 1 → git) with the identical git status run directly,
// so both see the same machine noise, and reports both medians, the
// gateway's added latency and the ratio.
func BenchmarkStatusLatency(b *testing.B) {
	s := newBenchSetup(b)
	c := s.w.httpClient(b, agentToken)
	var direct, gateway []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		s.runDirect(b)
		t1 := time.Now()
		s.runGateway(b, c)
		direct, gateway = append(direct, t1.Sub(t0)), append(gateway, time.Since(t1))
	}
	md, mg := testkit.Median(direct), testkit.Median(gateway)
	b.ReportMetric(float64(md.Microseconds()), "direct-median-µs")
	b.ReportMetric(float64(mg.Microseconds()), "gateway-median-µs")
	b.ReportMetric(float64((mg - md).Microseconds()), "added-median-µs")
	b.ReportMetric(float64(mg)/float64(md), "gateway/direct")
}

const throughputClients = 16

// BenchmarkStatusThroughput16 runs b.N statuses with 16 concurrent agents
// directly with git and b.N through the gateway (16 MCP sessions of a
// minimal Streamable HTTP client), alternating in short rounds, and reports
// the median rates and the median ratio of adjacent rounds.
func BenchmarkStatusThroughput16(b *testing.B) {
	s := newBenchSetup(b)
	cs := make([]*loadClient, throughputClients)
	for i := range cs {
		cs[i] = newLoadClient(b, s.w.mcpURL, agentToken)
	}
	b.ResetTimer()
	direct, gateway, ratio := testkit.Alternate(b.N, rounds, throughputClients, func(n int) float64 {
		return testkit.ParallelRate(n, throughputClients, func(int) { s.runDirect(b) })
	}, func(n int) float64 {
		return testkit.ParallelRate(n, throughputClients, func(i int) { cs[i].call(b, "status", `{"workspace":"bench"}`) })
	})
	b.ReportMetric(direct, "direct-ops/s")
	b.ReportMetric(gateway, "gateway-ops/s")
	b.ReportMetric(ratio, "gateway/direct")
}

// BenchmarkStatusThroughput16SDKClient is the same with mcp-go's full client
// library in every agent; its decoding runs on the same two cores as the
// gateway and git, so it shows the floor, not the gateway's capacity.
func BenchmarkStatusThroughput16SDKClient(b *testing.B) {
	s := newBenchSetup(b)
	cs := make([]*client.Client, throughputClients)
	for i := range cs {
		cs[i] = s.w.httpClient(b, agentToken)
	}
	b.ResetTimer()
	direct, gateway, ratio := testkit.Alternate(b.N, rounds, throughputClients, func(n int) float64 {
		return testkit.ParallelRate(n, throughputClients, func(int) { s.runDirect(b) })
	}, func(n int) float64 {
		return testkit.ParallelRate(n, throughputClients, func(i int) { s.runGateway(b, cs[i]) })
	})
	b.ReportMetric(direct, "direct-ops/s")
	b.ReportMetric(gateway, "gateway-ops/s")
	b.ReportMetric(ratio, "gateway/direct")
}

// rounds is how many alternating rounds the throughput benchmarks split
// their calls into.
const rounds = 16
