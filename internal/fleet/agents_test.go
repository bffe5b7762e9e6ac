package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Agent pacing, a load generator's pace and not a wait for a condition.
// An AI agent thinks between two tool calls (its model reads the answer
// and writes the next call): the pause between two calls of one agent is
// drawn uniformly from [thinkMin, thinkMax), as in cmd/gitgate's load A/A
// test (TestLoadAAAtAgentPace). That is faster than a model's real think
// time (seconds), so the fleet still carries more calls per agent than a
// real one. After a failed call the agent pauses between retryPauseMin and
// retryPauseMax before retrying (an agent's client backs off; the jitter
// keeps a hundred agents that failed together, as in a failover, from
// retrying in lockstep).
const (
	thinkMin      = 200 * time.Millisecond
	thinkMax      = 800 * time.Millisecond
	retryPauseMin = 250 * time.Millisecond
	retryPauseMax = 750 * time.Millisecond
	// agentRamp is the time between two agents' starts.
	agentRamp = 50 * time.Millisecond
	// callTimeout bounds one tool call as the agent's client sees it.
	callTimeout = 2 * time.Minute
)

// categoryTransport is a failed call that got no tool result (the HTTP
// exchange or the MCP protocol failed).
const categoryTransport = "transport"

// call is one tool call (or initialize) as an agent saw it.
type call struct {
	agent      int
	tool       string
	start, end time.Time
	category   string // "" when it succeeded; a backends.Category or categoryTransport
	msg        string // the error text of a failed call
	backend    string // who served it, when it succeeded
}

func (c call) failed() bool { return c.category != "" }

