package approach2_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/backends/sandbox/filebind"
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

func (p *benchPair) clone(b testing.TB, ex backends.Executor, workspaces int) {
	for i := range workspaces {
		ws := fmt.Sprintf("bench-%02d", i)
		backendtest.Clone(b, ex, p.env, p.env.Agent, ws)
		p.workspaces = append(p.workspaces, ws)
	}
}

// deployments are the three ways a write reaches git that
// BenchmarkThroughput32 compares, each with its own engine and sandboxes
// under the same workspace names.
type deployments struct {
	env        *backendtest.Env
	workspaces []string
	// a2 is the Approach 2 service as it runs in production: its engine
	// behind the exactly-once layer (journal in PostgreSQL, workspace locks
	// and bindings in Redis), over gRPC.
	a2 backends.Executor
	// a1 is Approach 1 as the gateway embeds it when it runs beside the
	// service (a canary: Redis and postgres.dsn_env configured, see
	// cmd/gitgate gateway_root.go): the same exactly-once layer on the
	// same PostgreSQL journal and Redis, in process, so that both
	// backends serialise on one workspace lock and honour one key.
	a1 backends.Executor
	// a1alone is Approach 1 standalone (`make run`, no Redis, no
	// PostgreSQL): file locks, file bindings and the file journal.
	a1alone backends.Executor
}

func newDeployments(b testing.TB, workspaces int) *deployments {
	env := backendtest.NewEnv(b)
	rdb := backendtest.Redis(b)
	dsn := backendtest.PostgresDSN(b)
	shared := func() (lock.Locker, *redisbind.Store, *journal.Journal) {
		prefix := backendtest.RedisPrefix(b, rdb)
		j, err := journal.Open(b.Context(), dsn, journal.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(j.Close)
		return redislock.New(rdb, redislock.Options{Prefix: prefix}), redisbind.New(rdb, redisbind.Options{Prefix: prefix, TTL: time.Hour}), j
	}
	d := &deployments{env: env}

	locker, bindings, j := shared()
	engine := backendtest.NewEngine(b, env, lock.Reentrant(locker), bindings)
	once, err := approach2.NewOnce(approach2.OnceConfig{Engine: engine, Locker: locker, Journal: j, LockKey: lockKey})
	if err != nil {
		b.Fatal(err)
	}
	d.a2 = startService(b, once)

	locker, bindings, j = shared()
	d.a1 = backendtest.WithOnce(b, backendtest.NewEngine(b, env, lock.Reentrant(locker), bindings), locker, j)

	files := backendtest.NewFileLocker(b)
	fileBinds, err := filebind.Open(filepath.Join(b.TempDir(), "bindings"), filebind.Options{TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	d.a1alone = backendtest.WithOnce(b, backendtest.NewEngine(b, env, lock.Reentrant(files), fileBinds), files, backendtest.NewDirJournal(b))

	for i := range workspaces {
		ws := fmt.Sprintf("bench-%02d", i)
		for _, ex := range []backends.Executor{d.a1, d.a1alone, d.a2} {
			backendtest.Clone(b, ex, env, env.Agent, ws)
		}
		d.workspaces = append(d.workspaces, ws)
	}
	return d
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
// workspace, through Approach 2 (the full service) and through Approach 1
// as the gateway embeds it beside the service (the same journal and Redis,
// in process: see deployments), in alternating rounds, for status, for
// write_file alone (no git process: all of it is the path to the file) and
// for commit (a write_file plus a commit of it); and, for the writes,
// against Approach 1 standalone (files only) as well. Each ratio is the median of
// adjacent rounds' ratios.
func BenchmarkThroughput32(b *testing.B) {
	const agents = 32
	d := newDeployments(b, agents)
	var seq atomic.Int64
	scope := func(ws string) backends.Scope { return backends.Scope{Principal: d.env.Agent, Workspace: ws} }
	do := func(ex backends.Executor, reqs ...backends.Request) {
		for _, req := range reqs {
			if _, err := ex.Execute(b.Context(), req); err != nil {
				b.Fatal(err)
			}
		}
	}
	write := func(ws string) backends.Request {
		return &backends.WriteFileRequest{Scope: scope(ws), Path: fmt.Sprintf("f%d.txt", seq.Add(1)), Content: "x"}
	}
	ops := []struct {
		name string
		op   func(ex backends.Executor, ws string)
	}{
		{"status", func(ex backends.Executor, ws string) { do(ex, &backends.StatusRequest{Scope: scope(ws)}) }},
		{"write_file", func(ex backends.Executor, ws string) { do(ex, write(ws)) }},
		{"commit", func(ex backends.Executor, ws string) {
			do(ex, write(ws), &backends.CommitRequest{Scope: scope(ws), Message: fmt.Sprint("commit ", seq.Add(1))})
		}},
	}
	rate := func(ex backends.Executor, op func(backends.Executor, string)) func(int) float64 {
		return func(n int) float64 {
			return testkit.ParallelRate(n, agents, func(i int) { op(ex, d.workspaces[i]) })
		}
	}
	for _, o := range ops {
		r1, r2, ratio := testkit.Alternate(b.N, 8, agents, rate(d.a1, o.op), rate(d.a2, o.op))
		b.ReportMetric(r1, o.name+"-approach1-ops/s")
		b.ReportMetric(r2, o.name+"-approach2-ops/s")
		b.ReportMetric(ratio, o.name+"-approach2/approach1")
		if o.name != "status" {
			r1, _, ratio := testkit.Alternate(b.N, 8, agents, rate(d.a1alone, o.op), rate(d.a2, o.op))
			b.ReportMetric(r1, o.name+"-approach1-standalone-ops/s")
			b.ReportMetric(ratio, o.name+"-approach2/approach1-standalone")
		}
	}
}
