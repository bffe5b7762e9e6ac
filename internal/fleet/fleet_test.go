package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/jackc/pgx/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// The scale of a run: GITGATE_FLEET_AGENTS agents (make fleet: 100) and
// GITGATE_FLEET_SECONDS of load per phase. The defaults keep a plain
// `go test ./internal/fleet` to about two minutes on two idle cores (make
// test skips TestFleet for its time budget: see FLEET_TESTS in the Makefile).
const (
	defaultAgents  = 12
	defaultSeconds = 4
)

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// TestFleet is issue 15's demonstration, every part real and on loopback:
// three `gitgate serve` behind HAProxy, two `gitgate backend` services,
// `gitgate flags serve`, Redis with Sentinel, PostgreSQL (the journal and
// the canary ledger), a git remote, and agents (mcp-go clients through
// HAProxy, each on its own branch) looping clone, write_file, commit,
// push and reads with every operation at a 50 % canary. Phases, each
// measured:
//
//  1. warm-up: every agent pushes at least once;
//  2. a rolling restart of the three gateways and then the two services,
//     one at a time (SIGTERM, exit, start, ready and UP): no agent call
//     fails;
//  3. one service SIGKILLed under load: the other processes settle every
//     journal entry started before the kill (none stays started); then it
//     is started again;
//  4. a Sentinel failover under load: the calls that fail meanwhile fail
//     as unavailable, and every agent is served again by itself;
//  5. a stage change and the kill switch, written to the flag source's
//     file, reach the three gateways' /status (the times are measured);
//  6. gitgate report over the PostgreSQL ledger counts the calls made
//     through each gateway.
//
// A phase's failures are those of the calls that ran in it, checked once
// they have all ended. Then every acknowledged push is on the remote
// exactly once: each agent's branch holds every commit it was told was
// pushed, and no round's commit twice; and no clone answered success on
// another branch than the one asked. The figures (throughput, P50/P95 per tool, memory,
// propagation) are logged and written under GITGATE_FLEET_OUT.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of processes")
	}
	t.Parallel()
	n := envInt(t, "GITGATE_FLEET_AGENTS", defaultAgents)
	secs := envInt(t, "GITGATE_FLEET_SECONDS", defaultSeconds)
	phase := time.Duration(secs) * time.Second
	fig := &figures{Agents: n, PhaseSeconds: float64(secs), Started: time.Now().UTC(), Memory: map[string]memFigures{},
		Propagation: map[string]map[string]float64{}, Drains: map[string]float64{}, LedgerCalls: map[string]int64{}}

	w := newWorld(t, n)
	l := startLoad(t, w.mcpURL, w.repoURL, n)
	stopped := false
	var loadEnd time.Time
	stopLoad := func() {
		if !stopped {
			l.stop()
			stopped, loadEnd = true, time.Now()
		}
	}
	loadStart := time.Now()
	var marks []mark
	// The figures are logged however the test ends: a phase that fails
	// still leaves what was measured until then.
	defer func() {
		stopLoad()
		w.figures(fig, l, marks, loadStart, loadEnd)
		fig.log(t)
		w.keepLogs()
	}()
	hold := func(d time.Duration) {
		if !pause.For(t.Context(), d) { // the load runs this long: a measurement's length, not a wait for a condition
			t.Fatal("the test ended")
		}
	}
	begin := func(name string) func() {
		start := time.Now()
		t.Logf("phase %s at %s", name, start.UTC().Format("15:04:05.000"))
		return func() { marks = append(marks, mark{name, start, time.Now()}) }
	}

	// 1. Warm-up: every agent has pushed once.
	end := begin("warm-up")
	// Every agent's first round clones, checks a branch out, writes,
	// commits and pushes: with many agents on a small machine that takes
	// longer than testkit.Patience, so the wait grows with the agents.
	warmDeadline := time.Now().Add(max(testkit.Patience, time.Duration(n)*3*time.Second))
	for {
		acked := l.ackedPushes()
		if len(acked) == n {
			break
		}
		if time.Now().After(warmDeadline) {
			t.Fatalf("%d of %d agents pushed by the warm-up's deadline; failures so far: %v", len(acked), n,
				firstCalls(l.failures(time.Time{}, time.Time{}), 5))
		}
		hold(100 * time.Millisecond) // a poll of the agents' progress
	}
	hold(phase)
	end()
	underLoad := w.memory()
	if m, err := readMemory(os.Getpid()); err == nil {
		underLoad[testProcess] = m
	}
	for name, m := range underLoad {
		fig.Memory[name] = memFigures{UnderLoadKB: m.rssKB}
	}

	// 2. Rolling restart: no agent call fails.
	end = begin("rolling-restart")
	for i, g := range w.gateways {
		took, err := g.stop(syscall.SIGTERM)
		if err != nil {
			t.Errorf("%s did not exit cleanly after SIGTERM: %v", g.name, err)
		}
		fig.Drains[g.name] = ms(took)
		g.start()
		w.waitGatewayUp(i)
	}
	for i, s := range w.services {
		took, err := s.stop(syscall.SIGTERM)
		if err != nil {
			t.Errorf("service %d did not exit cleanly after SIGTERM: %v", i, err)
		}
		fig.Drains[s.name] = ms(took)
		w.restartService(i)
	}
	hold(phase / 2)
	end()
	restart := marks[len(marks)-1] // checked once the load stopped
	w.quiet(l, restart.end)

	// 3. A service SIGKILLed under load: the others settle what it left in
	// the journal; then it is started again.
	end = begin("service-kill")
	killed := time.Now()
	if _, err := w.services[1].stop(syscall.SIGKILL); err == nil {
		t.Error("service 1 exited cleanly after SIGKILL")
	}
	testkit.EventuallyNil(t, "the others settle every journal entry started before the kill", func() error {
		return w.journalSettled(killed)
	})
	fig.JournalSettleMS = ms(time.Since(killed))
	fig.Reconciled = w.reconciled()
	hold(phase / 2)
	w.restartService(1)
	hold(phase / 2)
	end()

	// 4. A Sentinel failover under load.
	end = begin("redis-failover")
	before, err := w.sentinel.Master(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	failoverStart := time.Now()
	after, err := w.sentinel.Failover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	failedOver := time.Now()
	fig.FailoverMS = ms(failedOver.Sub(failoverStart))
	if after == before {
		t.Errorf("the master is still %s after the failover", after)
	}
	// Every agent is served again: checked without ending the test, so
	// that a run where agents do not recover still measures the rest.
	for {
		served := map[int]bool{}
		for _, c := range l.within(failedOver, time.Time{}, func(c call) bool { return !c.failed() }) {
			served[c.agent] = true
		}
		fig.ServedAfter = len(served)
		if len(served) == n {
			fig.RecoveryMS = ms(time.Since(failedOver))
			break
		}
		if time.Since(failedOver) > testkit.Patience {
			var last []call
			for i := range n {
				if mine := l.within(failedOver, time.Time{}, func(c call) bool { return c.agent == i }); !served[i] && len(mine) > 0 {
					last = append(last, mine[len(mine)-1])
				}
			}
			t.Errorf("%d of %d agents served within %s of the failover; the last calls of those not served: %s",
				len(served), n, testkit.Patience, firstCalls(last, 10))
			break
		}
		hold(100 * time.Millisecond) // a poll of the agents' progress
	}
	hold(phase / 2)
	end()
	failover := marks[len(marks)-1]
	w.quiet(l, failover.end)

	// 5. A stage change and the kill switch reach every gateway.
	end = begin("flags")
	ops := backends.OpNames()
	fig.Propagation["stage 50% to 100%"] = w.propagate(func(f *flags.File) error {
		for _, op := range ops {
			if err := f.SetRoute(op, 100); err != nil {
				return err
			}
		}
		return nil
	}, func(i int) error { return w.following(i, 100, false) })
	fig.Propagation["kill switch on"] = w.propagate(func(f *flags.File) error { f.SetKill(true); return nil },
		func(i int) error { return w.following(i, 100, true) })
	fig.Propagation["kill switch off"] = w.propagate(func(f *flags.File) error { f.SetKill(false); return nil },
		func(i int) error { return w.following(i, 100, false) })
	fig.Propagation["stage 100% to 50%"] = w.propagate(func(f *flags.File) error {
		for _, op := range ops {
			if err := f.SetRoute(op, canaryRoute); err != nil {
				return err
			}
		}
		return nil
	}, func(i int) error { return w.following(i, canaryRoute, false) })
	hold(phase / 2)
	end()

	stopLoad()
	// Every call has ended: the phases' checks.
	if fails := l.failedDuring(restart.start, restart.end); len(fails) > 0 {
		t.Errorf("%d agent calls failed during the rolling restart, want none: %v", len(fails), firstCalls(fails, 10))
	}
	for _, c := range l.failedDuring(failover.start, failover.end) {
		if c.category != string(backends.Unavailable) {
			t.Errorf("during the Redis failover a call failed as %s, want unavailable: %v", c.category, c)
		}
	}
	// 6. The report over the PostgreSQL ledger reads every gateway's calls.
	end = begin("ledger")
	testkit.EventuallyNil(t, "every journal entry is settled", func() error { return w.journalSettled(time.Now()) })
	for i, g := range w.gateways {
		fig.LedgerCalls[g.name] = w.probeLedger(i)
	}
	end()

	// Every acknowledged push is on the remote exactly once.
	w.checkPushes(l.ackedPushes())

}

