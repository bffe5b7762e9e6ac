package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// replicaProc is one `gitgate backend` child process of a test that runs
// several: its addresses, its own log (also copied to the world's, for the
// secret scan) and its exit.
type replicaProc struct {
	name, addr, admin string
	cmd               *exec.Cmd
	logs              *testkit.SyncBuffer
	exited            chan struct{} // closed once the process has exited
	exitErr           error         // cmd.Wait's, once exited is closed
}

// startReplica runs `gitgate backend` with the world's configuration,
// approach2Extra added to its approach2 section (", key: value, ..."), and
// waits until its health service says SERVING.
func (w *world) startReplica(t *testing.T, name, approach2Extra string) *replicaProc {
	t.Helper()
	r := &replicaProc{name: name, addr: freeAddr(t), admin: freeAddr(t), logs: &testkit.SyncBuffer{}, exited: make(chan struct{})}
	ownDir := ", sandbox_dir: \"" + t.TempDir() + "\""
	if w.sharedSandboxes != "" {
		ownDir = "" // the gateway's and the other replicas', shared
	}
	yaml := w.configYAML(t.TempDir()) + fmt.Sprintf("approach2: {listen: %q, admin: %q, token_env: E2E_SERVICE_TOKEN%s%s}\npostgres: {dsn_env: E2E_PG_DSN}\n",
		r.addr, r.admin, ownDir, approach2Extra)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if w.pgDSN == "" {
		w.pgDSN = backendtest.PostgresDSN(t)
	}
	r.cmd = exec.Command(gitgateBinary(t), "backend", "--config", path)
	r.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "E2E_GIT_TOKEN=" + gitToken, "E2E_GIT_READ_TOKEN=" + gitReadToken,
		"E2E_SERVICE_TOKEN=" + serviceToken, "E2E_PG_DSN=" + w.pgDSN, "E2E_E2B_KEY=" + e2bKey}
	r.cmd.Stderr = io.MultiWriter(w.logs, r.logs)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exitErr = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() { _ = r.cmd.Process.Kill(); <-r.exited })
	waitServing(t, r.addr)
	return r
}

// metric sums the samples of a family on the replica's /metrics whose op
// label is op ("" for every op); an error when the admin listener does not
// answer.
func (r *replicaProc) metric(ctx context.Context, family, op string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.admin+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics of %s: %w", r.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics of %s: %s", r.name, resp.Status)
	}
	sums := metricSums(string(body), family, "op")
	if op == "" {
		return sumOf(sums), nil
	}
	return sums[op], nil
}

// served is how many op calls the replica has served (every op for "").
func (r *replicaProc) served(t *testing.T, op string) float64 {
	t.Helper()
	n, err := r.metric(t.Context(), "gitgate_operations_total", op)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startGatewayOver runs the gateway with Approach 2 as its backend, dialling
// the replicas through approach2.targets.
func (w *world) startGatewayOver(t *testing.T, rs ...*replicaProc) {
	t.Helper()
	var addrs []string
	for _, r := range rs {
		addrs = append(addrs, r.addr)
	}
	w.cfg.Redis.Addr, w.cfg.Redis.Prefix = "127.0.0.1:6379", w.redisPrefix // the gateway shares the services' locks
	w.cfg.Backend.Default = "approach2"
	w.cfg.Approach2.Target, w.cfg.Approach2.Targets = "", addrs
	w.cfg.Approach2.Token, w.cfg.Approach2.Insecure = serviceToken, true
	if err := w.cfg.NeedApproach2(); err != nil {
		t.Fatal(err)
	}
	w.startHTTP(t)
}

// newServicesWorld is a world whose services share Redis, the journal's
// PostgreSQL schema and the sandbox directory, as replicas do.
func newServicesWorld(t *testing.T) *world {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	w.sharedSandboxes = t.TempDir()
	return w
}

// TestGatewayBalancesOverServices: a gateway given two services in
// approach2.targets sends calls to both, round robin.
func TestGatewayBalancesOverServices(t *testing.T) {
	w := newServicesWorld(t)
	a, b := w.startReplica(t, "a", ""), w.startReplica(t, "b", "")
	w.startGatewayOver(t, a, b)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "spread", "url": w.repoURL})
	status := func() {
		if got := w.ok(t, c, "status", map[string]any{"workspace": "spread"})["backend"]; got != "approach2" {
			t.Fatalf("status served by %v", got)
		}
	}
	// Until the gateway's health checks of both have answered, calls may
	// go to one.
	testkit.Eventually(t, "both services serve calls", func() bool {
		status()
		return a.served(t, "status") > 0 && b.served(t, "status") > 0
	})
	a0, b0 := a.served(t, "status"), b.served(t, "status")
	const n = 40
	for range n {
		status()
	}
	da, db := a.served(t, "status")-a0, b.served(t, "status")-b0
	t.Logf("%d status calls through the gateway: %v served by service a, %v by service b", n, da, db)
	if da+db != n || da < n/4 || db < n/4 {
		t.Fatalf("%d calls went %v and %v, want both to serve about half", n, da, db)
	}
}

