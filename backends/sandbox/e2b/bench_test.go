package e2b_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
	"github.com/gitgate/gitgate/internal/testkit"
)

// The benchmarks here run both backends on the local E2B with the default
// network round trip (e2bfake.DefaultLatency) and sandbox start time
// (e2bfake.DefaultCreateDelay): Approach 1, the embedded executor, which
// creates a sandbox cold on an owner's first operation; Approach 2, the
// service (gRPC on loopback) whose engine takes sandboxes from a warm pool
// (sandbox.Pool).

// e2bWorld is one backend on its own local E2B.
type e2bWorld struct {
	env *backendtest.Env
	s   *e2bfake.Server
	p   *e2b.Provider
	ex  backends.Executor
}

// newE2BWorld starts a local E2B with the default sandbox start time and
// round trip, and a backend on it: Approach 1 (cold creation), or with
// pooled the Approach 2 service over an engine fed by a warm pool, filled
// before it returns, whose sandboxes hold a clone of each of seeds
// (approach1.Executor.Seeds).
func newE2BWorld(b *testing.B, env *backendtest.Env, pooled bool, seeds ...string) *e2bWorld {
	b.Helper()
	s, err := e2bfake.Start(e2bfake.Config{APIKey: backendtest.E2BKey, Latency: e2bfake.DefaultLatency, CreateDelay: e2bfake.DefaultCreateDelay})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	env.SandboxRoots = append(env.SandboxRoots, s.Root())
	a, err := e2b.NewAPI(e2b.APIConfig{BaseURL: s.URL(), APIKey: backendtest.E2BKey})
	if err != nil {
		b.Fatal(err)
	}
	p, err := e2b.NewProvider(e2b.ProviderConfig{API: a, EnvdURL: s.URL(), Template: "gitgate"})
	if err != nil {
		b.Fatal(err)
	}
	w := &e2bWorld{env: env, s: s, p: p}
	if !pooled {
		w.ex = backendtest.NewEngineOn(b, env, p, &lock.Memory{}, nil)
		return w
	}
	quiet := slog.New(slog.DiscardHandler)
	var prepare func(context.Context, sandbox.Info) (sandbox.Info, error) // set before the pool runs
	pool, err := sandbox.NewPool(sandbox.PoolConfig{Provider: p, MinIdle: 1, MaxSize: 4, Logger: quiet,
		Prepare: func(ctx context.Context, info sandbox.Info) (sandbox.Info, error) { return prepare(ctx, info) }})
	if err != nil {
		b.Fatal(err)
	}
	engine := backendtest.NewEngineWith(b, env, sandbox.ManagerConfig{Provider: p, Creator: pool}, &lock.Memory{})
	if prepare, err = engine.Seeds(seeds); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Go(func() { pool.Run(ctx) })
	b.Cleanup(func() { cancel(); running.Wait() })
	w.ex = backendtest.ServeApproach2(b, engine, approach2.ClientConfig{})
	testkit.Eventually(b, "the warm pool fills", pool.Ready)
	return w
}

// measured is one call: what the agent waited, and what it cost in E2B.
type measured struct {
	took   time.Duration
	counts e2bfake.Counts
}

// call runs req as the agent and measures it; removals still running after
// it returned (not on the agent's time) are waited for afterwards.
func (w *e2bWorld) call(b *testing.B, req backends.Request) measured {
	b.Helper()
	if err := w.p.Wait(b.Context()); err != nil {
		b.Fatal(err)
	}
	w.s.ResetCounts()
	start := time.Now()
	req.GetScope().Principal = w.env.Agent
	if _, err := w.ex.Execute(backendtest.Ctx(b), req); err != nil {
		b.Fatalf("%s: %v", req.Op(), err)
	}
	m := measured{took: time.Since(start), counts: w.s.Counts()}
	if err := w.p.Wait(b.Context()); err != nil {
		b.Fatal(err)
	}
	return m
}