// mark is a phase's name and time.
type mark struct {
	name       string
	start, end time.Time
}

// figures fills fig from the load's calls, the phases and the processes
// (the load has stopped), and fails the test on an answer that
// contradicts its request.
func (w *world) figures(fig *figures, l *load, marks []mark, loadStart, loadEnd time.Time) {
	t := w.t
	for name, m := range w.memory() {
		f := fig.Memory[name]
		f.FinalRSSKB = m.rssKB
		fig.Memory[name] = f
	}
	for _, p := range w.procs() {
		f := fig.Memory[p.name]
		f.PeakKB = p.peak()
		fig.Memory[p.name] = f
	}
	if m, err := readMemory(os.Getpid()); err == nil {
		f := fig.Memory[testProcess]
		f.PeakKB = m.hwmKB
		f.FinalRSSKB = m.rssKB
		fig.Memory[testProcess] = f
	}
	fig.LeasesLost = map[string]int{}
	for _, p := range w.procs() {
		if k := strings.Count(p.logText(), `"msg":"workspace lock lost`); k > 0 {
			fig.LeasesLost[p.name] = k
		}
	}
	all := l.within(time.Time{}, time.Time{}, nil)
	fig.Tools = toolsOf(all)
	ok := 0
	for _, c := range all {
		if !c.failed() {
			ok++
		}
	}
	if d := loadEnd.Sub(loadStart).Seconds(); d > 0 {
		fig.CallsPerSecond = float64(ok) / d
	}
	for _, m := range marks {
		fig.Phases = append(fig.Phases, phaseOf(l, m.name, m.start, m.end))
	}
	for _, a := range l.ackedPushes() {
		fig.AckedPushes += len(a)
	}
	l.mu.Lock() // the load has stopped; the lock only keeps the race detector informed
	abandoned := slices.Clone(l.abandoned)
	findings := slices.Clone(l.findings)
	halfMade := l.halfMade
	l.mu.Unlock()
	for _, f := range findings {
		t.Errorf("an answer contradicts the request: %s", f)
	}
	fig.HalfMadeWorkspaces = halfMade
	fig.AbandonedRounds = len(abandoned)
	for _, a := range abandoned {
		t.Logf("an agent gave a round up: %s", a)
	}
}