// loadWorker is one agent's loop of calls through the gateway, each on its
// own MCP session and workspace.
type loadWorker struct {
	ws        string
	c         *client.Client
	completed atomic.Int64 // calls that ended (with or without success)
}

// callLoad is several workers calling in loops until stop, recording every
// failure and every acknowledged push.
type callLoad struct {
	w       *world
	ctx     context.Context
	workers []*loadWorker
	quit    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup

	mu       sync.Mutex
	failures map[string]int      // category → count
	samples  []string            // the first failures' texts
	acked    map[string][]string // workspace → heads of acknowledged pushes
}

func (w *world) newCallLoad(t *testing.T, n int) *callLoad {
	t.Helper()
	l := &callLoad{w: w, ctx: context.WithoutCancel(t.Context()), quit: make(chan struct{}), failures: map[string]int{}, acked: map[string][]string{}}
	for i := range n {
		lw := &loadWorker{ws: fmt.Sprintf("svc%d", i), c: w.httpClient(t, agentToken)}
		w.ok(t, lw.c, "clone", map[string]any{"workspace": lw.ws, "url": w.repoURL})
		w.ok(t, lw.c, "checkout", map[string]any{"workspace": lw.ws, "branch": lw.ws, "create": true})
		l.workers = append(l.workers, lw)
	}
	return l
}

// call calls a tool once. On failure it returns the category (the text up
// to the first ": ") and the text; a protocol error is category "protocol".
func (l *callLoad) call(lw *loadWorker, tool string, args map[string]any) (map[string]any, string, string) {
	defer lw.completed.Add(1)
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Minute)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	res, err := lw.c.CallTool(ctx, req)
	if err != nil {
		l.fail("protocol", tool+": "+err.Error())
		return nil, "protocol", err.Error()
	}
	txt := text(res)
	l.w.record(txt)
	if res.IsError {
		cat, _, _ := strings.Cut(txt, ": ")
		l.fail(cat, tool+": "+txt)
		return nil, cat, txt
	}
	m, _ := res.StructuredContent.(map[string]any)
	return m, "", ""
}

func (l *callLoad) fail(cat, txt string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures[cat]++
	if len(l.samples) < 20 {
		l.samples = append(l.samples, txt)
	}
}

// run starts every worker on loop, which returns when it should stop.
func (l *callLoad) run(loop func(lw *loadWorker, round int) bool) {
	for _, lw := range l.workers {
		l.wg.Go(func() {
			for round := 0; ; round++ {
				select {
				case <-l.quit:
					return
				default:
				}
				if !loop(lw, round) {
					return
				}
			}
		})
	}
}

// stop ends the load and waits for the workers (once; later calls wait
// too).
func (l *callLoad) stop() {
	l.stopped.Do(func() { close(l.quit) })
	l.wg.Wait()
}

// completed is how many calls each worker has ended so far.
func (l *callLoad) completed() []int64 {
	out := make([]int64, len(l.workers))
	for i, lw := range l.workers {
		out[i] = lw.completed.Load()
	}
	return out
}

