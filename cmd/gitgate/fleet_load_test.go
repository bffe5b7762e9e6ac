package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/internal/testkit"
)

// fleetPacing is the pause between two calls of one load agent: a load
// generator's pace (it keeps the load moderate on a shared machine), not
// a wait for a condition.
const fleetPacing = 20 * time.Millisecond

// fleetCall is one call of the fleet's steady load, as the agent saw it.
type fleetCall struct {
	gateway    int    // the index of the gateway the agent works through
	agent      int    // the agent's index
	workspace  string // the agent's workspace
	tool       string
	start, end time.Time
	backend    string // who served it ("" when it failed)
	fellBack   bool   // Approach 2 failed and Approach 1 served it
	err        string // the error text of a failed call, "" when it succeeded
}

// failed reports whether the call failed.
func (c fleetCall) failed() bool { return c.err != "" }

// String is the call in one line, for a test's messages.
func (c fleetCall) String() string {
	outcome := c.backend
	if c.fellBack {
		outcome += " (fell back)"
	}
	if c.failed() {
		outcome = "failed: " + firstLine(c.err)
	}
	return fmt.Sprintf("gateway %d agent %d %s %s at %s (%s): %s", c.gateway, c.agent, c.tool, c.workspace,
		c.start.UTC().Format("15:04:05.000"), c.end.Sub(c.start).Round(time.Millisecond), outcome)
}

// fleetLoad is the fleet's steady load: agents spread over the gateways,
// each in a workspace of its own (cloned once from the world's remote),
// looping over status, write_file, commit, log, read_file and list_files
// (reads and local writes, no push) until stopped, every call recorded.
type fleetLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stopMu sync.Once

	mu    sync.Mutex
	log   []fleetCall
	ended []string // why agents stopped early ("agent 3 on gateway 1: ...")
}

// startFleetLoad starts agents agents on the gateways (agent i on gateway
// i mod len(gateways)), their clients connected from the test's
// goroutine. The load stops when stop is called or the test ends.
func startFleetLoad(t *testing.T, gateways []*world, repoURL string, agents int) *fleetLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	l := &fleetLoad{cancel: cancel}
	clients := make([]*loadClient, agents)
	for i := range clients {
		clients[i] = newLoadClient(t, gateways[i%len(gateways)].mcpURL, agentToken)
	}
	for i, c := range clients {
		g := i % len(gateways)
		l.wg.Go(func() { l.agent(ctx, c, gateways[g], g, i, repoURL) })
	}
	t.Cleanup(l.stop)
	return l
}

// stop ends the load and waits for every agent's last call to end.
func (l *fleetLoad) stop() {
	l.stopMu.Do(func() {
		l.cancel()
		l.wg.Wait()
	})
}