// quiet waits until every call that started before t has ended, so that
// the failures of a phase are its own, not the next phase's.
func (w *world) quiet(l *load, t time.Time) {
	w.t.Helper()
	testkit.EventuallyNil(w.t, "the calls of the phase have ended", func() error { return l.settledBefore(t) })
}

// testProcess names the test's own process (the agents and the remote)
// among the memory figures.
const testProcess = "test-process"

// firstCalls formats up to n calls.
func firstCalls(calls []call, n int) string {
	var parts []string
	for _, c := range calls[:min(n, len(calls))] {
		parts = append(parts, c.String())
	}
	if len(calls) > n {
		parts = append(parts, fmt.Sprintf("and %d more", len(calls)-n))
	}
	return strings.Join(parts, "; ")
}

// memory reads every running process's memory, by name.
func (w *world) memory() map[string]memory {
	out := map[string]memory{}
	for _, p := range w.procs() {
		if pid := p.pid(); pid != 0 {
			if m, err := readMemory(pid); err == nil {
				out[p.name] = m
			}
		}
	}
	return out
}

// restartService starts service i again and waits until it serves and
// the gateways send it calls again.
func (w *world) restartService(i int) {
	t, s := w.t, w.services[i]
	s.start()
	waitServing(t, fmt.Sprintf("service %d", i), s.addr)
	metrics := "http://" + s.admin + "/metrics"
	testkit.EventuallyNil(t, fmt.Sprintf("the gateways send service %d calls again", i), func() error {
		n, err := metricSum(metrics, "gitgate_operations_total")
		if err != nil {
			return err
		}
		if n < 10 {
			return fmt.Errorf("%v calls served since it started", n)
		}
		return nil
	})
}