// waitEachCompletes waits until every worker has ended n more calls than
// it had at since: calls they had in flight at since are over.
func (l *callLoad) waitEachCompletes(t *testing.T, since []int64, n int64, what string) {
	t.Helper()
	testkit.Eventually(t, what, func() bool {
		for i, c := range l.completed() {
			if c < since[i]+n {
				return false
			}
		}
		return true
	})
}

func (l *callLoad) report() (map[string]int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.failures), slices.Clone(l.samples)
}

// TestServiceDrainsOnSIGTERMWithoutFailingACall: during a steady write load
// through a gateway over two services, one service gets SIGTERM: it reports
// NOT_SERVING, gets no new call from then on while the other takes them
// all, finishes what it had and exits cleanly; no call fails.
func TestServiceDrainsOnSIGTERMWithoutFailingACall(t *testing.T) {
	w := newServicesWorld(t)
	// The drain delay leaves the test room to watch the draining service
	// (it still answers /metrics) on a loaded machine.
	drain := ", drain_delay: 10s, drain_timeout: 30s"
	a, b := w.startReplica(t, "a", drain), w.startReplica(t, "b", drain)
	w.startGatewayOver(t, a, b)
	load := w.newCallLoad(t, 4)
	load.run(func(lw *loadWorker, round int) bool {
		content := fmt.Sprintf("%s round %d\n", lw.ws, round)
		load.call(lw, "write_file", map[string]any{"workspace": lw.ws, "path": lw.ws + ".txt", "content": content})
		load.call(lw, "commit", map[string]any{"workspace": lw.ws, "message": content, "idempotency_key": fmt.Sprintf("%s-commit-%d", lw.ws, round)})
		return true
	})
	defer load.stop()
	testkit.Eventually(t, "both services serve the writes", func() bool {
		return a.served(t, "commit") > 0 && b.served(t, "commit") > 0
	})

	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termAt := time.Now()
	testkit.Eventually(t, "service a reports NOT_SERVING", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		st, err := healthOf(ctx, a.addr)
		return err == nil && st == healthpb.HealthCheckResponse_NOT_SERVING
	})
	// Once every worker has ended two calls since, whatever it had in flight
	// when a said NOT_SERVING is over: a's count may not move after that.
	load.waitEachCompletes(t, load.completed(), 2, "every worker ends two calls after NOT_SERVING")
	before, err := a.metric(t.Context(), "gitgate_operations_total", "")
	if err != nil {
		t.Fatalf("service a stopped before the test could watch its drain (drain_delay too short for this machine?): %v", err)
	}
	bBefore := b.served(t, "")
	load.waitEachCompletes(t, load.completed(), 4, "every worker ends four more calls")
	after, err := a.metric(t.Context(), "gitgate_operations_total", "")
	if err != nil {
		t.Fatalf("service a stopped before the test could watch its drain (drain_delay too short for this machine?): %v", err)
	}
	if after != before {
		t.Errorf("service a served %v new calls after it reported NOT_SERVING", after-before)
	}
	if got := b.served(t, "") - bBefore; got < 16 {
		t.Errorf("service b served %v calls meanwhile, want the 16 the workers made at least", got)
	}

	select {
	case <-a.exited:
	case <-time.After(testkit.Patience):
		t.Fatal("service a did not exit after SIGTERM")
	}
	if a.exitErr != nil {
		t.Fatalf("service a after SIGTERM: %v", a.exitErr)
	}
	exitedAfter := time.Since(termAt)
	load.waitEachCompletes(t, load.completed(), 4, "every worker ends four more calls with service a gone")
	load.stop()
	failures, samples := load.report()
	var calls int64
	for _, c := range load.completed() {
		calls += c
	}
	t.Logf("%d write calls; service a exited %s after SIGTERM (drain_delay 10s); failures %v", calls, exitedAfter.Round(100*time.Millisecond), failures)
	if len(failures) != 0 {
		t.Fatalf("calls failed during the drain: %v; first: %s", failures, strings.Join(samples, "\n"))
	}
}

