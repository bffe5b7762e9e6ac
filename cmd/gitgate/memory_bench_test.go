package main

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// memoryAgents and memoryLoops: the loaded measurement's 100 agents, each
// running this many loops of status, write_file and commit after its clone.
const (
	memoryAgents = 100
	memoryLoops  = 5
)

// procMemMB reads a process's resident set (VmRSS) and its peak (VmHWM),
// in MB (2^20 bytes), from /proc/pid/status.
func procMemMB(t testing.TB, pid int) (rss, hwm float64) {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// rssSampler reads processes' VmRSS every 20 ms until stopped and keeps
// each one's highest.
type rssSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak []atomic.Uint64 // kB
}

func sampleRSS(t testing.TB, pids ...int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), peak: make([]atomic.Uint64, len(pids))}
	s.done.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, pid := range pids {
				rss, _ := procMemMB(t, pid)
				if kb := uint64(rss * 1024); kb > s.peak[i].Load() {
					s.peak[i].Store(kb)
				}
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	})
	return s
}

// peaks stops the sampler and returns each process's highest VmRSS, MB.
func (s *rssSampler) peaks() []float64 {
	close(s.stop)
	s.done.Wait()
	out := make([]float64, len(s.peak))
	for i := range s.peak {
		out[i] = float64(s.peak[i].Load()) / 1024
	}
	return out
}

// gatewayProcess starts `gitgate serve` (the real binary, as its own
// process) with the world's configuration plus extra, logging at info, its
// session cap above memoryAgents and its admin endpoint at a known
// address; it waits for the "gitgate serving" line and returns the MCP
// URL, the admin address and the process.
func gatewayProcess(t testing.TB, w *world, extra string, env ...string) (mcpURL, adminAddr string, proc *os.Process) {
	t.Helper()
	adminAddr = freeAddr(t)
	yaml := w.configYAML(t.TempDir())
	yaml = strings.Replace(yaml, `listen: {mcp: "127.0.0.1:0", admin: "127.0.0.1:0"`, `listen: {mcp: "127.0.0.1:0", admin: "`+adminAddr+`"`, 1)
	yaml = strings.Replace(yaml, "log: {level: debug,", "log: {level: info,", 1)
	yaml = strings.Replace(yaml, "mcp: {stdio_agent: ada}", "mcp: {stdio_agent: ada, max_sessions_per_agent: "+strconv.Itoa(4*memoryAgents)+"}", 1)
	path := filepath.Join(t.TempDir(), "gitgate.yaml")
	if err := os.WriteFile(path, []byte(yaml+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, urls, scanned := w.startServe(t, path, append(childEnv(t), env...))
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-scanned; _ = cmd.Wait() })
	select {
	case mcpURL = <-urls:
	case <-time.After(testkit.Patience):
		t.Fatal("gitgate serve did not start")
	}
	waitReady(t, adminAddr)
	return mcpURL, adminAddr, cmd.Process
}