// journalSettled says which journal entries started before since are
// still started, or nil when none is.
func (w *world) journalSettled(since time.Time) error {
	ctx, cancel := context.WithTimeout(w.t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, w.pgDSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT workspace, op, started_at FROM op_journal WHERE state = 'started' AND started_at < $1`, since)
	if err != nil {
		return err
	}
	var left []string
	for rows.Next() {
		var ws, op string
		var at time.Time
		if err := rows.Scan(&ws, &op, &at); err != nil {
			return err
		}
		left = append(left, fmt.Sprintf("%s %s started %s", ws, op, at.UTC().Format("15:04:05.000")))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("%d entries still started: %v", len(left), left)
	}
	return nil
}

// reconciled counts the journal entries crash reconciliation settled.
func (w *world) reconciled() int {
	ctx, cancel := context.WithTimeout(w.t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, w.pgDSN)
	if err != nil {
		w.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM op_journal WHERE reconciled`).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// propagate edits the flag file and measures, per gateway, the time until
// its /status shows the change (shown says why it does not yet), polling
// every gateway at once every few milliseconds.
func (w *world) propagate(change func(*flags.File) error, shown func(i int) error) map[string]float64 {
	t := w.t
	edit := flags.Edit{By: "fleet-test", Reason: "propagation", Summary: "fleet test", Ops: backends.OpNames()}
	if err := edit.Apply(w.flagPath, change); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	out := map[string]float64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, g := range w.gateways {
		wg.Go(func() {
			deadline := written.Add(testkit.Patience)
			for {
				err := shown(i)
				if err == nil {
					mu.Lock()
					out[g.name] = ms(time.Since(written))
					mu.Unlock()
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("%s did not show the change within %s: %v", g.name, testkit.Patience, err)
					return
				}
				time.Sleep(2 * time.Millisecond) // a fast poll: the measurement's resolution
			}
		})
	}
	wg.Wait()
	return out
}

// probeLedger pulls through gateway i alone (its own MCP address), an
// operation the agents never make, and returns how many more pulls
// `gitgate report` over the PostgreSQL ledger counts afterwards; it must
// be exactly the pulls made.
func (w *world) probeLedger(i int) int64 {
	t, g := w.t, w.gateways[i]
	const op = "pull"
	before := w.reportCalls(op)
	c, err := client.NewStreamableHttpClient("http://"+g.mcpAddr+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + agentToken(0)}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), testkit.Patience)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "gitgate-fleet-probe", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	ws := fmt.Sprintf("probe-%s", g.name)
	callTool := func(tool string, args map[string]any) {
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = tool, args
		res, err := c.CallTool(ctx, req)
		if err != nil {
			t.Fatalf("%s through %s: %v", tool, g.name, err)
		}
		if res.IsError {
			t.Fatalf("%s through %s: %s", tool, g.name, resultText(res))
		}
	}
	callTool("clone", map[string]any{"workspace": ws, "url": w.repoURL})
	made := int64(i + 2) // a different count per gateway
	for range made {
		callTool(op, map[string]any{"workspace": ws})
	}
	var got int64
	testkit.EventuallyNil(t, fmt.Sprintf("the report counts the %d pulls made through %s", made, g.name), func() error {
		got = w.reportCalls(op) - before
		if got < made {
			return fmt.Errorf("%d more pulls counted, want %d", got, made)
		}
		return nil
	})
	if got != made {
		t.Errorf("the report counts %d more pulls after %d were made through %s", got, made, g.name)
	}
	return got
}

