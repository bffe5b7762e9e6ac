package main

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestGatewayAdmission: a gateway configured with admission.slots 1 and
// admission.max_queue 1 runs one operation at a time. With a push held at
// the remote (it holds the only slot) and a status queued behind it, a
// write_file is refused at once as unavailable, saying the gateway is at
// capacity, and writes nothing; once the push is let through, the push
// and the queued status are served. The gateway's /metrics shows the
// queue and the refusal (backend approach1).
func TestGatewayAdmission(t *testing.T) {
	w := newWorld(t)
	w.cfg.Admission.Slots, w.cfg.Admission.MaxQueue = 1, 1
	w.startHTTP(t)
	c, pusher, queuer := w.httpClient(t, agentToken), w.httpClient(t, agentToken), w.httpClient(t, agentToken)
	ws := func(extra map[string]any) map[string]any {
		extra["workspace"] = "admission"
		return extra
	}
	w.ok(t, c, "clone", ws(map[string]any{"url": w.repoURL}))
	w.ok(t, c, "checkout", ws(map[string]any{"branch": "admission", "create": true}))
	w.ok(t, c, "write_file", ws(map[string]any{"path": "a.txt", "content": "a"}))
	w.ok(t, c, "commit", ws(map[string]any{"message": "a"}))

	arrived, release := make(chan struct{}), make(chan struct{})
	hold := func(string) { close(arrived); <-release }
	w.pushHook.Store(&hold)
	pushed, queued := make(chan *mcp.CallToolResult, 1), make(chan *mcp.CallToolResult, 1)
	go func() { pushed <- w.call(t, pusher, "push", ws(map[string]any{})) }()
	<-arrived
	go func() { queued <- w.call(t, queuer, "status", ws(map[string]any{})) }()
	testkit.Eventually(t, "the status call queues for the only slot", func() bool {
		return metricValue(scrape(t, w.adminURL+"/metrics"), `gitgate_admission_waiting{backend="approach1"}`) == 1
	})
	res := w.call(t, c, "write_file", ws(map[string]any{"path": "refused.txt", "content": "r"}))
	if got := text(res); !res.IsError || !strings.HasPrefix(got, "unavailable: ") || !strings.Contains(got, "at capacity") ||
		!strings.Contains(got, "nothing was done; retry in a few seconds") {
		t.Errorf("write_file with the slot taken and the queue full: %s", got)
	}
	w.pushHook.Store(nil)
	close(release)
	for tool, ch := range map[string]chan *mcp.CallToolResult{"push": pushed, "status": queued} {
		if res := <-ch; res.IsError {
			t.Errorf("%s: %s", tool, text(res))
		}
	}
	w.fail(t, c, "read_file", ws(map[string]any{"path": "refused.txt"}), "not_found")
	metrics := scrape(t, w.adminURL+"/metrics")
	if v := metricValue(metrics, `gitgate_admission_refused_total{backend="approach1",reason="queue_full"}`); v != 1 {
		t.Errorf(`gitgate_admission_refused_total{reason="queue_full"} = %v, want 1`, v)
	}
	if v := metricValue(metrics, `gitgate_admission_running{backend="approach1"}`); v != 0 {
		t.Errorf("gitgate_admission_running = %v once every call ended, want 0", v)
	}
}

// TestServiceAdmission: `gitgate backend` admits every call it serves
// through its own limiter: its /metrics counts each call's wait for a
// slot (backend approach2), and no slot stays taken.
func TestServiceAdmission(t *testing.T) {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	addr, admin := freeAddr(t), freeAddr(t)
	w.startBackendOn(t, addr, admin)
	w.cfg.Redis.Addr, w.cfg.Redis.Prefix = "127.0.0.1:6379", w.redisPrefix
	w.cfg.Backend.Default = "approach2"
	w.cfg.Approach2.Target, w.cfg.Approach2.Token, w.cfg.Approach2.Insecure = addr, serviceToken, true
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "admitted", "url": w.repoURL})
	w.ok(t, c, "write_file", map[string]any{"workspace": "admitted", "path": "a.txt", "content": "a"})
	if got := w.ok(t, c, "status", map[string]any{"workspace": "admitted"})["backend"]; got != "approach2" {
		t.Fatalf("status served by %v", got)
	}
	metrics := scrape(t, "http://"+admin+"/metrics")
	if n := metricValue(metrics, `gitgate_admission_wait_seconds_count{backend="approach2"}`); n < 3 {
		t.Errorf("the service's limiter admitted %v calls, want the 3 it served", n)
	}
	if v := metricValue(metrics, `gitgate_admission_running{backend="approach2"}`); v != 0 {
		t.Errorf("gitgate_admission_running = %v once every call ended, want 0", v)
	}
}
