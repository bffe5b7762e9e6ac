package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/testkit"
)

// The load A/A test's scale, from the environment (make load-aa sets them
// for the figure: 100 agents, 180 s, 4 CPU burners). Test
// settings are GITGATE_TEST_* variables, which the configuration's check
// of GITGATE_* variables leaves alone.
const (
	envLoadAgents  = "GITGATE_TEST_LOAD_AGENTS"  // agents, each in its own workspace (default 10)
	envLoadSeconds = "GITGATE_TEST_LOAD_SECONDS" // how long they work (default 20: make test; make load-aa runs 100 for 180)
	envLoadBusy    = "GITGATE_TEST_LOAD_BUSY"    // CPU burners making the machine busy (default 0)
)

// Agent pace: the think time between an agent's calls is drawn uniformly
// from [thinkMin, thinkMax).
const (
	thinkMin = 200 * time.Millisecond
	thinkMax = 800 * time.Millisecond
)

// TestLoadAAAtAgentPace: every operation routed at 50 % and shadowed at
// 10 %, Approach 2 the real service on the same machine (so as fast as
// Approach 1: an A/A canary), agents each in its own workspace working a
// realistic session at agent pace — clone once, a branch of its own, then
// rounds of status, read_file, write_file, diff, status, commit, log,
// branches, push and pull, with think time between calls — for a bounded
// time, the machine optionally made busy. No shadow comparison may be a
// mismatch (each is printed with its diff: a comparison that is not stale
// must agree), and no automatic rollback may happen: none counted
// (gitgate_auto_rollbacks_total), none in the ledger, every route still
// at 50 % in the flag file.
func TestLoadAAAtAgentPace(t *testing.T) {
	// Its agents mostly think (a fixed 20 s in make test): it runs beside
	// the package's other parallel tests, whose load it is built to bear
	// (make load-aa adds CPU burners), and alone under make load-aa.
	t.Parallel()
	agents := envCount(t, envLoadAgents, 10)
	seconds := envCount(t, envLoadSeconds, 20)
	busy := envCount(t, envLoadBusy, 0)
	f := flags.NewFile(backends.OpNames())
	for _, op := range backends.OpNames() {
		if err := f.SetRoute(op, 50); err != nil {
			t.Fatal(err)
		}
		if err := f.SetShadow(op, 0.1); err != nil {
			t.Fatal(err)
		}
	}
	// The agents share one identity (ada), each with a session of its
	// own: the cap on one agent's sessions must let them all live. The
	// workspace locks have the default lease (10 s), not the tests'
	// shorter one, which a machine this busy cannot renew in time.
	w, flagPath, _ := newCanaryWorldWith(t, f, func(w *world) { w.lockTTL = "10s" },
		func(c *configs.Config) { c.MCP.MaxSessionsPerAgent = agents + 8 })
	burnCPU(t, busy)
	t.Logf("%d agents for %d s at agent pace (think %s–%s), %d CPU burners", agents, seconds, thinkMin, thinkMax, busy)

	// The clients connect from the test's goroutine (newLoadClient fails
	// the test on a dial error); each agent's session runs in its own.
	clients := make([]*loadClient, agents)
	for i := range clients {
		clients[i] = newLoadClient(t, w.mcpURL, agentToken)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Duration(seconds)*time.Second)
	defer cancel()
	results := make([]agentTally, agents)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() { results[i] = agentSession(ctx, t, c, w.repoURL, i) })
	}
	wg.Wait()

	var total agentTally
	for _, r := range results {
		total.merge(r)
	}
	t.Logf("calls served per backend (as the agents saw them): %v; fell back: %d", total.served, total.fellBack)
	t.Logf("calls per operation: %v", total.calls)
	if len(total.errors) > 0 {
		t.Logf("failed calls by operation and error (%d):\n%s", total.failed, countsText(total.errors))
	}
	if total.served[backends.Approach1.String()] == 0 || total.served[backends.Approach2.String()] == 0 {
		t.Fatalf("the load did not reach both backends: %v", total.served)
	}

	// The shadows run behind the calls: wait until they all ended (the
	// count of comparisons stops moving), then read the metrics and stop
	// the gateway, which writes the ledger's last entries.
	last := -1
	testkit.EventuallyEvery(t, "the last shadows end", 2*time.Second, func() bool {
		n := w.shadowComparisons(t)
		settled := n == last
		last = n
		return settled
	})
	metrics := scrape(t, w.adminURL+"/metrics")
	w.stopHTTP()

	byOutcome := metricSums(metrics, "gitgate_shadow_comparisons_total", "outcome")
	t.Logf("gitgate_shadow_comparisons_total by outcome: %v", byOutcome)
	if n := byOutcome[canary.OutcomeMismatch.String()]; n != 0 {
		t.Errorf("gitgate_shadow_comparisons_total counts %v mismatches", n)
	}
	if n := metricSums(metrics, "gitgate_auto_rollbacks_total", "op"); sumOf(n) != 0 {
		t.Errorf("automatic rollbacks happened: %v", n)
	}
	if n := metricValue(metrics, "gitgate_ledger_dropped_total"); n != 0 {
		t.Logf("the ledger dropped %v entries", n)
	}

	entries, err := canary.ReadFile(canary.LedgerPath(flagPath), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	routed, served := map[string]int{}, map[string]int{}
	outcomes := map[string]map[canary.Outcome]int{"read": {}, "write": {}}
	unfinished := map[string]int{}
	for _, e := range entries {
		switch e.Kind {
		case canary.KindCall:
			routed[e.Routed.String()]++
			served[e.Backend.String()]++
		case canary.KindRollback:
			t.Errorf("automatic rollback in the ledger: %s at %s: %s", e.Op, e.At.Format(time.RFC3339), e.Detail)
		case canary.KindComparison:
			kind := "write"
			if e.Op.IsRead() {
				kind = "read"
			}
			outcomes[kind][e.Outcome]++
			switch e.Outcome {
			case canary.OutcomeMismatch:
				t.Errorf("%s mismatch (%s primary, %s shadow, at %s):\n%s%s", e.Op, e.Routed, e.Backend, e.At.Format(time.RFC3339Nano), e.Detail,
					unknownBefore(total.unknown, e.At))
			case canary.OutcomeShadowError, canary.OutcomeShadowTimeout:
				unfinished[fmt.Sprintf("%s %s: %s", e.Op, e.Outcome, firstLine(e.Detail))]++
			}
		}
	}
	t.Logf("ledger: calls routed per backend %v, served per backend %v", routed, served)
	t.Logf("ledger: read comparisons %v; write comparisons %v", outcomes["read"], outcomes["write"])
	if len(unfinished) > 0 {
		t.Logf("unfinished shadows:\n%s", countsText(unfinished))
	}
	if outcomes["read"][canary.OutcomeMatch] == 0 || outcomes["write"][canary.OutcomeMatch] == 0 {
		t.Errorf("no matching read or write comparison: the A/A shows nothing (%v)", outcomes)
	}

	g, err := flags.Load(flagPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range backends.OpNames() {
		if g.Route(op) != 50 {
			t.Errorf("%s is routed at %d%% after the load, want 50%%", op, g.Route(op))
		}
	}
}

// agentTally is what one agent's session saw.
type agentTally struct {
	calls    map[string]int // per operation
	served   map[string]int // per backend that served the call
	fellBack int
	failed   int
	errors   map[string]int // "op: error's first line"
	lastErr  string         // the last call's error text, "" if it succeeded
	// unknown are the writes whose outcome is unknown (their workspace
	// lock lost part-way: they may still land), as "time workspace op".
	unknown []unknownWrite
}

// unknownWrite is a write that ended with an unknown outcome.
type unknownWrite struct {
	start, end time.Time
	ws, op     string
}

func (a *agentTally) init() {
	if a.calls == nil {
		a.calls, a.served, a.errors = map[string]int{}, map[string]int{}, map[string]int{}
	}
}

func (a *agentTally) count(op, backend, errText string, fellBack bool) {
	a.init()
	a.calls[op]++
	a.lastErr = errText
	if errText != "" {
		a.failed++
		a.errors[op+": "+firstLine(errText)]++
		return
	}
	a.served[backend]++
	if fellBack {
		a.fellBack++
	}
}

func (a *agentTally) merge(o agentTally) {
	a.init()
	for _, m := range [][2]map[string]int{{a.calls, o.calls}, {a.served, o.served}, {a.errors, o.errors}} {
		for k, v := range m[1] {
			m[0][k] += v
		}
	}
	a.fellBack += o.fellBack
	a.failed += o.failed
	a.unknown = append(a.unknown, o.unknown...)
}

// agentSession is agent i's session until ctx ends: clone once, a branch
// of its own, then rounds of work (its branch pushed and pulled), each
// call after a think time.
func agentSession(ctx context.Context, t *testing.T, c *loadClient, repoURL string, i int) agentTally {
	var tally agentTally
	rng := rand.New(rand.NewPCG(uint64(i), 0xA4))
	ws := fmt.Sprintf("aa-%d", i)
	think := func() bool { return pause.For(ctx, thinkMin+time.Duration(rng.Int64N(int64(thinkMax-thinkMin)))) }
	call := func(tool, args string) bool {
		if !think() {
			return false
		}
		start := time.Now()
		backend, fellBack, errText := c.servedBy(t, tool, args)
		tally.count(tool, backend, errText, fellBack)
		if strings.Contains(errText, "outcome of this") {
			tally.unknown = append(tally.unknown, unknownWrite{start: start, end: time.Now(), ws: ws, op: tool})
		}
		return errText == ""
	}
	wsArg := fmt.Sprintf(`{"workspace":%q}`, ws)
	// Clone once and switch to a branch of its own, retrying as an agent
	// would: a clone or checkout whose outcome is unknown (its workspace
	// lock lost under load) may have happened, which the retry's
	// "already exists" says. The agent never works on main, which the
	// remote's other users move.
	for done := false; !done; {
		done = call("clone", fmt.Sprintf(`{"workspace":%q,"url":%q}`, ws, repoURL)) || strings.Contains(tally.lastErr, "already exists")
		if ctx.Err() != nil {
			return tally
		}
	}
	for done := false; !done; {
		done = call("checkout", fmt.Sprintf(`{"workspace":%q,"branch":%q,"create":true}`, ws, ws)) ||
			(strings.Contains(tally.lastErr, "already exists") && call("checkout", fmt.Sprintf(`{"workspace":%q,"branch":%q}`, ws, ws)))
		if ctx.Err() != nil {
			return tally
		}
	}
	push := fmt.Sprintf(`{"workspace":%q,"branch":%q}`, ws, ws)
	for round := 0; ctx.Err() == nil; round++ {
		call("status", wsArg)
		call("read_file", fmt.Sprintf(`{"workspace":%q,"path":"README.md"}`, ws))
		call("write_file", fmt.Sprintf(`{"workspace":%q,"path":"notes/%s.txt","content":"round %d of %s\n"}`, ws, ws, round, ws))
		call("diff", wsArg)
		call("status", wsArg)
		call("commit", fmt.Sprintf(`{"workspace":%q,"message":"%s: round %d"}`, ws, ws, round))
		call("log", fmt.Sprintf(`{"workspace":%q,"limit":5}`, ws))
		call("branches", wsArg)
		call("push", push)
		call("pull", wsArg)
	}
	return tally
}

// unknownBefore lists the writes of unknown outcome that started in the
// minute before at: evidence for a mismatch (such a write may land after
// the reads that follow it, without counting as a write).
func unknownBefore(unknown []unknownWrite, at time.Time) string {
	var b strings.Builder
	for _, u := range unknown {
		if u.start.Before(at) && u.start.After(at.Add(-time.Minute)) {
			fmt.Fprintf(&b, "\n  a %s of %s of unknown outcome ran %s to %s", u.op, u.ws,
				u.start.UTC().Format("15:04:05.000"), u.end.UTC().Format("15:04:05.000"))
		}
	}
	return b.String()
}

// servedBy calls a tool and returns which backend served it and whether
// it fell back, or the error text of a failed call.
func (c *loadClient) servedBy(t testing.TB, tool, args string) (backend string, fellBack bool, errText string) {
	c.id++
	resp, out := c.post(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, c.id, tool, args))
	return servedIn(resp.StatusCode, out)
}