// reportCalls runs `gitgate report --format json` over the PostgreSQL
// ledger and returns the calls of op it counts (both backends, the stage
// it judges).
func (w *world) reportCalls(op string) int64 {
	t := w.t
	cmd := exec.Command(gitgateBinary(t), "report", "--ledger-dsn-env", "FLEET_LEDGER_DSN", "--flags", w.flagPath, "--format", "json")
	cmd.Env = w.env
	out, err := cmd.Output()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok && exit.ExitCode() != 3 { // 3: a rollback verdict, still a report
		t.Fatalf("gitgate report: %v: %s", err, exit.Stderr)
	} else if err != nil && !ok {
		t.Fatal(err)
	}
	var report struct {
		Operations []struct {
			Op        string `json:"op"`
			Approach1 struct {
				Calls int64 `json:"calls"`
			} `json:"approach1"`
			Approach2 struct {
				Calls int64 `json:"calls"`
			} `json:"approach2"`
		} `json:"operations"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("the report's JSON: %v\n%s", err, out)
	}
	var n int64
	for _, o := range report.Operations {
		if o.Op == op {
			n += o.Approach1.Calls + o.Approach2.Calls
		}
	}
	return n
}

// checkPushes checks every agent's branch on the remote: each
// acknowledged push's commit is in its history, and no round's commit is
// there twice.
func (w *world) checkPushes(acked map[int][]ackedPush) {
	t := w.t
	total := 0
	for _, i := range slices.Sorted(maps.Keys(acked)) {
		branch := "fleet/" + agentName(i)
		cmd := exec.Command("/usr/bin/git", "--git-dir="+filepath.Join(w.dir, "remote", "demo.git"), "log", "--format=%H %s", "refs/heads/"+branch)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s on the remote: %v: %s", branch, err, out)
			continue
		}
		shas := map[string]bool{}
		subjects := map[string]int{}
		for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
			sha, subject, _ := strings.Cut(line, " ")
			shas[sha] = true
			subjects[subject]++
		}
		for _, p := range acked[i] {
			total++
			if !shas[p.sha] {
				t.Errorf("%s: the acknowledged push of round %d (%s %q) is not on the remote", branch, p.round, p.sha, p.message)
			}
			if subjects[p.message] != 1 {
				t.Errorf("%s: round %d's commit %q is on the remote %d times, want once", branch, p.round, p.message, subjects[p.message])
			}
		}
		for subject, k := range subjects {
			if k > 1 {
				t.Errorf("%s: %q is on the remote %d times", branch, subject, k)
			}
		}
	}
	if total == 0 {
		t.Error("no push was acknowledged: the check would be vacuous")
	}
}