// waitReady waits until the admin endpoint at addr answers /readyz 200.
func waitReady(t testing.TB, addr string) {
	t.Helper()
	testkit.Eventually(t, "gitgate at "+addr+" is ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// goMemStats reads the Go runtime's memory gauges from a process's
// /metrics (the Prometheus Go collector): what the resident set is made of.
func goMemStats(t testing.TB, adminAddr string) string {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		for _, name := range []string{"go_memstats_heap_inuse_bytes ", "go_memstats_heap_idle_bytes ", "go_memstats_heap_released_bytes ",
			"go_memstats_stack_inuse_bytes ", "go_memstats_sys_bytes ", "go_goroutines ", "go_memstats_next_gc_bytes "} {
			if v, ok := strings.CutPrefix(sc.Text(), name); ok {
				f, _ := strconv.ParseFloat(v, 64)
				if name == "go_goroutines " {
					out = append(out, "goroutines="+strconv.FormatFloat(f, 'f', 0, 64))
				} else {
					out = append(out, strings.TrimSuffix(strings.TrimPrefix(name, "go_memstats_"), "_bytes ")+"="+strconv.FormatFloat(f/(1<<20), 'f', 1, 64)+"MB")
				}
			}
		}
	}
	return strings.Join(out, " ")
}

// memoryUnderLoad measures the processes in pids idle (now), then while
// memoryAgents agents clone their workspaces and work through the gateway
// at mcpURL, and returns the idle VmRSS and the peak VmRSS sampled under
// load, per process.
func memoryUnderLoad(b *testing.B, w *world, mcpURL string, admins []string, pids ...int) (idle, loaded []float64) {
	b.Helper()
	for i, pid := range pids {
		rss, hwm := procMemMB(b, pid)
		idle = append(idle, rss)
		b.Logf("pid %d idle: VmRSS %.1f MB, VmHWM %.1f MB; %s", pid, rss, hwm, goMemStats(b, admins[i]))
	}
	s := sampleRSS(b, pids...)
	fleet := newAgentFleet(b, mcpURL, w.repoURL, memoryAgents)
	l := fleet.work(b, memoryAgents, memoryLoops)
	loaded = s.peaks()
	b.Logf("%d agents: %d calls in %.1fs, P95 %.0f ms, refused %d, failed %v", memoryAgents, len(l.served), l.elapsed.Seconds(), l.p95ms(), l.refused, l.failed)
	for i, pid := range pids {
		rss, hwm := procMemMB(b, pid)
		b.Logf("pid %d after load: VmRSS %.1f MB, VmHWM %.1f MB, peak sampled %.1f MB; %s", pid, rss, hwm, loaded[i], goMemStats(b, admins[i]))
		loaded[i] = max(loaded[i], hwm) // VmHWM catches a peak between samples
	}
	return idle, loaded
}

// BenchmarkMemory measures the resident memory (VmRSS from /proc) of the
// real gitgate binary run as its own processes: the gateway serving
// Approach 1 embedded (`gitgate serve`), then the Approach 2 service
// (`gitgate backend`, journal in PostgreSQL, locks in Redis) behind a
// second gateway process. Each is measured idle once ready, and at its
// peak while 100 agents, each with its own workspace and MCP Streamable
// HTTP session, clone and run loops of status, write_file and commit.
func BenchmarkMemory(b *testing.B) {
	for b.Loop() {
		// The gateway, Approach 1 embedded.
		w1 := newWorld(b)
		url1, admin1, gw1 := gatewayProcess(b, w1, "")
		idle1, load1 := memoryUnderLoad(b, w1, url1, []string{admin1}, gw1.Pid)

		// The Approach 2 service behind a gateway process.
		w2 := newWorld(b)
		w2.lockTTL = "10s"
		w2.redisPrefix = backendtest.RedisPrefix(b, backendtest.Redis(b))
		svcAdmin := freeAddr(b)
		addr := freeAddr(b)
		svc := w2.startBackendOn(b, addr, svcAdmin)
		url2, admin2, gw2 := gatewayProcess(b, w2,
			"approach2: {target: \""+addr+"\", token_env: E2E_SERVICE_TOKEN, insecure: true}\nbackend: {default: approach2}\npostgres: {dsn_env: E2E_PG_DSN}\n",
			"E2E_SERVICE_TOKEN="+serviceToken, "E2E_PG_DSN="+w2.pgDSN)
		idle2, load2 := memoryUnderLoad(b, w2, url2, []string{svcAdmin, admin2}, svc.Pid, gw2.Pid)

		b.ReportMetric(idle1[0], "gateway-idle-MB")
		b.ReportMetric(load1[0], "gateway-100-agents-MB")
		b.ReportMetric(idle2[0], "service-idle-MB")
		b.ReportMetric(load2[0], "service-100-agents-MB")
		b.ReportMetric(idle2[1], "gateway-a2-idle-MB")
		b.ReportMetric(load2[1], "gateway-a2-100-agents-MB")
	}
}
