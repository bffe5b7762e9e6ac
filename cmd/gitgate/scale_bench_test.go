package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/admit"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// scalePoints are the concurrencies of the scale curve (issue 17).
var scalePoints = []int{1, 10, 50, 100, 200}

// scaleCallsPerPoint bounds the work at each point: every agent runs at
// least scaleMinLoops loops of status, write_file and commit, and at least
// this many calls run in all.
const (
	scaleCallsPerPoint = 600
	scaleMinLoops      = 2
)

// refusalBackoff is how long an agent whose call was refused by admission
// control (unavailable) waits before it sends the call again, as an agent
// retrying an unavailable answer would.
const refusalBackoff = 100 * time.Millisecond

// agentLoad is what a set of agents did: the latency of each served call,
// the calls refused by admission control (retried), the other failures,
// and how long the whole took.
type agentLoad struct {
	served  []time.Duration
	refused int
	failed  map[string]int // error category → count
	elapsed time.Duration
}

func (l agentLoad) opsPerSec() float64 { return float64(len(l.served)) / l.elapsed.Seconds() }

func (l agentLoad) p95ms() float64 {
	if len(l.served) == 0 {
		return 0
	}
	return float64(testkit.Percentile(l.served, 95)) / float64(time.Millisecond)
}

// try calls a tool and returns "" or the failure: the tool error's text,
// or the HTTP status and body.
func (c *loadClient) try(t testing.TB, tool, args string) string {
	c.id++
	resp, out := c.post(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, c.id, tool, args))
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Sprintf("HTTP %d: %s", resp.StatusCode, out)
	case !bytes.Contains(out, []byte(`"result"`)):
		return "protocol: " + string(out)
	case bytes.Contains(out, []byte(`"isError":true`)):
		var msg struct {
			Result struct {
				Content []struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"result"`
		}
		if json.Unmarshal(out, &msg) == nil && len(msg.Result.Content) > 0 {
			return msg.Result.Content[0].Text
		}
		return string(out)
	}
	return ""
}

// redial replaces the client's connection with a new one (the session
// stays): the server closes keep-alive connections left idle, as an
// agent's are between the curve's points.
func (c *loadClient) redial(t testing.TB) error {
	conn, err := net.Dial("tcp", c.host)
	if err != nil {
		return err
	}
	t.Cleanup(func() { conn.Close() })
	c.conn.Close()
	c.conn, c.r = conn, bufio.NewReaderSize(conn, 16<<10)
	return nil
}

// category is an error text's category (the words before the first ':').
func category(errText string) string {
	if i := strings.IndexByte(errText, ':'); i > 0 {
		return errText[:i]
	}
	return errText
}

// agentFleet is n MCP sessions (minimal clients), agent i working in
// workspace "agent-i", each cloned once.
type agentFleet struct {
	url     string
	clients []*loadClient
}

// newAgentFleet opens n sessions on the gateway at mcpURL and clones each
// agent's workspace from repoURL, at most 8 clones at once.
func newAgentFleet(t testing.TB, mcpURL, repoURL string, n int) *agentFleet {
	t.Helper()
	f := &agentFleet{url: mcpURL, clients: make([]*loadClient, n)}
	for i := range f.clients {
		f.clients[i] = newLoadClient(t, mcpURL, agentToken)
	}
	sem := make(chan struct{}, 8)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i, c := range f.clients {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := c.redial(t); err != nil {
				errs[i] = err.Error()
				return
			}
			for {
				e := c.try(t, "clone", fmt.Sprintf(`{"workspace":"agent-%d","url":%q}`, i, repoURL))
				if category(e) != "unavailable" {
					errs[i] = e
					return
				}
				time.Sleep(refusalBackoff)
			}
		})
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Fatalf("clone of agent-%d: %s", i, e)
		}
	}
	return f
}

// work runs the first n agents concurrently, each doing loops of status,
// write_file (a new content each time) and commit in its own workspace. A
// call refused by admission control (unavailable) is counted and sent again
// after refusalBackoff; other failures are counted by category.
func (f *agentFleet) work(t testing.TB, n, loops int) agentLoad {
	t.Helper()
	// New sessions on new connections: the gateway ends sessions idle for
	// 15 minutes and closes idle connections, and an agent can wait that
	// long between the curve's points. Their clients are fresh too.
	for i := range f.clients[:n] {
		f.clients[i] = newLoadClient(t, f.url, agentToken)
	}
	per := make([]agentLoad, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		c := f.clients[i]
		wg.Go(func() {
			l := &per[i]
			l.failed = map[string]int{}
			ws := strconv.Quote("agent-" + strconv.Itoa(i))
			for k := range loops {
				stamp := strconv.FormatInt(time.Now().UnixNano(), 10) + "-" + strconv.Itoa(k)
				for _, step := range [][2]string{
					{"status", `{"workspace":` + ws + `}`},
					{"write_file", `{"workspace":` + ws + `,"path":"scale.txt","content":"` + stamp + `\n"}`},
					{"commit", `{"workspace":` + ws + `,"message":"scale ` + stamp + `"}`},
				} {
					for {
						t0 := time.Now()
						e := c.try(t, step[0], step[1])
						if e == "" {
							l.served = append(l.served, time.Since(t0))
							break
						}
						if category(e) == "unavailable" {
							l.refused++
							time.Sleep(refusalBackoff)
							continue
						}
						l.failed[category(e)]++
						if l.failed[category(e)] == 1 {
							t.Logf("agent %d %s: %.300s", i, step[0], e)
						}
						break
					}
				}
			}
		})
	}
	wg.Wait()
	all := agentLoad{failed: map[string]int{}, elapsed: time.Since(start)}
	for _, l := range per {
		all.served = append(all.served, l.served...)
		all.refused += l.refused
		for k, v := range l.failed {
			all.failed[k] += v
		}
	}
	return all
}

// cpuTimes reads the machine's busy and total jiffies from /proc/stat.
func cpuTimes() (busy, total float64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	for i, s := range f[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// procCPU is the CPU seconds (user + system) process pid has used, its
// waited-for children included.
func procCPU(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var ticks float64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime (fields 14–17)
		v, _ := strconv.ParseFloat(f[i], 64)
		ticks += v
	}
	return ticks / 100 // USER_HZ
}

// scaleBackend is one gateway whose agents the curve measures.
type scaleBackend struct {
	name  string
	fleet *agentFleet
	pids  []int // processes whose CPU is reported beside the figure (the test process; the service)
}

// BenchmarkScaleCurve runs agents → MCP Streamable HTTP → gateway → each
// backend — Approach 1 embedded in the gateway, and the Approach 2
// service (gRPC, journal in PostgreSQL, locks in Redis) in its own process
// — at 1, 10, 50, 100 and 200 concurrent agents, each in its own workspace
// doing loops of status, write_file and commit. At each point it runs the
// two backends one after the other (same machine noise) and reports, per
// backend, the served calls per second, their P95, the calls refused by
// admission control (retried after 100 ms) and the share of the machine's
// CPU that was busy, and the Approach 2 / Approach 1 throughput ratio.
// Both gateways run in the benchmark's process with the default admission
// limits (8 slots, 128 queued on two cores), as does the service. Cloning
// the 400 workspaces takes minutes on a loaded machine: -benchtime 3x runs
// the curve three times on the same workspaces (each pass logged, the
// last one reported).
func BenchmarkScaleCurve(b *testing.B) {
	tuneRuntime()
	maxAgents := slices.Max(scalePoints)

	w1 := newWorld(b)
	w1.cfg.Log.Level = "info"
	w1.cfg.MCP.MaxSessionsPerAgent = 2 * maxAgents
	w1.startHTTP(b)

	w2 := newWorld(b)
	w2.cfg.Log.Level = "info"
	w2.lockTTL = "10s" // the default lease: 200 agents on two cores renew slowly
	w2.redisPrefix = backendtest.RedisPrefix(b, backendtest.Redis(b))
	addr, service := w2.startBackend(b)
	w2.cfg.Redis.Addr, w2.cfg.Redis.Prefix, w2.cfg.Redis.LockTTL = "127.0.0.1:6379", w2.redisPrefix, 10*time.Second
	w2.cfg.Backend.Default = "approach2"
	w2.cfg.Approach2.Target, w2.cfg.Approach2.Token, w2.cfg.Approach2.Insecure = addr, serviceToken, true
	w2.cfg.MCP.MaxSessionsPerAgent = 2 * maxAgents
	w2.startHTTP(b)

	t0 := time.Now()
	backends := []scaleBackend{
		{name: "a1", fleet: newAgentFleet(b, w1.mcpURL, w1.repoURL, maxAgents), pids: []int{os.Getpid()}},
		{name: "a2", fleet: newAgentFleet(b, w2.mcpURL, w2.repoURL, maxAgents), pids: []int{os.Getpid(), service.Pid}},
	}
	b.Logf("cloned %d workspaces per backend in %s; admission defaults: %d slots", maxAgents, time.Since(t0).Round(time.Millisecond), admitSlots())

	b.ResetTimer()
	pass := 0
	for b.Loop() {
		pass++
		for _, n := range scalePoints {
			loops := max(scaleMinLoops, scaleCallsPerPoint/(3*n))
			rate := map[string]float64{}
			for _, be := range backends {
				busy0, total0 := cpuTimes()
				var proc0 []float64
				for _, pid := range be.pids {
					proc0 = append(proc0, procCPU(pid))
				}
				l := be.fleet.work(b, n, loops)
				busy1, total1 := cpuTimes()
				var procs []string
				for i, pid := range be.pids {
					procs = append(procs, fmt.Sprintf("%.2f", (procCPU(pid)-proc0[i])/l.elapsed.Seconds()))
				}
				prefix := be.name + "-" + strconv.Itoa(n) + "-"
				rate[be.name] = l.opsPerSec()
				b.ReportMetric(l.opsPerSec(), prefix+"ops/s")
				b.ReportMetric(l.p95ms(), prefix+"p95-ms")
				b.ReportMetric(float64(l.refused), prefix+"refused")
				b.ReportMetric((busy1-busy0)/(total1-total0), prefix+"cpu-busy")
				failed := 0
				for _, v := range l.failed {
					failed += v
				}
				b.ReportMetric(float64(failed), prefix+"failed")
				// Each point also goes to standard error as it ends: a
				// pass takes many minutes on a loaded machine.
				fmt.Fprintf(os.Stderr, "scale pass %d: %s %d agents: %.1f ops/s, P95 %.1f ms, refused %d, failed %v\n",
					pass, be.name, n, l.opsPerSec(), l.p95ms(), l.refused, l.failed)
				b.Logf("pass %d: %s %3d agents: %5d calls in %6.2fs: %6.1f ops/s, P95 %7.1f ms, median %6.1f ms, refused %d, failed %v; machine CPU busy %.0f%%, cores used by %v: %v",
					pass, be.name, n, len(l.served), l.elapsed.Seconds(), l.opsPerSec(), l.p95ms(),
					float64(testkit.Median(l.served))/float64(time.Millisecond), l.refused, l.failed,
					100*(busy1-busy0)/(total1-total0), be.pids, procs)
				if len(l.served) == 0 {
					b.Fatalf("%s at %d agents: no call served (failed %v)", be.name, n, slices.Sorted(maps.Keys(l.failed)))
				}
			}
			b.ReportMetric(rate["a2"]/rate["a1"], "a2/a1-"+strconv.Itoa(n))
		}
	}
}

// admitSlots is admission control's default slot count in this process.
func admitSlots() int {
	var o admit.Options
	return admit.New(o).Slots()
}
