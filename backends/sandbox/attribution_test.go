package sandbox_test

import (
	"context"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// series returns the value of the counter or gauge name whose labels
// include want, and whether the family has such a series.
func series(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	return testkit.SeriesValue(t, reg, name, want)
}

func managerOn(t *testing.T, p sandbox.Provider, reg prometheus.Registerer, clk *clock, attr sandbox.Attribution) *sandbox.Manager {
	t.Helper()
	m, err := sandbox.NewManager(sandbox.ManagerConfig{Provider: p, Bindings: sandbox.NewMemoryBindings(), IdleTTL: ttl,
		Registerer: reg, Logger: slog.New(slog.DiscardHandler), Now: clk.Now, KeepOnClose: true, Attribution: attr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// TestAcquisitionsBySource: the manager counts where each operation's
// sandbox came from: created, reused (it already held it, by owner or by
// id), or adopted (live at the provider, made by another process — a
// restarted gateway, or one of a fleet sharing the sandboxes).
func TestAcquisitionsBySource(t *testing.T) {
	dir := t.TempDir()
	open := func() *local.Provider {
		p, err := local.OpenWith(dir, local.Options{Shared: true})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := managerOn(t, open(), regA, clk, sandbox.Attribution{})
	b := managerOn(t, open(), regB, clk, sandbox.Attribution{})
	owner := sandbox.Owner{Project: "p"}
	acquire := func(m *sandbox.Manager) sandbox.Info {
		info, release, err := m.Acquire(t.Context(), owner)
		if err != nil {
			t.Fatal(err)
		}
		release()
		return info
	}
	want := func(reg prometheus.Gatherer, source string, n float64) {
		t.Helper()
		if got, _ := series(t, reg, "gitgate_sandbox_acquisitions_total", map[string]string{"provider": "local", "source": source}); got != n {
			t.Errorf("acquisitions{source=%q} = %v, want %v", source, got, n)
		}
	}
	info := acquire(a)
	acquire(a)
	release, ok := a.Use(t.Context(), info.ID)
	if !ok {
		t.Fatal("Use: sandbox gone")
	}
	release()
	want(regA, "created", 1)
	want(regA, "reused", 2)
	want(regA, "adopted", 0)

	if got := acquire(b); got.ID != info.ID {
		t.Fatalf("the second manager made sandbox %s instead of adopting %s", got.ID, info.ID)
	}
	want(regB, "adopted", 1)
	want(regB, "created", 0)

	regC := prometheus.NewRegistry()
	c := managerOn(t, open(), regC, clk, sandbox.Attribution{}) // adopts by id
	if release, ok := c.Use(t.Context(), info.ID); !ok {
		t.Fatal("Use by id on a third manager: sandbox gone")
	} else {
		release()
	}
	want(regC, "adopted", 1)
}

// TestCostAttributedToProjectsAndAgents: operation costs are attributed to
// the calling agent's project (and, when agent labels are on, to the agent)
// as they are charged; when the sandbox ends, the rest of its life's cost
// goes to its owner's project, so that the project's total is what the
// sandbox cost, counted once. Labels stay bounded: a project or agent
// outside the configuration is "_other". Without agent labels there is no
// per-agent family at all.
func TestCostAttributedToProjectsAndAgents(t *testing.T) {
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	m := managerOn(t, billedProvider{newProvider(t), 0.01}, reg, clk, sandbox.Attribution{
		Projects: []string{"p", "q"}, Agents: []sandbox.Owner{{Project: "p", Agent: "a"}}})
	cost := func(labels map[string]string, family string) float64 {
		v, _ := series(t, reg, family, labels)
		return v
	}
	if _, ok := series(t, reg, "gitgate_project_cost_usd_total", map[string]string{"project": "q"}); !ok {
		t.Error("a configured project's cost series does not start at zero")
	}
	info, release, err := m.Acquire(t.Context(), sandbox.Owner{Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	release()
	m.Charge(info.ID, sandbox.Owner{Project: "p", Agent: "a"}, 0.5)
	m.Charge(info.ID, sandbox.Owner{Project: "p", Agent: "stranger"}, 0.25)
	if got := cost(map[string]string{"project": "p"}, "gitgate_project_cost_usd_total"); got != 0.75 {
		t.Errorf("project p after two charges: %v, want 0.75", got)
	}
	if got := cost(map[string]string{"project": "p", "agent": "a"}, "gitgate_agent_cost_usd_total"); got != 0.5 {
		t.Errorf("agent a: %v, want 0.5", got)
	}
	if got := cost(map[string]string{"project": "p", "agent": "_other"}, "gitgate_agent_cost_usd_total"); got != 0.25 {
		t.Errorf("an agent outside the configuration: %v, want 0.25 on _other", got)
	}

	clk.add(2 * ttl) // the sandbox lived 7200 s: $72 at $0.01/s
	if n := m.ReapIdle(t.Context()); n != 1 {
		t.Fatalf("reaped %d", n)
	}
	life := (2 * ttl).Seconds() * 0.01
	if got := cost(map[string]string{"project": "p"}, "gitgate_project_cost_usd_total"); math.Abs(got-life) > 1e-9 {
		t.Errorf("project p after its sandbox ended: %v, want the sandbox's cost %v (charges not counted twice)", got, life)
	}
	if got := cost(map[string]string{"project": "p", "agent": "a"}, "gitgate_agent_cost_usd_total"); got != 0.5 {
		t.Errorf("agent a after the per-project sandbox ended: %v, want still 0.5 (idle time is the project's)", got)
	}

	m.Charge("no-such-sandbox", sandbox.Owner{Project: "unlisted"}, 1)
	if got := cost(map[string]string{"project": "_other"}, "gitgate_project_cost_usd_total"); got != 1 {
		t.Errorf("a project outside the configuration: %v, want 1 on _other", got)
	}

	plain := prometheus.NewRegistry()
	managerOn(t, billedProvider{newProvider(t), 0.01}, plain, clk, sandbox.Attribution{Projects: []string{"p"}})
	families, _ := plain.Gather()
	for _, f := range families {
		if f.GetName() == "gitgate_agent_cost_usd_total" {
			t.Error("per-agent cost exported although agent labels are off")
		}
	}
}

// measuredProvider reports a fixed usage per sandbox.
type measuredProvider struct {
	*countingProvider
	by map[string]sandbox.Usage
}

func (p measuredProvider) Usage(_ context.Context, id string) (sandbox.Usage, error) {
	return p.by[id], nil
}

// TestSampleUsageSetsTheGauges: a sample measures every live sandbox and
// sets mean and max utilisation and the memory used in total.
func TestSampleUsageSetsTheGauges(t *testing.T) {
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	p := measuredProvider{newProvider(t), map[string]sandbox.Usage{}}
	m := managerOn(t, p, reg, clk, sandbox.Attribution{})
	for i, u := range []sandbox.Usage{{CPU: 0.2, MemUsed: 100, MemTotal: 1000}, {CPU: 0.6, MemUsed: 500, MemTotal: 1000}} {
		info, release, err := m.Acquire(t.Context(), sandbox.Owner{Project: "p", Agent: string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
		release()
		p.by[info.ID] = u
	}
	if n := m.SampleUsage(t.Context()); n != 2 {
		t.Fatalf("measured %d sandboxes, want 2", n)
	}
	for _, c := range []struct {
		name, stat string
		want       float64
	}{
		{"gitgate_sandbox_cpu_utilization", "mean", 0.4}, {"gitgate_sandbox_cpu_utilization", "max", 0.6},
		{"gitgate_sandbox_memory_utilization", "mean", 0.3}, {"gitgate_sandbox_memory_utilization", "max", 0.5},
	} {
		if got, _ := series(t, reg, c.name, map[string]string{"stat": c.stat, "provider": "local"}); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s{stat=%q} = %v, want %v", c.name, c.stat, got, c.want)
		}
	}
	if got, _ := series(t, reg, "gitgate_sandbox_memory_used_bytes", nil); got != 600 {
		t.Errorf("memory used = %v, want 600", got)
	}
}
