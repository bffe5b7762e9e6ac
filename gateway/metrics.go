package gateway

import (
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Metrics are the gateway's per-call metrics. Labels are bounded: operation,
// backend, outcome and error category; never a workspace, URL or token.
type Metrics struct {
	ops      *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	agents   *activeAgents
}

// NewMetrics creates the metrics and registers them with reg (if not nil).
// Every (op, backend, outcome, category) series starts at zero, so rates and
// alerts work before the first error happens.
func NewMetrics(reg prometheus.Registerer, backendNames ...backends.Name) *Metrics {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_operations_total", Help: "Operations served, by operation, backend, outcome (ok or error) and error category.",
		}, []string{"op", "backend", "outcome", "category"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gitgate_operation_duration_seconds", Help: "Operation latency as the agent sees it, by operation and backend.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300},
		}, []string{"op", "backend"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitgate_operations_in_flight", Help: "Operations currently running, by operation.",
		}, []string{"op"}),
		agents: newActiveAgents(time.Now),
	}
	if reg != nil {
		reg.MustRegister(m.ops, m.latency, m.inFlight, m.agents)
	}
	m.initSeries(backendNames)
	return m
}

func (m *Metrics) initSeries(backendNames []backends.Name) {
	for _, info := range backends.Ops() {
		op := string(info.Op)
		m.inFlight.WithLabelValues(op)
		for _, name := range backendNames {
			b := name.String()
			m.ops.WithLabelValues(op, b, "ok", "")
			m.latency.WithLabelValues(op, b)
			for _, c := range backends.Categories {
				m.ops.WithLabelValues(op, b, "error", string(c))
			}
		}
	}
}

// begin marks req's operation in flight, and its agent active, and returns
// the function that records its end.
func (m *Metrics) begin(req backends.Request) func(backend backends.Name, err error, d time.Duration) {
	op := req.Op()
	m.agents.seen(req.GetScope().Principal)
	g := m.inFlight.WithLabelValues(string(op))
	g.Inc()
	return func(backend backends.Name, err error, d time.Duration) {
		g.Dec()
		outcome, cat := "ok", ""
		if err != nil {
			outcome, cat = "error", string(backends.CategoryOf(err))
		}
		m.ops.WithLabelValues(string(op), backend.String(), outcome, cat).Inc()
		m.latency.WithLabelValues(string(op), backend.String()).Observe(d.Seconds())
	}
}

// ActiveAgentWindow is how recently an agent must have made a call to
// count in gitgate_agents_active.
const ActiveAgentWindow = 5 * time.Minute

// activeAgents is gitgate_agents_active{project}: the agents with a call
// in the last ActiveAgentWindow, per project, counted when scraped. The
// agents are the configured ones (every call is authenticated), so the
// map stays bounded; an agent idle past the window is dropped.
type activeAgents struct {
	now  func() time.Time
	desc *prometheus.Desc

	mu   sync.Mutex
	last map[backends.Principal]time.Time // Principal with Project and Agent only
}

func newActiveAgents(now func() time.Time) *activeAgents {
	return &activeAgents{now: now, last: map[backends.Principal]time.Time{},
		desc: prometheus.NewDesc("gitgate_agents_active", "Agents with a call in the last 5 minutes, by project (for the cost per concurrent user).",
			[]string{"project"}, nil)}
}

func (a *activeAgents) seen(p backends.Principal) {
	if p.Project == "" {
		return
	}
	k := backends.Principal{Project: p.Project, Agent: p.Agent}
	now := a.now()
	a.mu.Lock()
	a.last[k] = now
	a.mu.Unlock()
}

// count returns the active agents per project, dropping those idle past
// the window (a project whose agents all went idle reports 0 until the
// next scrape after it, then nothing).
func (a *activeAgents) count() map[string]int {
	now := a.now()
	out := map[string]int{}
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, at := range a.last {
		if now.Sub(at) > ActiveAgentWindow {
			delete(a.last, k)
			out[k.Project] += 0
			continue
		}
		out[k.Project]++
	}
	return out
}

func (a *activeAgents) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

func (a *activeAgents) Collect(ch chan<- prometheus.Metric) {
	for project, n := range a.count() {
		ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, float64(n), project)
	}
}

// routerCollector is the router's state as gauges, read on every scrape:
// gitgate_breaker_forced_open{op} (1 while an operator or a drill forces
// the operation's breaker open) and gitgate_drill_active (1 while a drill
// mark is on this gateway).
type routerCollector struct {
	r             *Router
	forced, drill *prometheus.Desc
}