// retryable says whether a failed write may be sent again with its key:
// the service may not have run it (unavailable, timeout), or an identical
// one is still being settled.
func retryable(cat, txt string) bool {
	return cat == "unavailable" || cat == "timeout" || cat == "protocol" ||
		(cat == "conflict" && strings.Contains(txt, "still running"))
}

// persist calls a write until it succeeds or fails for good, retrying what
// retryable allows with the same idempotency key for up to three minutes.
func (l *callLoad) persist(lw *loadWorker, tool string, args map[string]any) (map[string]any, bool) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		res, cat, txt := l.call(lw, tool, args)
		if cat == "" {
			return res, true
		}
		if !retryable(cat, txt) || time.Now().After(deadline) {
			return nil, false
		}
		select {
		case <-l.quit:
			return nil, false
		case <-time.After(200 * time.Millisecond): // a retry's back-off, not a synchronisation
		}
	}
}

// pushGate holds every push at the remote while it is closed.
type pushGate struct {
	closed  atomic.Bool
	held    atomic.Int64
	mu      sync.Mutex
	release chan struct{}
}

func (g *pushGate) hook(string) {
	if !g.closed.Load() {
		return
	}
	g.mu.Lock()
	rel := g.release
	g.mu.Unlock()
	g.held.Add(1)
	<-rel
	g.held.Add(-1)
}

func (g *pushGate) close() {
	g.mu.Lock()
	g.release = make(chan struct{})
	g.mu.Unlock()
	g.closed.Store(true)
}

func (g *pushGate) open() {
	g.closed.Store(false)
	g.mu.Lock()
	close(g.release)
	g.mu.Unlock()
}