// servedIn reads a tools/call answer (its HTTP status and body): which
// backend served the call and whether it fell back, or the error text of
// a failed call.
func servedIn(status int, out []byte) (backend string, fellBack bool, errText string) {
	if status != http.StatusOK {
		return "", false, fmt.Sprintf("HTTP %d: %s", status, out)
	}
	var msg struct {
		Result struct {
			IsError           bool `json:"isError"`
			StructuredContent struct {
				Backend  string `json:"backend"`
				FellBack bool   `json:"fell_back"`
			} `json:"structuredContent"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	if err := json.Unmarshal(out, &msg); err != nil {
		return "", false, "undecodable response: " + string(out)
	}
	if msg.Result.IsError {
		if len(msg.Result.Content) == 0 {
			return "", false, "an error without text"
		}
		return "", false, msg.Result.Content[0].Text
	}
	return msg.Result.StructuredContent.Backend, msg.Result.StructuredContent.FellBack, ""
}

// envCount is the non-negative integer in the environment variable name,
// or def when it is unset.
func envCount(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, s)
	}
	return n
}

// burnCPU starts n processes that spin on a CPU each (yes >/dev/null),
// stopped when the test ends.
func burnCPU(t *testing.T, n int) {
	t.Helper()
	for range n {
		cmd := exec.Command("yes")
		cmd.Stdout = nil // /dev/null
		if err := cmd.Start(); err != nil {
			t.Fatalf("start a CPU burner: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
}

// sample is one sample of a Prometheus text exposition.
type sample struct {
	labels map[string]string
	value  float64
}

// metricSamples returns family's samples. Label values are taken as they
// are written: the gateway's labels are bounded names, without a comma, a
// quote or an escape.
func metricSamples(exposition, family string) []sample {
	var out []sample
	for line := range strings.SplitSeq(exposition, "\n") {
		rest, ok := strings.CutPrefix(line, family+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		s := sample{labels: map[string]string{}, value: v}
		for pair := range strings.SplitSeq(labels, ",") {
			k, v, _ := strings.Cut(pair, "=")
			s.labels[k] = strings.Trim(v, `"`)
		}
		out = append(out, s)
	}
	return out
}

// metricSums sums the samples of a family by the value of one label.
func metricSums(exposition, family, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range metricSamples(exposition, family) {
		out[s.labels[label]] += s.value
	}
	return out
}

func sumOf(m map[string]float64) float64 {
	s := 0.0
	for _, v := range m {
		s += v
	}
	return s
}

// countsText lists counted strings, most frequent first.
func countsText(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %5d  %s\n", m[k], k)
	}
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
