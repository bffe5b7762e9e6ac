package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/mcp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestSilentPartitionOpensTheBreaker: status and read_file go to
// Approach 2 through a proxy that then turns into a silent blackhole
// (every byte dropped both ways, nothing reset). Every call still
// succeeds (reads fall back to Approach 1); each operation's breaker opens
// within its first few calls (the per-call deadline and the keepalive turn
// the partition into failures the breaker counts), and from then on calls
// are served by Approach 1 without trying Approach 2: refused by the open
// breaker as never started, not failed by a timeout. The automatic
// rollback is held off so that the breakers are what cuts Approach 2 off.
func TestSilentPartitionOpensTheBreaker(t *testing.T) {
	t.Parallel() // it mostly waits for deadlines
	f := flags.NewFile(backends.OpNames())
	ops := []string{"status", "read_file"}
	for _, op := range ops {
		_ = f.SetRoute(op, 100)
	}
	var proxy *backendtest.TCPProxy
	w, _, _ := newCanaryWorld(t, f, func(c *configs.Config) {
		noAutomaticRollback(c)
		proxy = backendtest.NewProxy(t, c.Approach2.Target)
		c.Approach2.Target = proxy.Addr()
	})
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "part", "url": w.repoURL})
	args := map[string]map[string]any{
		"status":    {"workspace": "part"},
		"read_file": {"workspace": "part", "path": "README.md"},
	}
	type served struct {
		backend  string
		fellBack bool
		took     time.Duration
	}
	// The agent gives up on a call after agentPatience, as the MCP clients
	// of the report did: a call that waits for gRPC to notice the dead link
	// (40 s before) is then cancelled, which says nothing about Approach 2,
	// and its breaker never opens. Calls bounded by the client's own
	// deadlines fail on Approach 2 and fall back before that.
	const agentPatience = 30 * time.Second
	gaveUp := 0
	call := func(op string) served {
		t.Helper()
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), agentPatience)
		defer cancel()
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = op, args[op]
		res, err := c.CallTool(ctx, req)
		if err != nil && ctx.Err() != nil {
			gaveUp++
			return served{"gave up", false, time.Since(start)}
		}
		if err != nil || res.IsError { // reads fall back: every call succeeds
			t.Fatalf("%s: %v %s", op, err, text(res))
		}
		m, _ := res.StructuredContent.(map[string]any)
		fell, _ := m["fell_back"].(bool)
		b, _ := m["backend"].(string)
		return served{b, fell, time.Since(start)}
	}
	breaker := func(op string) string {
		return w.metric(t, `gitgate_breaker_state{backend="approach2",op="`+op+`"}`)
	}
	fallbacks := func(op, reason string) int {
		n, _ := strconv.Atoi(w.metric(t, `gitgate_fallbacks_total{op="`+op+`",reason="`+reason+`"}`))
		return n
	}
	for _, op := range ops {
		if s := call(op); s.backend != "approach2" || s.fellBack || breaker(op) != "0" {
			t.Fatalf("%s before the partition: served by %s (fell back %v), breaker %s", op, s.backend, s.fellBack, breaker(op))
		}
	}

	proxy.Blackhole(true)
	// K: a breaker trips on 5 consecutive failures (the default); one more
	// for a call whose failure raced with the breaker's own bookkeeping.
	const maxCallsToOpen, callsAfterOpen = 6, 10
	var before, after []time.Duration
	for _, op := range ops {
		opened := 0
		for i := 1; i <= maxCallsToOpen; i++ {
			s := call(op)
			if s.backend != "approach1" && s.backend != "gave up" || s.backend == "approach1" && !s.fellBack {
				t.Fatalf("%s call %d during the partition: served by %s (fell back %v), want a fallback to approach1", op, i, s.backend, s.fellBack)
			}
			before = append(before, s.took)
			if breaker(op) == "2" {
				opened = i
				break
			}
		}
		if opened == 0 {
			t.Fatalf("%s: breaker still %s after %d calls through the partition (the agent gave up on %d), want 2 (open)", op, breaker(op), maxCallsToOpen, gaveUp)
		}
		t.Logf("%s: breaker open after %d calls through the partition", op, opened)
	}
	for _, op := range ops {
		refusedBefore, failedBefore := fallbacks(op, "not_started"), fallbacks(op, "failed")
		for i := range callsAfterOpen {
			s := call(op)
			if s.backend != "approach1" || !s.fellBack {
				t.Fatalf("%s call %d after the breaker opened: served by %s (fell back %v)", op, i, s.backend, s.fellBack)
			}
			after = append(after, s.took)
		}
		// Refused by the breaker: "not_started", not a failed (timed-out)
		// attempt. A probe the breaker lets through once its open period
		// is over (30 s, on a very slow machine) fails and re-opens it.
		refused, failed := fallbacks(op, "not_started")-refusedBefore, fallbacks(op, "failed")-failedBefore
		if refused < callsAfterOpen-1 || failed > 1 {
			t.Errorf("%s: of %d calls after the breaker opened, %d were refused at once and %d tried Approach 2 and failed; want all refused (one probe at most)",
				op, callsAfterOpen, refused, failed)
		}
		if breaker(op) != "2" {
			t.Errorf("%s: breaker %s after the calls, want 2 (open)", op, breaker(op))
		}
	}
	t.Logf("per-call latency during the partition, before the breakers opened: %s", latencies(before))
	t.Logf("per-call latency during the partition, once they were open: %s", latencies(after))
}

// latencies summarises call durations: count, median, max.
func latencies(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	parts := make([]string, len(s))
	for i, d := range ds {
		parts[i] = d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%d calls, median %s, max %s (%s)", len(s), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), strings.Join(parts, " "))
}

// TestHealthAnswersForTheServiceName: the standard health check answers
// for the GitService by its name, as for the server (""), and follows
// readiness the same way: SERVING once ready, NOT_SERVING with Redis gone.
func TestHealthAnswersForTheServiceName(t *testing.T) {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	redisProxy, cut := backendtest.Proxy(t, "127.0.0.1:6379")
	w.redisAddr = redisProxy
	addr, _ := w.startBackend(t)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	check := func(service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		res, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		return res.GetStatus(), err
	}
	if approach2.ServiceName != "gitgate.approach2.v1.GitService" {
		t.Fatalf("approach2.ServiceName is %q", approach2.ServiceName)
	}
	testkit.Eventually(t, "the service reports SERVING by name", func() bool {
		st, err := check(approach2.ServiceName)
		if err != nil {
			t.Fatalf("health check for %s: %v", approach2.ServiceName, err) // NotFound when not registered
		}
		return st == healthpb.HealthCheckResponse_SERVING
	})
	cut()
	testkit.Eventually(t, "the service reports NOT_SERVING by name and as a whole with Redis gone", func() bool {
		byName, err1 := check(approach2.ServiceName)
		whole, err2 := check("")
		return err1 == nil && err2 == nil && byName == healthpb.HealthCheckResponse_NOT_SERVING && whole == healthpb.HealthCheckResponse_NOT_SERVING
	})
}