func (c call) String() string {
	outcome := "ok (" + c.backend + ")"
	if c.failed() {
		outcome = "failed: " + firstLine(c.msg)
	}
	return fmt.Sprintf("agent %d %s at %s (%s): %s", c.agent, c.tool, c.start.UTC().Format("15:04:05.000"),
		c.end.Sub(c.start).Round(time.Millisecond), outcome)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// ackedPush is a push an agent was told succeeded: the commit it carried.
type ackedPush struct {
	round   int
	sha     string // the commit the round made (the push's head)
	message string
}

// load is the agents' work through HAProxy: each agent loops over rounds
// of clone (its own branch), write_file, commit, push, reads (status,
// log, diff, read_file, list_files, branches) and release_workspace, in a
// new workspace each round, until stopped. Every call is recorded.
type load struct {
	url, repoURL string
	stopping     atomic.Bool
	wg           sync.WaitGroup

	mu    sync.Mutex
	calls []call
	acked map[int][]ackedPush
	// abandoned are rounds an agent gave up (a refusal retrying cannot
	// help).
	abandoned []string
	// findings are answers that contradict what was asked; each fails
	// the test.
	findings []string
	// halfMade counts the workspaces a clone left part-way (not on the
	// branch asked) that an agent found in its way, released and cloned
	// again.
	halfMade int
	// inFlight is when each agent's running call started.
	inFlight map[int]time.Time
}

func (l *load) begin(agent int, at time.Time) {
	l.mu.Lock()
	l.inFlight[agent] = at
	l.mu.Unlock()
}

func (l *load) done(agent int) {
	l.mu.Lock()
	delete(l.inFlight, agent)
	l.mu.Unlock()
}

// settledBefore says which agents still run a call started before t, or
// nil when none does: the calls of a phase have all ended (and are
// recorded) before the next phase disturbs the fleet.
func (l *load) settledBefore(t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var running []string
	for agent, at := range l.inFlight {
		if at.Before(t) {
			running = append(running, fmt.Sprintf("agent %d since %s", agent, at.UTC().Format("15:04:05.000")))
		}
	}
	if len(running) > 0 {
		return fmt.Errorf("calls still running: %v", running)
	}
	return nil
}

func (l *load) finding(f string) {
	l.mu.Lock()
	l.findings = append(l.findings, f)
	l.mu.Unlock()
}

// startLoad starts n agents; they run until stop.
func startLoad(t *testing.T, url, repoURL string, n int) *load {
	l := &load{url: url, repoURL: repoURL, acked: map[int][]ackedPush{}, inFlight: map[int]time.Time{}}
	for i := range n {
		a := &agent{l: l, i: i}
		l.wg.Go(func() {
			// Agents start over a ramp (agentRamp apart), as a fleet's agents
			// do, not in one burst of clones.
			if pause.For(context.Background(), time.Duration(i)*agentRamp) {
				a.run()
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

// stop asks every agent to stop after its current call and waits for
// them.
func (l *load) stop() {
	l.stopping.Store(true)
	l.wg.Wait()
}

func (l *load) record(c call) {
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}

// within returns the calls that started in [since, until) (a zero until
// has no end) and match (nil: all).
func (l *load) within(since, until time.Time, match func(call) bool) []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []call
	for _, c := range l.calls {
		if c.start.Before(since) || (!until.IsZero() && !c.start.Before(until)) {
			continue
		}
		if match == nil || match(c) {
			out = append(out, c)
		}
	}
	return out
}

// failures are the failed calls that started in [since, until).
func (l *load) failures(since, until time.Time) []call { return l.within(since, until, call.failed) }

// failedDuring are the failed calls that ran at some time in [since,
// until): started before until and ended at or after since.
func (l *load) failedDuring(since, until time.Time) []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []call
	for _, c := range l.calls {
		if c.failed() && c.start.Before(until) && !c.end.Before(since) {
			out = append(out, c)
		}
	}
	return out
}

// ackedPushes returns every agent's acknowledged pushes.
func (l *load) ackedPushes() map[int][]ackedPush {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int][]ackedPush{}
	for i, a := range l.acked {
		out[i] = slices.Clone(a)
	}
	return out
}

// agent is one simulated agent: a real MCP client (mcp-go, Streamable
// HTTP) with its own identity.
type agent struct {
	l          *load
	i          int
	c          *client.Client
	round      int
	roundStart time.Time
	onRepo     bool // its branch exists on the remote
	keys       int
}

func (a *agent) branch() string { return "fleet/" + agentName(a.i) }

func (a *agent) run() {
	defer func() {
		if a.c != nil {
			_ = a.c.Close()
		}
	}()
	for a.round = 0; !a.l.stopping.Load(); a.round++ {
		a.doRound()
	}
}

// pace waits between two calls; false once the load stops.
func (a *agent) pace() bool {
	if a.l.stopping.Load() {
		return false
	}
	return pause.For(context.Background(), thinkMin+rand.N(thinkMax-thinkMin)) && !a.l.stopping.Load() //nolint:gosec // think time, not security
}

// connect opens a new MCP session through the load balancer (recorded as
// a call of "initialize").
func (a *agent) connect() bool {
	if a.c != nil {
		_ = a.c.Close()
		a.c = nil
	}
	rec := call{agent: a.i, tool: "initialize", start: time.Now()}
	a.l.begin(a.i, rec.start)
	defer a.l.done(a.i)
	c, err := client.NewStreamableHttpClient(a.l.url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + agentToken(a.i)}),
		transport.WithHTTPTimeout(callTimeout))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err = c.Start(ctx)
		if err == nil {
			init := mcp.InitializeRequest{}
			init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
			init.Params.ClientInfo = mcp.Implementation{Name: "gitgate-fleet-agent", Version: "1"}
			_, err = c.Initialize(ctx, init)
		}
		cancel()
		if err != nil {
			_ = c.Close()
		}
	}
	rec.end = time.Now()
	if err != nil {
		rec.category, rec.msg = categoryTransport, err.Error()
		a.l.record(rec)
		return false
	}
	a.l.record(rec)
	a.c = c
	return true
}