// agent is agent i's session on gateway g until ctx ends or its
// connection breaks (its gateway stopped): clone once (retried until it
// succeeds or says the workspace already exists), then rounds of work.
func (l *fleetLoad) agent(ctx context.Context, c *loadClient, w *world, g, i int, repoURL string) {
	ws := fmt.Sprintf("fleet-%d", i)
	wsArg := fmt.Sprintf(`{"workspace":%q}`, ws)
	call := func(tool, args string) (ok bool, alive bool) {
		if !pause.For(ctx, fleetPacing) {
			return false, false
		}
		rec := fleetCall{gateway: g, agent: i, workspace: ws, tool: tool, start: time.Now()}
		backend, fellBack, errText, err := c.tryServedBy(tool, args)
		rec.end = time.Now()
		if err != nil {
			rec.err = "transport: " + err.Error()
		} else {
			rec.backend, rec.fellBack, rec.err = backend, fellBack, errText
		}
		if rec.err != "" {
			w.record(rec.err) // for the gateway's secret scan
		}
		l.mu.Lock()
		l.log = append(l.log, rec)
		if err != nil {
			l.ended = append(l.ended, fmt.Sprintf("agent %d on gateway %d: %v", i, g, err))
		}
		l.mu.Unlock()
		return rec.err == "", err == nil
	}
	for {
		ok, alive := call(string(backends.OpClone), fmt.Sprintf(`{"workspace":%q,"url":%q}`, ws, repoURL))
		if !alive {
			return
		}
		if ok || strings.Contains(l.lastErr(i), "already exists") {
			break
		}
	}
	for round := 0; ; round++ {
		for _, step := range []struct{ tool, args string }{
			{string(backends.OpStatus), wsArg},
			{string(backends.OpWriteFile), fmt.Sprintf(`{"workspace":%q,"path":"fleet/%s.txt","content":"round %d of %s\n"}`, ws, ws, round, ws)},
			{string(backends.OpCommit), fmt.Sprintf(`{"workspace":%q,"message":"%s: round %d"}`, ws, ws, round)},
			{string(backends.OpLog), fmt.Sprintf(`{"workspace":%q,"limit":3}`, ws)},
			{string(backends.OpReadFile), fmt.Sprintf(`{"workspace":%q,"path":"fleet/%s.txt"}`, ws, ws)},
			{string(backends.OpListFiles), wsArg},
		} {
			if _, alive := call(step.tool, step.args); !alive {
				return
			}
		}
	}
}

// lastErr is the error text of agent i's last call.
func (l *fleetLoad) lastErr(i int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for j := len(l.log) - 1; j >= 0; j-- {
		if l.log[j].agent == i {
			return l.log[j].err
		}
	}
	return ""
}

// calls returns every call recorded so far, in the order they ended.
func (l *fleetLoad) calls() []fleetCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fleetCall(nil), l.log...)
}

// endedEarly says why agents stopped before the load did (their gateway
// stopped, a connection broke).
func (l *fleetLoad) endedEarly() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ended...)
}

// within returns the calls that started in [since, until) and match; a
// zero until has no end.
func (l *fleetLoad) within(since, until time.Time, match func(fleetCall) bool) []fleetCall {
	var out []fleetCall
	for _, c := range l.calls() {
		if c.start.Before(since) || (!until.IsZero() && !c.start.Before(until)) {
			continue
		}
		if match(c) {
			out = append(out, c)
		}
	}
	return out
}

// failures returns the failed calls that started in [since, until) (a
// zero until has no end).
func (l *fleetLoad) failures(since, until time.Time) []fleetCall {
	return l.within(since, until, fleetCall.failed)
}

// onApproach2 returns the calls served by Approach 2 that started in
// [since, until) (a zero until has no end).
func (l *fleetLoad) onApproach2(since, until time.Time) []fleetCall {
	return l.within(since, until, func(c fleetCall) bool { return c.backend == backends.Approach2.String() })
}

// served counts the successful calls by backend.
func (l *fleetLoad) served() map[string]int {
	out := map[string]int{}
	for _, c := range l.calls() {
		if !c.failed() {
			out[c.backend]++
		}
	}
	return out
}

// tryServedBy is servedBy for a goroutine of its own: a broken connection
// is returned as err (the test is not failed from a goroutine that is not
// the test's), and every call is bounded by testkit.Patience.
func (c *loadClient) tryServedBy(tool, args string) (backend string, fellBack bool, errText string, err error) {
	c.id++
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, c.id, tool, args)
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"+
		"Authorization: Bearer %s\r\nContent-Length: %d\r\nMcp-Session-Id: %s\r\nMcp-Protocol-Version: 2025-06-18\r\n\r\n%s",
		c.path, c.host, c.token, len(body), c.session, body)
	if err := c.conn.SetDeadline(time.Now().Add(testkit.Patience)); err != nil {
		return "", false, "", err
	}
	if _, err := c.conn.Write(req.Bytes()); err != nil {
		return "", false, "", err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return "", false, "", err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", false, "", err
	}
	backend, fellBack, errText = servedIn(resp.StatusCode, out)
	return backend, fellBack, errText, nil
}
