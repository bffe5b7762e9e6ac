package sandbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultUsageInterval is how often a Manager samples its sandboxes' CPU
// and memory use when ManagerConfig.UsageInterval is zero.
const DefaultUsageInterval = 15 * time.Second

// Usage is what a sandbox uses at one moment.
type Usage struct {
	// CPU is the share of the sandbox's CPUs in use, 0 to 1 (over the
	// provider's own measuring interval).
	CPU float64
	// MemUsed and MemTotal are the memory in use and the memory the
	// sandbox may use, in bytes (MemTotal 0: unknown).
	MemUsed, MemTotal uint64
}

// UsageReader is implemented by providers that can measure a sandbox's CPU
// and memory use (E2B through envd's /metrics, the local provider from
// /proc).
type UsageReader interface {
	Usage(ctx context.Context, id string) (Usage, error)
}

// usageGauges are the sampled utilisation gauges: mean and max over the
// live sandboxes measured at the last sample, and the memory they used.
type usageGauges struct {
	cpu, mem *prometheus.GaugeVec
	memUsed  prometheus.Gauge
}

func newUsageGauges(reg prometheus.Registerer, provider string) *usageGauges {
	labels := prometheus.Labels{"provider": provider}
	g := &usageGauges{
		cpu: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitgate_sandbox_cpu_utilization", Help: "CPU utilisation (0 to 1) of the live sandboxes at the last sample, by stat: mean or max over them.",
			ConstLabels: labels,
		}, []string{"stat"}),
		mem: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitgate_sandbox_memory_utilization", Help: "Memory utilisation (used/total, 0 to 1) of the live sandboxes at the last sample, by stat: mean or max over them.",
			ConstLabels: labels,
		}, []string{"stat"}),
		memUsed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitgate_sandbox_memory_used_bytes", Help: "Memory the live sandboxes used at the last sample, summed, in bytes.",
			ConstLabels: labels,
		}),
	}
	for _, stat := range []string{"mean", "max"} {
		g.cpu.WithLabelValues(stat)
		g.mem.WithLabelValues(stat)
	}
	if reg != nil {
		reg.MustRegister(g.cpu, g.mem, g.memUsed)
	}
	return g
}

// usageInterval is how often Run samples, 0 when it does not (the
// provider cannot measure, or sampling is off).
func (m *Manager) usageInterval() time.Duration {
	if m.cfg.Usage == nil || m.cfg.UsageInterval < 0 {
		return 0
	}
	if m.cfg.UsageInterval == 0 {
		return DefaultUsageInterval
	}
	return m.cfg.UsageInterval
}

// SampleUsage measures every live sandbox of the manager (with
// ManagerConfig.Usage, or the provider when it is a UsageReader) and sets the utilisation gauges; a sandbox
// that cannot be measured now is left out of this sample. It returns how
// many were measured. Run calls it on its interval; it is never on an
// operation's path.
func (m *Manager) SampleUsage(ctx context.Context) int {
	reader := m.cfg.Usage
	if reader == nil {
		return 0
	}
	m.mu.Lock()
	ids := make([]string, 0, len(m.byID))
	for id := range m.byID {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	var n int
	var cpuSum, cpuMax, memSum, memMax float64
	var used uint64
	for _, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		u, err := reader.Usage(cctx, id)
		cancel()
		if err != nil {
			m.cfg.Logger.Debug("sandbox usage not measured", "sandbox", id, "err", err)
			continue
		}
		n++
		cpu := min(max(u.CPU, 0), 1)
		cpuSum, cpuMax = cpuSum+cpu, max(cpuMax, cpu)
		var mem float64
		if u.MemTotal > 0 {
			mem = min(float64(u.MemUsed)/float64(u.MemTotal), 1)
		}
		memSum, memMax = memSum+mem, max(memMax, mem)
		used += u.MemUsed
	}
	mean := func(sum float64) float64 {
		if n == 0 {
			return 0
		}
		return sum / float64(n)
	}
	m.usage.cpu.WithLabelValues("mean").Set(mean(cpuSum))
	m.usage.cpu.WithLabelValues("max").Set(cpuMax)
	m.usage.mem.WithLabelValues("mean").Set(mean(memSum))
	m.usage.mem.WithLabelValues("max").Set(memMax)
	m.usage.memUsed.Set(float64(used))
	return n
}
