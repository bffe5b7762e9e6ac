package main

import (
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/backends/sandbox"
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
	md, mg := median(direct), median(gateway)
	b.ReportMetric(float64(md.Microseconds()), "direct-median-µs")
	b.ReportMetric(float64(mg.Microseconds()), "gateway-median-µs")
	b.ReportMetric(float64((mg - md).Microseconds()), "added-median-µs")
	b.ReportMetric(float64(mg)/float64(md), "gateway/direct")
}

func median(d []time.Duration) time.Duration { return percentile(d, 50) }

// percentile is the pct-th percentile of d (not modified).
func percentile(d []time.Duration, pct int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*pct/100]
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
	direct, gateway, ratio := alternate(b.N, func(n int) float64 {
		return parallelRate(n, throughputClients, func(int) { s.runDirect(b) })
	}, func(n int) float64 {
		return parallelRate(n, throughputClients, func(i int) { cs[i].call(b, "status", `{"workspace":"bench"}`) })
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
	direct, gateway, ratio := alternate(b.N, func(n int) float64 {
		return parallelRate(n, throughputClients, func(int) { s.runDirect(b) })
	}, func(n int) float64 {
		return parallelRate(n, throughputClients, func(i int) { s.runGateway(b, cs[i]) })
	})
	b.ReportMetric(direct, "direct-ops/s")
	b.ReportMetric(gateway, "gateway-ops/s")
	b.ReportMetric(ratio, "gateway/direct")
}

// rounds is how many alternating rounds the throughput benchmarks split
// their calls into.
const rounds = 16

// alternate splits n calls of each of a and b into rounds, run in the order
// A B B A A B ..., and returns the median rate of each and the median of
// the per-round-pair ratios b/a. The machine's speed drifts (other tenants,
// frequency), so only rates measured moments apart are compared.
func alternate(n int, a, b func(n int) float64) (rateA, rateB, ratio float64) {
	q := max(n/rounds, throughputClients)
	var ra, rb, ratios []float64
	for i := range rounds {
		var x, y float64
		if i%2 == 0 {
			x = a(q)
			y = b(q)
		} else {
			y = b(q)
			x = a(q)
		}
		ra, rb, ratios = append(ra, x), append(rb, y), append(ratios, y/x)
	}
	return medianOf(ra), medianOf(rb), medianOf(ratios)
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// parallelRate runs n calls of fn on workers goroutines and returns calls per
// second.
func parallelRate(n, workers int, fn func(worker int)) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				fn(i)
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}