// call makes one tool call and records it.
func (a *agent) call(tool string, args map[string]any) (map[string]any, call) {
	rec := call{agent: a.i, tool: tool, start: time.Now()}
	if a.c == nil && !a.connect() { // the failed initialize is recorded
		rec.end, rec.category, rec.msg = time.Now(), categoryTransport, "no session: initialize failed"
		return nil, rec
	}
	rec.start = time.Now()
	a.l.begin(a.i, rec.start)
	defer a.l.done(a.i)
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	res, err := a.c.CallTool(ctx, req)
	cancel()
	rec.end = time.Now()
	var out map[string]any
	switch {
	case err != nil:
		rec.category, rec.msg = categoryTransport, err.Error()
		if errors.Is(err, transport.ErrSessionTerminated) {
			_ = a.c.Close()
			a.c = nil // a new session on the next call
		}
	case res.IsError:
		rec.msg = resultText(res)
		rec.category = categoryOf(rec.msg)
	default:
		out, _ = res.StructuredContent.(map[string]any)
		rec.backend, _ = out["backend"].(string)
	}
	a.l.record(rec)
	return out, rec
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// categoryOf reads the category a tool error starts with ("unavailable:
// ..."); an error that names none is "unrecognised".
func categoryOf(text string) string {
	cat, _, ok := strings.Cut(text, ": ")
	if ok && slices.Contains(backends.Categories, backends.Category(cat)) {
		return cat
	}
	return "unrecognised"
}

// retryable says whether a failure may pass if the call is made again.
func retryable(cat string) bool {
	switch backends.Category(cat) {
	case backends.Unavailable, backends.Timeout, backends.RateLimited, backends.ResourceExhausted, backends.Internal, backends.Canceled:
		return true
	}
	return cat == categoryTransport || cat == "unrecognised"
}

// keyAttempts is how many times a write is sent with one idempotency key
// before the agent takes a new one: a key whose write settled as failed
// replays that failure to every retry.
const keyAttempts = 4

// write makes a write until it succeeds. A retry keeps the idempotency
// key (the first attempt may have run, even when the answer was an
// error: a service killed mid-call; the journal answers for it), except
// after keyAttempts failures with it or an outcome the journal calls
// unknown, when the agent looks at the workspace (settled) and, if the
// write is not there, sends it with a new key. While an identical write
// is still running, it waits for it with the same key. settled, given a
// failure after the first attempt, says whether what the write was to do
// is already the state (a refused clone, checkout or commit whose earlier
// attempt went through) and returns the result to use instead. write
// returns nil and the last call when the load stops or retrying cannot
// help.
func (a *agent) write(tool string, args map[string]any, settled func(c call) (map[string]any, bool)) (map[string]any, call) {
	newKey := func() {
		a.keys++
		args["idempotency_key"] = fmt.Sprintf("%s-r%d-%s-%d", agentName(a.i), a.round, tool, a.keys)
	}
	newKey()
	began, withKey := time.Now(), 0
	for attempt := 0; ; attempt++ {
		out, c := a.call(tool, args)
		if !c.failed() {
			return out, c
		}
		if attempt > 0 && settled != nil {
			if res, ok := settled(c); ok {
				return res, c
			}
		}
		running := c.category == string(backends.Conflict) && strings.Contains(c.msg, "still running")
		unknown := c.category == string(backends.Conflict) && strings.Contains(c.msg, "is unknown")
		if (!retryable(c.category) && !running && !unknown) || time.Since(began) > testkit.Patience || !a.retryPause() {
			if tool != "clone" || !strings.Contains(c.msg, "already exists") { // clone handles that one
				a.abandon(c)
			}
			return nil, c
		}
		if !running {
			withKey++
		}
		if unknown || withKey >= keyAttempts {
			newKey()
			withKey = 0
		}
	}
}

// read makes a read until it succeeds.
func (a *agent) read(tool string, args map[string]any) bool {
	began := time.Now()
	for {
		_, c := a.call(tool, args)
		if !c.failed() {
			return true
		}
		if !retryable(c.category) || time.Since(began) > testkit.Patience || !a.retryPause() {
			a.abandon(c)
			return false
		}
	}
}

func (a *agent) retryPause() bool {
	return !a.l.stopping.Load() && pause.For(context.Background(), retryPauseMin+rand.N(retryPauseMax-retryPauseMin)) //nolint:gosec // jitter, not security
}

// abandon records that the agent gives its round up after c, with the
// round's calls.
func (a *agent) abandon(c call) {
	if a.l.stopping.Load() {
		return
	}
	mine := a.l.within(a.roundStart, time.Time{}, func(o call) bool { return o.agent == a.i })
	a.l.mu.Lock()
	a.l.abandoned = append(a.l.abandoned, fmt.Sprintf("agent %d round %d gave up after %v; its calls: %s", a.i, a.round, c, firstCalls(mine, 30)))
	a.l.mu.Unlock()
}

// doRound is one round of the agent's work in a workspace of its own.
func (a *agent) doRound() {
	a.roundStart = time.Now()
	ws := fmt.Sprintf("%s-r%d", agentName(a.i), a.round)
	wsArg := func(extra map[string]any) map[string]any {
		m := map[string]any{"workspace": ws}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	// A retried clone or checkout refused because the workspace or branch
	// already exists: an earlier attempt went through, or part of the way
	// (a clone whose process died). It counts when the workspace is on the
	// branch the round wants.
	exists := func(c call) (map[string]any, bool) {
		if c.category != string(backends.Conflict) || !strings.Contains(c.msg, "already exists") {
			return nil, false
		}
		out, sc := a.call("status", wsArg(nil))
		if sc.failed() {
			return nil, false
		}
		want := a.branch()
		if c.tool == "clone" && !a.onRepo {
			want = "main" // the checkout of the agent's branch follows
		}
		return map[string]any{"branch": want}, out["branch"] == want
	}
	if !a.pace() {
		return
	}
	if !a.clone(ws, wsArg, exists) {
		return
	}
	defer a.release(ws)
	if !a.onRepo {
		if !a.pace() {
			return
		}
		if res, _ := a.write("checkout", wsArg(map[string]any{"branch": a.branch(), "create": true}), exists); res == nil {
			return
		}
	}
	content := fmt.Sprintf("%s round %d\n", agentName(a.i), a.round)
	path := "fleet/" + agentName(a.i) + ".txt"
	if !a.pace() {
		return
	}
	if res, _ := a.write("write_file", wsArg(map[string]any{"path": path, "content": content}), nil); res == nil {
		return
	}
	message := fmt.Sprintf("%s: round %d", agentName(a.i), a.round)
	// A retried commit refused with nothing to commit: the first attempt
	// committed; its commit is HEAD.
	committed := func(c call) (map[string]any, bool) {
		if c.category != string(backends.Conflict) || !strings.Contains(c.msg, "nothing to commit") {
			return nil, false
		}
		out, lc := a.call("log", wsArg(map[string]any{"limit": 1}))
		if lc.failed() {
			return nil, false
		}
		commits, _ := out["commits"].([]any)
		if len(commits) == 0 {
			return nil, false
		}
		head, _ := commits[0].(map[string]any)
		if subject, _ := head["subject"].(string); subject != message {
			return nil, false
		}
		return map[string]any{"sha": head["sha"]}, true
	}
	if !a.pace() {
		return
	}
	res, _ := a.write("commit", wsArg(map[string]any{"message": message}), committed)
	if res == nil {
		return
	}
	sha, _ := res["sha"].(string)
	if !a.pace() {
		return
	}
	if res, _ := a.write("push", wsArg(nil), nil); res == nil {
		return
	}
	a.onRepo = true
	a.l.mu.Lock()
	a.l.acked[a.i] = append(a.l.acked[a.i], ackedPush{round: a.round, sha: sha, message: message})
	a.l.mu.Unlock()
	for _, r := range []struct {
		tool string
		args map[string]any
	}{
		{"status", wsArg(nil)},
		{"log", wsArg(map[string]any{"limit": 5})},
		{"diff", wsArg(map[string]any{"ref": "HEAD~1"})},
		{"read_file", wsArg(map[string]any{"path": path})},
		{"list_files", wsArg(nil)},
		{"branches", wsArg(nil)},
	} {
		if !a.pace() || !a.read(r.tool, r.args) {
			return
		}
	}
}

// clone clones the round's workspace: from the remote's default branch
// until the agent's branch is on the remote, then that branch. A
// workspace in the way that is not on the branch (a clone stopped
// part-way) is released and cloned again; a clone that says it succeeded
// on another branch than asked is a finding.
func (a *agent) clone(ws string, wsArg func(map[string]any) map[string]any, exists func(call) (map[string]any, bool)) bool {
	for range 3 {
		args := wsArg(map[string]any{"url": a.l.repoURL})
		want := "main"
		if a.onRepo {
			args["branch"], want = a.branch(), a.branch()
		}
		res, c := a.write("clone", args, exists)
		if res == nil {
			if c.category == string(backends.Conflict) && strings.Contains(c.msg, "already exists") && !a.l.stopping.Load() {
				a.l.mu.Lock()
				a.l.halfMade++
				a.l.mu.Unlock()
				a.release(ws) // not on the branch: made part-way
				continue
			}
			return false
		}
		if got, ok := res["branch"].(string); ok && got != want {
			a.l.finding(fmt.Sprintf("agent %d round %d: clone of %s into %s succeeded on branch %q", a.i, a.round, want, ws, got))
			a.release(ws)
			continue
		}
		return true
	}
	return false
}

// release drops the round's workspace (its work is pushed, or given up).
func (a *agent) release(ws string) {
	if a.l.stopping.Load() {
		return
	}
	gone := func(c call) (map[string]any, bool) {
		return map[string]any{}, c.category == string(backends.NotFound)
	}
	_, _ = a.write("release_workspace", map[string]any{"workspace": ws, "force": true}, gone)
}