func newRouterCollector(r *Router) *routerCollector {
	return &routerCollector{r: r,
		forced: prometheus.NewDesc("gitgate_breaker_forced_open", "1 while an operator or a drill forces the operation's Approach 2 breaker open.", []string{"op"}, nil),
		drill:  prometheus.NewDesc("gitgate_drill_active", "1 while a kill-switch drill's mark is on this gateway.", nil, nil)}
}

func (c *routerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.forced; ch <- c.drill }

func (c *routerCollector) Collect(ch chan<- prometheus.Metric) {
	forced := c.r.ForcedBreakers()
	for _, info := range backends.Ops() {
		v := 0.0
		if _, on := forced[string(info.Op)]; on {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.forced, prometheus.GaugeValue, v, string(info.Op))
	}
	active := 0.0
	if c.r.cfg.Drill != nil && c.r.cfg.Drill.ID() != "" {
		active = 1
	}
	ch <- prometheus.MustNewConstMetric(c.drill, prometheus.GaugeValue, active)
}

// BreakerStates returns the state ("closed", "half-open", "open") of the
// breaker in front of Approach 2 for every operation.
func (r *Router) BreakerStates() map[string]string {
	out := map[string]string{}
	for _, info := range backends.Ops() {
		out[string(info.Op)] = gobreaker.StateClosed.String()
	}
	r.breakers.mu.Lock()
	defer r.breakers.mu.Unlock()
	for op, cb := range r.breakers.by {
		out[string(op)] = cb.State().String()
		if _, forced := cb.forcedNow(); forced {
			out[string(op)] = breakerForcedOpen
		}
	}
	return out
}

// stateCollector turns the routing state into gauges on every scrape, so
// that they always agree with the admin status endpoint.
type stateCollector struct {
	status                                 func() flags.Status
	kill, route, shadow, rb, usable, stage *prometheus.Desc
}

// NewStateCollector returns the gauges of the routing state that status
// reports (flags.Evaluator.Status): the kill switch by source (flags,
// override, effective), each operation's share per backend and its shadow
// share as configured and as effective, its canary stage (the configured
// share in percent), local rollbacks, and whether the flags are usable.
// Labels are bounded: op, backend, source.
func NewStateCollector(status func() flags.Status) prometheus.Collector {
	return &stateCollector{status: status,
		kill: prometheus.NewDesc("gitgate_kill_switch", "Kill switch (1 on) by source: flags (file or sync source), override (admin listener), effective.",
			[]string{"source"}, nil),
		route: prometheus.NewDesc("gitgate_route_share", "Share (0 to 1) of an operation's workspaces on a backend, as configured in the flags and as effective on this gateway.",
			[]string{"op", "backend", "source"}, nil),
		shadow: prometheus.NewDesc("gitgate_shadow_share", "Share (0 to 1) of an operation's calls shadowed, as configured and as effective.",
			[]string{"op", "source"}, nil),
		rb: prometheus.NewDesc("gitgate_local_rollback", "1 when this gateway rolled the operation back itself (sync source).",
			[]string{"op"}, nil),
		usable: prometheus.NewDesc("gitgate_flags_usable", "1 when the flags can be used; 0 sends every call to Approach 1.", nil, nil),
		stage: prometheus.NewDesc("gitgate_canary_stage", "The operation's canary stage: the configured share of its workspaces on Approach 2, in percent (0, 10, 50, 100).",
			[]string{"op"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.kill, c.route, c.shadow, c.rb, c.usable, c.stage} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	one := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge(c.kill, one(st.Kill.Flags), "flags")
	gauge(c.kill, one(st.Kill.Override != nil && st.Kill.Override.Kill), "override")
	gauge(c.kill, one(st.Kill.Effective), "effective")
	gauge(c.usable, one(st.FailSafe == ""))
	for _, o := range st.Ops {
		for source, share := range map[string]float64{"configured": o.Route.Configured, "effective": o.Route.Effective} {
			gauge(c.route, share, o.Op, backends.Approach2.String(), source)
			gauge(c.route, 1-share, o.Op, backends.Approach1.String(), source)
		}
		gauge(c.shadow, o.Shadow.Configured, o.Op, "configured")
		gauge(c.shadow, o.Shadow.Effective, o.Op, "effective")
		gauge(c.rb, one(o.LocalRollback), o.Op)
		gauge(c.stage, o.Route.Configured*100, o.Op)
	}
}

// CallsInFlight is the sum of the gitgate_operations_in_flight gauges in
// reg: the operations a process's router is running (a partial gather
// still counts).
func CallsInFlight(reg prometheus.Gatherer) int {
	families, _ := reg.Gather()
	n := 0.0
	for _, f := range families {
		if f.GetName() != "gitgate_operations_in_flight" {
			continue
		}
		for _, m := range f.GetMetric() {
			n += m.GetGauge().GetValue()
		}
	}
	return int(n)
}
