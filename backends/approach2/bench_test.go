package approach2_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/backends/sandbox/redisbind"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// benchPair is one engine called two ways: in process (Approach 1) and
// through the gRPC service on loopback (Approach 2).
type benchPair struct {
	env        *backendtest.Env
	a1, a2     backends.Executor
	workspaces []string
}

func newBenchPair(b *testing.B, workspaces int) *benchPair {
	env := backendtest.NewEnv(b)
	engine := backendtest.NewApproach1(b, env)
	p := &benchPair{env: env, a1: engine, a2: startService(b, engine)}
	p.clone(b, engine, workspaces)
	return p
}

func (p *benchPair) clone(b *testing.B, ex backends.Executor, workspaces int) {
	for i := range workspaces {
		ws := fmt.Sprintf("bench-%02d", i)
		backendtest.Clone(b, ex, p.env, p.env.Agent, ws)
		p.workspaces = append(p.workspaces, ws)
	}
}

// newFullPair is Approach 1 in process against the Approach 2 service as it
// runs in production: its own engine behind the exactly-once layer (journal
// in PostgreSQL, workspace locks and bindings in Redis), over gRPC.
func newFullPair(b *testing.B, workspaces int) *benchPair {
	env := backendtest.NewEnv(b)
	rdb := backendtest.Redis(b)
	prefix := backendtest.RedisPrefix(b, rdb)
	locker := redislock.New(rdb, redislock.Options{Prefix: prefix})
	bindings := redisbind.New(rdb, redisbind.Options{Prefix: prefix, TTL: time.Hour})
	j, err := journal.Open(b.Context(), backendtest.PostgresDSN(b), journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(j.Close)
	engine := backendtest.NewEngine(b, env, lock.Reentrant(locker), bindings)
	once, err := approach2.NewOnce(approach2.OnceConfig{Engine: engine, Locker: locker, Journal: j, LockKey: lockKey})
	if err != nil {
		b.Fatal(err)
	}
	p := &benchPair{env: env, a1: backendtest.NewApproach1(b, env), a2: startService(b, once)}
	p.clone(b, p.a1, workspaces)
	p.workspaces = nil
	p.clone(b, p.a2, workspaces) // the same names, each backend its own sandboxes
	return p
}

func (p *benchPair) status(b *testing.B, ex backends.Executor, ws string) {
	req := &backends.StatusRequest{Scope: backends.Scope{Principal: p.env.Agent, Workspace: ws}}
	if _, err := ex.Execute(b.Context(), req); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGRPCHopLatency interleaves status in process and through gRPC
// and reports both medians and the hop's added latency.
func BenchmarkGRPCHopLatency(b *testing.B) {
	p := newBenchPair(b, 1)
	var inProc, hop []time.Duration
	for b.Loop() {
		t0 := time.Now()
		p.status(b, p.a1, p.workspaces[0])
		t1 := time.Now()
		p.status(b, p.a2, p.workspaces[0])
		inProc, hop = append(inProc, t1.Sub(t0)), append(hop, time.Since(t1))
	}
	m1, m2 := testkit.Median(inProc), testkit.Median(hop)
	b.ReportMetric(float64(m1.Microseconds()), "approach1-median-µs")
	b.ReportMetric(float64(m2.Microseconds()), "approach2-median-µs")
	b.ReportMetric(float64((m2 - m1).Microseconds()), "hop-added-median-µs")
}

// BenchmarkThroughput32 runs 32 concurrent agents, each on its own
// workspace, through Approach 1 (in process) and the full Approach 2
// service in alternating rounds, for status and for commit (a file write
// plus a commit of it, both journaled and locked in Redis on Approach 2).
func BenchmarkThroughput32(b *testing.B) {
	const agents = 32
	p := newFullPair(b, agents)
	var seq atomic.Int64
	ops := map[string]func(ex backends.Executor, ws string){
		"status": func(ex backends.Executor, ws string) { p.status(b, ex, ws) },
		"commit": func(ex backends.Executor, ws string) {
			n := seq.Add(1)
			w := &backends.WriteFileRequest{Scope: backends.Scope{Principal: p.env.Agent, Workspace: ws}, Path: fmt.Sprintf("f%d.txt", n), Content: "x"}
			c := &backends.CommitRequest{Scope: backends.Scope{Principal: p.env.Agent, Workspace: ws}, Message: fmt.Sprint("commit ", n)}
			for _, req := range []backends.Request{w, c} {
				if _, err := ex.Execute(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		},
	}
	for _, name := range []string{"status", "commit"} {
		op := ops[name]
		r1, r2, _ := testkit.Alternate(b.N, 8, agents, func(n int) float64 {
			return testkit.ParallelRate(n, agents, func(i int) { op(p.a1, p.workspaces[i]) })
		}, func(n int) float64 {
			return testkit.ParallelRate(n, agents, func(i int) { op(p.a2, p.workspaces[i]) })
		})
		b.ReportMetric(r1, name+"-approach1-ops/s")
		b.ReportMetric(r2, name+"-approach2-ops/s")
		b.ReportMetric(r2/r1, name+"-approach2/approach1")
	}
}