// TestKilledServiceWritesAreSettledByTheOther: during a steady push load
// through a gateway over two services, one is SIGKILLed with pushes of its
// own in flight. The agents retry what failed with the same keys; the
// surviving service settles the dead one's journal entries (its Redis
// leases expire, its fences are older) without running anything twice:
// every acknowledged push is on the remote exactly once, no commit appears
// twice, nothing is left started, and no call fails as internal.
func TestKilledServiceWritesAreSettledByTheOther(t *testing.T) {
	w := newServicesWorld(t)
	a, b := w.startReplica(t, "a", ""), w.startReplica(t, "b", "")
	w.startGatewayOver(t, a, b)
	gate := &pushGate{}
	hook := gate.hook
	w.pushHook.Store(&hook)
	load := w.newCallLoad(t, 6)
	var acked sync.Map // workspace → *atomic.Int64 acknowledged pushes
	for _, lw := range load.workers {
		acked.Store(lw.ws, &atomic.Int64{})
	}
	load.run(func(lw *loadWorker, round int) bool {
		content := fmt.Sprintf("%s round %d\n", lw.ws, round)
		if _, ok := load.persist(lw, "write_file", map[string]any{"workspace": lw.ws, "path": lw.ws + ".txt", "content": content,
			"idempotency_key": fmt.Sprintf("%s-write-%d", lw.ws, round)}); !ok {
			return true
		}
		if _, ok := load.persist(lw, "commit", map[string]any{"workspace": lw.ws, "message": content,
			"idempotency_key": fmt.Sprintf("%s-commit-%d", lw.ws, round)}); !ok {
			return true
		}
		res, ok := load.persist(lw, "push", map[string]any{"workspace": lw.ws, "idempotency_key": fmt.Sprintf("%s-push-%d", lw.ws, round)})
		if ok {
			head, _ := res["head"].(string)
			load.mu.Lock()
			load.acked[lw.ws] = append(load.acked[lw.ws], head)
			load.mu.Unlock()
			n, _ := acked.Load(lw.ws)
			n.(*atomic.Int64).Add(1)
		}
		return true
	})
	defer load.stop()
	ackedEach := func(min int64) bool {
		for _, lw := range load.workers {
			if n, _ := acked.Load(lw.ws); n.(*atomic.Int64).Load() < min {
				return false
			}
		}
		return true
	}
	testkit.Eventually(t, "every agent pushed, through both services", func() bool {
		return ackedEach(1) && a.served(t, "push") > 0 && b.served(t, "push") > 0
	})

	// Hold every push at the remote until each agent has one held; kill a
	// once some of them are a's.
	var onA float64
	for attempt := 0; ; attempt++ {
		gate.close()
		testkit.Eventually(t, "a push of every agent held at the remote", func() bool { return gate.held.Load() == int64(len(load.workers)) })
		onA = a.metricOrZero(t, "gitgate_operations_in_flight", "push")
		if onA > 0 {
			break
		}
		gate.open()
		if attempt == 5 {
			t.Fatal("service a never had a push in flight when every agent's push was held")
		}
		load.waitEachCompletes(t, load.completed(), 1, "the held pushes end")
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	killedAt := time.Now()
	ackedAtKill := map[string]int64{}
	for _, lw := range load.workers {
		n, _ := acked.Load(lw.ws)
		ackedAtKill[lw.ws] = n.(*atomic.Int64).Load()
	}
	gate.open() // a's orphaned git pushes may land now, as b's go on
	testkit.Eventually(t, "every agent acknowledged two more pushes after the kill", func() bool {
		for _, lw := range load.workers {
			if n, _ := acked.Load(lw.ws); n.(*atomic.Int64).Load() < ackedAtKill[lw.ws]+2 {
				return false
			}
		}
		return true
	})
	load.stop()
	recovered := time.Since(killedAt)

	j, err := journal.Open(t.Context(), w.pgDSN, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var left []journal.Entry
	settled := pollUntil(t, 5*time.Minute, func() bool {
		left, err = j.Unsettled(t.Context(), 0)
		return err == nil && len(left) == 0
	})
	if !settled {
		t.Fatalf("journal entries still started 5 min after the kill: %+v (%v)", left, err)
	}
	reconciled := 0
	for _, p := range journalPushes(t, w.pgDSN) {
		if p.Reconciled {
			reconciled++
			t.Logf("reconciled push %s of %s: %s %s", p.Key, p.Workspace, p.State, p.Message)
		}
	}

	settledAfter := time.Since(killedAt)
	load.mu.Lock()
	ackedHeads := maps.Clone(load.acked)
	load.mu.Unlock()
	pushes := 0
	for _, lw := range load.workers {
		ref := "refs/heads/" + lw.ws
		subjects := strings.Split(w.remoteGit(t, "log", "--format=%s", ref), "\n")
		seen := map[string]int{}
		for _, s := range subjects {
			if seen[s]++; seen[s] == 2 {
				t.Errorf("%s: commit %q is on the remote twice", lw.ws, s)
			}
		}
		for _, head := range ackedHeads[lw.ws] {
			pushes++
			if !w.remoteContains(t, ref, head) {
				t.Errorf("%s: acknowledged push of %s is not on the remote", lw.ws, head)
			}
		}
	}
	failures, samples := load.report()
	t.Logf("%d acknowledged pushes; service a killed with %v pushes in flight; every agent pushed twice more within %s; journal settled within %s; %d pushes reconciled; failures by category %v",
		pushes, onA, recovered.Round(100*time.Millisecond), settledAfter.Round(100*time.Millisecond), reconciled, failures)
	for cat := range failures {
		if cat != "unavailable" && cat != "timeout" && cat != "conflict" {
			t.Errorf("calls failed as %s (want unavailable, timeout or conflict only): %s", cat, strings.Join(samples, "\n"))
		}
	}
}

// metricOrZero is metric, failing the test when the replica does not answer.
func (r *replicaProc) metricOrZero(t *testing.T, family, op string) float64 {
	t.Helper()
	n, err := r.metric(t.Context(), family, op)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// remoteContains reports whether commit is on the remote's ref.
func (w *world) remoteContains(t *testing.T, ref, commit string) bool {
	t.Helper()
	cmd := exec.Command("/usr/bin/git", "--git-dir="+filepath.Join(w.remoteRoot, "demo.git"), "merge-base", "--is-ancestor", commit, ref)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
	return cmd.Run() == nil
}

// pollUntil polls cond every 200 ms until it holds (true) or limit passes
// (false): for waits longer than testkit.Patience.
func pollUntil(t *testing.T, limit time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-t.Context().Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
	return true
}