// e2bOp is one operation of the table: prep (not measured) readies the
// workspace for call i, req is the call.
type e2bOp struct {
	name string
	prep func(i int) []backends.Request
	req  func(i int) backends.Request
}

func e2bOps(env *backendtest.Env, ws, tag string) []e2bOp {
	sc := func() backends.Scope { return backends.Scope{Workspace: ws} }
	write := func(i int) backends.Request {
		return &backends.WriteFileRequest{Scope: sc(), Path: "bench.txt", Content: fmt.Sprintf("%s %d\n", tag, i)}
	}
	commit := func(i int) backends.Request {
		return &backends.CommitRequest{Scope: sc(), Message: fmt.Sprintf("bench %s %d", tag, i)}
	}
	none := func(int) []backends.Request { return nil }
	return []e2bOp{
		{"status", none, func(int) backends.Request { return &backends.StatusRequest{Scope: sc()} }},
		{"write_file", none, write},
		{"commit", func(i int) []backends.Request { return []backends.Request{write(i)} }, commit},
		{"push", func(i int) []backends.Request { return []backends.Request{write(i), commit(i)} },
			func(int) backends.Request { return &backends.PushRequest{Scope: sc()} }},
		{"diff", func(i int) []backends.Request { return []backends.Request{write(i)} },
			func(int) backends.Request { return &backends.DiffRequest{Scope: sc()} }},
		{"log", none, func(int) backends.Request { return &backends.LogRequest{Scope: sc()} }},
		{"clone", none, func(i int) backends.Request {
			return &backends.CloneRequest{Scope: backends.Scope{Workspace: fmt.Sprintf("%s-clone-%d", ws, i)}, URL: env.RepoURL}
		}},
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkE2BRoundTrips measures, per operation, with the default round
// trip: the requests Approach 1 sends to envd and to E2B's API, the round
// trips the agent waits for one after another (e2bfake.Counts.RoundTrips:
// an upload sent beside a command's start shares its round trip), the git
// processes and the other processes it runs in the sandbox, and, for both
// backends, the median time the agent waits. "worst-rtt-over-git" is the
// worst, over the operations, of the round trips minus the git processes
// (at least one: an operation that runs none, write_file, still needs one
// round trip); the target is that no operation waits for a round trip
// more than its git processes need.
func BenchmarkE2BRoundTrips(b *testing.B) {
	const runs = 3
	env := backendtest.NewEnv(b)
	for b.Loop() {
		worst := math.Inf(-1)
		for _, backend := range []struct {
			name   string
			pooled bool
		}{{"a1", false}, {"a2", true}} {
			w := newE2BWorld(b, env, backend.pooled)
			ws := "rt-" + backend.name
			w.call(b, &backends.CloneRequest{Scope: backends.Scope{Workspace: ws}, URL: env.RepoURL})
			for _, op := range e2bOps(env, ws, backend.name) {
				var took []time.Duration
				var counts e2bfake.Counts
				for i := range runs {
					w.s.SetLatency(0) // preparing is not measured
					for _, prep := range op.prep(i) {
						w.call(b, prep)
					}
					w.s.SetLatency(e2bfake.DefaultLatency)
					m := w.call(b, op.req(i))
					took = append(took, m.took)
					counts = m.counts
				}
				b.ReportMetric(ms(median(took)), backend.name+"-"+op.name+"-ms")
				if backend.pooled {
					continue // the same engine: its pool's refills would blur the counts
				}
				b.ReportMetric(float64(counts.RoundTrips), op.name+"-rtts")
				b.ReportMetric(float64(counts.EnvdRequests), op.name+"-envd-requests")
				b.ReportMetric(float64(counts.APIRequests), op.name+"-api-requests")
				b.ReportMetric(float64(counts.GitProcesses), op.name+"-git-processes")
				b.ReportMetric(float64(counts.Processes-counts.GitProcesses), op.name+"-other-processes")
				worst = max(worst, float64(counts.RoundTrips-max(counts.GitProcesses, 1)))
			}
		}
		b.ReportMetric(worst, "worst-rtt-over-git")
	}
}

// publicRemote puts a proxy in front of env's remote that lets anyone
// read, as a public repository does (seeds are cloned without any
// credential): a fetch without credentials carries the read token on;
// requests with credentials pass as they are. env's projects allow the
// proxy's host, and env.RepoURL names the repository through it; the
// function returned names any other repository of env's remote through it.
func publicRemote(b *testing.B, env *backendtest.Env) func(repo string) string {
	target, err := url.Parse(env.Remote.URL())
	if err != nil {
		b.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		read := strings.HasSuffix(r.In.URL.Path, "/git-upload-pack") || r.In.URL.Query().Get("service") == "git-upload-pack"
		if read && r.In.Header.Get("Authorization") == "" {
			r.Out.SetBasicAuth("x-access-token", backendtest.ReadToken)
		}
	}}
	srv := httptest.NewServer(proxy)
	b.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	env.Project.Hosts = append(env.Project.Hosts, u.Host)
	public := func(repo string) string {
		return srv.URL + strings.TrimPrefix(env.Remote.RepoURL(repo), env.Remote.URL())
	}
	env.RepoURL = public("demo")
	return public
}

// BenchmarkE2BFirstOperation measures an agent's first operation on a new
// project, a clone, as the agent waits for it: Approach 1 creates the
// sandbox then (cold), Approach 2's pool hands out one made beforehand
// (warm) that holds a seed of the repository, cloned before any agent
// asked for it (approach1.Executor.Seeds): the clone moves it into the
// workspace's place and fetches with the agent's credential. Two
// repositories, both readable without credentials (publicRemote): a
// project's ("project": 5,000 files of about 1 KiB and 100 commits after
// the first, backendtest.WriteHistory), on which the target is judged, and
// the three-file "demo", where the clone itself costs next to nothing and
// only the round trips and the sandbox's creation remain. Each side runs
// three times per repository, each on a fresh local E2B; the medians are
// reported, and their ratio (target ≥ 5 for the project), with the round
// trips of the last cold run (a warm run's overlap the pool's refill,
// which the stand-in's count cannot tell apart).
func BenchmarkE2BFirstOperation(b *testing.B) {
	const runs = 3
	env := backendtest.NewEnv(b)
	public := publicRemote(b, env) // seeds are cloned without credentials; both sides clone the same public repository
	if err := env.Remote.CreateRepo(b.Context(), "project", nil); err != nil {
		b.Fatal(err)
	}
	backendtest.WriteHistory(b, filepath.Join(env.RemoteFS, "project.git"), 5000, 100)
	repos := []struct{ metric, url string }{{"", public("project")}, {"demo-", env.RepoURL}}
	for b.Loop() {
		for _, repo := range repos {
			var cold, warm []time.Duration
			var coldRTTs int
			for i := range runs {
				for _, pooled := range []bool{false, true} {
					var seeds []string
					if pooled {
						seeds = []string{repo.url}
					}
					w := newE2BWorld(b, env, pooled, seeds...)
					m := w.call(b, &backends.CloneRequest{Scope: backends.Scope{Workspace: fmt.Sprintf("first-%d", i)}, URL: repo.url})
					if pooled {
						warm = append(warm, m.took)
					} else {
						cold, coldRTTs = append(cold, m.took), m.counts.RoundTrips
					}
				}
			}
			c, w := median(cold), median(warm)
			b.ReportMetric(ms(c), repo.metric+"a1-cold-first-ms")
			b.ReportMetric(ms(w), repo.metric+"a2-warm-first-ms")
			b.ReportMetric(float64(coldRTTs), repo.metric+"a1-cold-first-rtts")
			b.ReportMetric(float64(c)/float64(w), repo.metric+"cold/warm")
		}
	}
}
