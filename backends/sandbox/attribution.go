package sandbox

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Attribution bounds the labels of the cost a Manager attributes to
// projects and agents (gitgate_project_cost_usd_total and
// gitgate_agent_cost_usd_total).
type Attribution struct {
	// Projects are the configured projects: their series start at zero,
	// and a project not among them is counted as OtherLabel. Empty: every
	// project name is used as it is (tests; the names come from the
	// configuration either way).
	Projects []string
	// Agents, when not empty, turns on the per-agent cost (configured
	// opt-in, metrics.agent_labels): the series of these agents (Project
	// and Agent set) start at zero, and an agent not among them is counted
	// as OtherLabel. Empty: no per-agent series at all.
	Agents []Owner
}

// OtherLabel is the label value of a project or agent outside the
// configured ones, so that no label takes an unbounded value.
const OtherLabel = "_other"

// AcquireSource is how the Manager got the sandbox an operation used:
// the source label of gitgate_sandbox_acquisitions_total.
type AcquireSource string

// The acquisition sources.
const (
	// Reused is a sandbox the manager already held.
	Reused AcquireSource = "reused"
	// Adopted is a live sandbox found at the provider (made by an earlier
	// or another process) and taken over.
	Adopted AcquireSource = "adopted"
	// Created is a new sandbox (cold from the provider or warm from a pool).
	Created AcquireSource = "created"
)

// attribution counts sandbox cost per project (and agent) and the
// manager's acquisitions.
type attribution struct {
	bounds       Attribution
	projects     map[string]bool
	agents       map[Owner]bool
	project      *prometheus.CounterVec
	agent        *prometheus.CounterVec // nil unless Attribution.Agents
	acquisitions *prometheus.CounterVec
}

func newAttribution(reg prometheus.Registerer, provider string, b Attribution) *attribution {
	a := &attribution{bounds: b, projects: map[string]bool{}, agents: map[Owner]bool{},
		project: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_project_cost_usd_total", Help: "Sandbox cost attributed to a project, in US dollars: its operations' commands as they run, and the rest of each sandbox's lifetime when the sandbox ends (idle time of a per-project sandbox).",
		}, []string{"project"}),
		acquisitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_sandbox_acquisitions_total", Help: "Sandboxes the manager handed to operations, by source: reused (already held), adopted (found live at the provider), created (new). reused/(all) is the reuse ratio.",
			ConstLabels: prometheus.Labels{"provider": provider},
		}, []string{"source"}),
	}
	for _, p := range b.Projects {
		a.projects[p] = true
		a.project.WithLabelValues(p)
	}
	for _, s := range []AcquireSource{Reused, Adopted, Created} {
		a.acquisitions.WithLabelValues(string(s))
	}
	cs := []prometheus.Collector{a.project, a.acquisitions}
	if len(b.Agents) > 0 {
		a.agent = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_agent_cost_usd_total", Help: "Sandbox cost attributed to an agent (metrics.agent_labels), in US dollars: its operations' commands, and the rest of the lifetime of a per-agent sandbox.",
		}, []string{"project", "agent"})
		for _, o := range b.Agents {
			a.agents[o] = true
			a.agent.WithLabelValues(o.Project, o.Agent)
		}
		cs = append(cs, a.agent)
	}
	if reg != nil {
		reg.MustRegister(cs...)
	}
	return a
}

func (a *attribution) projectLabel(p string) string {
	if len(a.projects) == 0 || a.projects[p] {
		return p
	}
	return OtherLabel
}

// charge attributes usd to who's project and, with per-agent labels, to
// who's agent (an owner without an agent, a per-project sandbox's idle
// time, is attributed to its project only).
func (a *attribution) charge(who Owner, usd float64) {
	if usd <= 0 || who.Project == "" {
		return
	}
	a.project.WithLabelValues(a.projectLabel(who.Project)).Add(usd)
	if a.agent == nil || who.Agent == "" {
		return
	}
	project, agent := a.projectLabel(who.Project), who.Agent
	if !a.agents[who] {
		agent = OtherLabel
	}
	a.agent.WithLabelValues(project, agent).Add(usd)
}

func (a *attribution) acquired(s AcquireSource) {
	a.acquisitions.WithLabelValues(string(s)).Inc()
}

// Charge attributes usd, what an operation's command in sandbox id cost, to
// who (the calling agent of its project) as it happens. The manager
// remembers it for the sandbox, and when the sandbox ends attributes only
// the rest of its lifetime's cost to the sandbox's owner, so that a
// project's cost adds up to what its sandboxes cost, counted once.
//
// A charge without a caller (who.Project empty: work outside an agent's
// call, such as saving a sandbox's work before reaping it) is left to the
// sandbox's lifetime, attributed to its owner when it ends.
func (m *Manager) Charge(id string, who Owner, usd float64) {
	if usd <= 0 || who.Project == "" {
		return
	}
	m.mu.Lock()
	if s := m.byID[id]; s != nil {
		s.charged += usd
	}
	m.mu.Unlock()
	m.attr.charge(who, usd)
}
