package drill

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// ProbeConfig is the drill agent: a dedicated agent whose calls through
// each gateway's MCP endpoint show, from the outside, which backend serves
// while the kill switch is on and the breaker forced.
type ProbeConfig struct {
	// Token is the drill agent's bearer token; Project its project (the
	// routing key is project/workspace).
	Token, Project string
	// Repo is a repository the drill agent may clone into its probe
	// workspace (cloned once, then reused).
	Repo string
	// Op is the read the probes make (default status).
	Op string
	// Workspaces is how many workspace names (gitgate-drill-0, -1, ...)
	// the drill considers to find one the flags send to Approach 2.
	// Default 64.
	Workspaces int
}

// probeWorkspacePrefix names the drill agent's workspaces.
const probeWorkspacePrefix = "gitgate-drill-"

// probeSetup is the probe chosen in the preflight.
type probeSetup struct {
	op        string
	workspace string
	routed    backends.Name // where the flags sent it before the drill
	clients   []*client.Client
}

// probeCall is one probe.
type probeCall struct {
	start, end time.Time
	backend    string
	fellBack   bool
	err        string
}

// setUpProbe picks a probe workspace the flags send to Approach 2 (found
// by evaluating the flag source's bytes with flagd in process, exactly as
// the gateways do), makes sure it holds a clone, and connects the drill
// agent to every gateway.
func (r *run) setUpProbe(ctx context.Context, flagData []byte) (*probeSetup, error) {
	pc := r.cfg.Probe
	if pc.Token == "" || pc.Project == "" {
		return nil, errors.New("the drill agent needs a token and a project (drill.probe)")
	}
	p := &probeSetup{op: pc.Op, routed: backends.Approach1}
	if p.op == "" {
		p.op = string(backends.OpStatus)
	}
	ws, routed, err := r.probeWorkspace(ctx, flagData, p.op)
	if err != nil {
		return nil, err
	}
	p.workspace, p.routed = ws, routed
	for _, t := range r.cfg.Targets {
		if t.MCP == "" {
			return nil, fmt.Errorf("gateway %s has no MCP URL (drill.gateways[].mcp, drill.discover.mcp_port)", t.Name)
		}
		c, err := dialMCP(ctx, t, pc.Token)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("gateway %s: %w", t.Name, err)
		}
		p.clients = append(p.clients, c)
	}
	first := p.call(ctx, 0, p.op, map[string]any{"workspace": p.workspace})
	if first.err != "" && pc.Repo != "" {
		clone := p.call(ctx, 0, string(backends.OpClone), map[string]any{"workspace": p.workspace, "url": pc.Repo})
		first = p.call(ctx, 0, p.op, map[string]any{"workspace": p.workspace})
		if first.err != "" && clone.err != "" {
			first.err = "clone: " + clone.err + "; then " + first.err
		}
	}
	if first.err != "" {
		p.close()
		return nil, fmt.Errorf("%s on workspace %s: %s", p.op, p.workspace, first.err)
	}
	if first.backend != string(p.routed) && !first.fellBack {
		r.note("the probe workspace %s was served by %s before the drill, the flags say %s", p.workspace, first.backend, p.routed)
	}
	return p, nil
}

// probeWorkspace returns the first of the drill agent's workspaces that the
// flags route to Approach 2 for op, evaluating flagData in process.
func (r *run) probeWorkspace(ctx context.Context, flagData []byte, op string) (string, backends.Name, error) {
	n := r.cfg.Probe.Workspaces
	if n <= 0 {
		n = 64
	}
	dir, err := os.MkdirTemp("", "gitgate-drill-flags-")
	if err != nil {
		return "", "", err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "flags.json")
	if err := os.WriteFile(path, flagData, 0o600); err != nil {
		return "", "", err
	}
	ev, err := flags.Open(ctx, flags.Config{Path: path, Ops: r.cfg.Ops, Domain: "gitgate-drill-probe", Logger: r.cfg.Logger})
	if err != nil {
		return "", "", err
	}
	defer ev.Close()
	key := func(i int) string { return r.cfg.Probe.Project + "/" + probeWorkspacePrefix + strconv.Itoa(i) }
	deadline := time.Now().Add(10 * time.Second)
	for ev.Decide(ctx, op, key(0)).FailSafe != "" {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", "", fmt.Errorf("the flags could not be evaluated: %s", ev.Decide(ctx, op, key(0)).FailSafe)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range n {
		if ev.Decide(ctx, op, key(i)).Backend == backends.Approach2 {
			return probeWorkspacePrefix + strconv.Itoa(i), backends.Approach2, nil
		}
	}
	r.note("none of %d probe workspaces is routed to approach2 for %s: the probes cannot tell the kill switch from the flags", n, op)
	return probeWorkspacePrefix + "0", backends.Approach1, nil
}

func dialMCP(ctx context.Context, t Target, token string) (*client.Client, error) {
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token})}
	if t.MCPHost != "" {
		opts = append(opts, transport.WithHTTPBasicClient(&http.Client{Transport: hostHeader{host: t.MCPHost, next: http.DefaultTransport}}))
	}
	c, err := client.NewStreamableHttpClient(t.MCP, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "gitgate-drill", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("MCP initialize: %w", err)
	}
	return c, nil
}

func (p *probeSetup) close() {
	for _, c := range p.clients {
		_ = c.Close()
	}
}

// probeTimeout bounds one probe call.
const probeTimeout = 30 * time.Second

// call makes one probe call through gateway i.
func (p *probeSetup) call(ctx context.Context, i int, tool string, args map[string]any) probeCall {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	pc := probeCall{start: time.Now()}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	res, err := p.clients[i].CallTool(ctx, req)
	pc.end = time.Now()
	switch {
	case err != nil:
		pc.err = err.Error()
	case res.IsError:
		pc.err = "error result"
		for _, c := range res.Content {
			if tc, ok := c.(mcp.TextContent); ok {
				pc.err = firstLine(tc.Text)
				break
			}
		}
	default:
		if m, ok := res.StructuredContent.(map[string]any); ok {
			pc.backend, _ = m["backend"].(string)
			pc.fellBack, _ = m["fell_back"].(bool)
		}
	}
	return pc
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// probing is the drill agent's probes running against every gateway.
type probing struct {
	stop func() [][]probeCall
}

// startProbes probes every gateway in a loop until stopped (nothing
// without a probe).
func (r *run) startProbes(ctx context.Context) probing {
	if r.probe == nil {
		return probing{stop: func() [][]probeCall { return nil }}
	}
	ctx, cancel := context.WithCancel(ctx)
	out := make([][]probeCall, len(r.gws))
	var wg sync.WaitGroup
	for i := range r.gws {
		wg.Go(func() {
			for ctx.Err() == nil {
				c := r.probe.call(ctx, i, r.probe.op, map[string]any{"workspace": r.probe.workspace})
				if ctx.Err() != nil && c.err != "" {
					return // cut short by the stop, not a failure
				}
				out[i] = append(out[i], c)
			}
		})
	}
	return probing{stop: func() [][]probeCall { cancel(); wg.Wait(); return out }}
}

// judgeProbes: after the gateway applied the kill switch (effect, on the
// drill's clock), every probe must be served by Approach 1 without error.
func (r *run) judgeProbes(gr *GatewayResult, t0, effect time.Time, calls []probeCall) {
	var firstA1 time.Time
	for _, c := range calls {
		if c.backend == string(backends.Approach2) {
			firstA1 = time.Time{}
		} else if c.err == "" && firstA1.IsZero() && !c.start.Before(t0) {
			firstA1 = c.start
		}
		if c.start.Before(effect) {
			continue
		}
		gr.Probes++
		switch {
		case c.err != "":
			gr.ProbeFailures++
		case c.backend == string(backends.Approach2):
			gr.ProbesOnApproach2++
		}
	}
	if !firstA1.IsZero() {
		gr.ProbeMS = msPtr(firstA1.Sub(t0))
	}
	if gr.ProbesOnApproach2 > 0 {
		r.fail("gateway %s: %d of the drill agent's probes were served by approach2 after it applied the kill switch", gr.Name, gr.ProbesOnApproach2)
	}
	if gr.ProbeFailures > 0 {
		r.fail("gateway %s: %d of the drill agent's probes failed while the kill switch was on", gr.Name, gr.ProbeFailures)
	}
	if gr.Probes == 0 {
		r.note("gateway %s: no probe started after it applied the kill switch", gr.Name)
	}
}
