// Package ledgergen writes realistic canary ledgers for tests and demos:
// weeks of simulated agents working through the gateway, as the
// canary.Entry records the gateway's router, shadow comparisons and
// sandbox reaper would have written, in time order.
//
// The simulation is deterministic for a seed. Agents work in sessions
// (more of them by day than by night, fewer at weekends), each in a
// workspace, calling one operation after another at agent pace; every
// call's latency is drawn from its operation's log-normal model with a
// heavier tail, queues behind a call still running in its workspace, and
// is counted with the calls in flight when it starts. The stage schedule
// routes a workspace-sticky share of each operation's calls to
// Approach 2; a shadow rate adds comparisons; sandboxes live while their
// workspace is used and end after the idle TTL, with their lifetime cost.
// Modifiers per backend, operation and period make the scenarios
// (Approach 2 failing pushes, a slow clone, Approach 1 slow for weeks).
//
// Each streams the records (weeks × a hundred agents is millions of
// calls); Generate collects a small ledger and Summarise rolls a large one
// up into a canary.Source.
package ledgergen

import (
	"errors"
	"fmt"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// OpModel is how one operation behaves on a backend without modifiers.
type OpModel struct {
	// Weight is the operation's share of an agent's calls, relative to
	// the other operations' weights.
	Weight float64
	// Median and Sigma are the log-normal model of the call's time in its
	// sandbox (without queueing).
	Median time.Duration
	Sigma  float64
	// TailProb is the chance a call lands in the heavy tail: its time is
	// multiplied by TailFactor × a log-normal factor of shape 0.5.
	TailProb   float64
	TailFactor float64
	// FailRate is the chance a call fails for a reason of the backend's
	// (unavailable, timeout, internal), on either backend.
	FailRate float64
	// ClientErrorRate is the chance a call fails for the agent's mistake,
	// with ClientError (counted against nobody).
	ClientErrorRate float64
	ClientError     backends.Category
}

// DefaultOps is the operation mix and latency models of agents at work:
// reads and file edits in tens of milliseconds, commits in hundreds, and
// the remote operations (push, pull, clone) around a second or more.
func DefaultOps() map[backends.Op]OpModel {
	ms := time.Millisecond
	return map[backends.Op]OpModel{
		backends.OpStatus:           {Weight: 0.20, Median: 25 * ms, Sigma: 0.35, TailProb: 0.01, TailFactor: 4, FailRate: 0.002},
		backends.OpDiff:             {Weight: 0.10, Median: 30 * ms, Sigma: 0.4, TailProb: 0.01, TailFactor: 4, FailRate: 0.002},
		backends.OpLog:              {Weight: 0.06, Median: 30 * ms, Sigma: 0.4, TailProb: 0.01, TailFactor: 4, FailRate: 0.002},
		backends.OpBranches:         {Weight: 0.02, Median: 20 * ms, Sigma: 0.35, TailProb: 0.01, TailFactor: 4, FailRate: 0.002},
		backends.OpReadFile:         {Weight: 0.20, Median: 15 * ms, Sigma: 0.35, TailProb: 0.01, TailFactor: 4, FailRate: 0.001, ClientErrorRate: 0.03, ClientError: backends.NotFound},
		backends.OpWriteFile:        {Weight: 0.12, Median: 20 * ms, Sigma: 0.35, TailProb: 0.01, TailFactor: 4, FailRate: 0.001, ClientErrorRate: 0.005, ClientError: backends.InvalidArgument},
		backends.OpListFiles:        {Weight: 0.06, Median: 20 * ms, Sigma: 0.4, TailProb: 0.01, TailFactor: 4, FailRate: 0.001},
		backends.OpDeleteFile:       {Weight: 0.01, Median: 20 * ms, Sigma: 0.35, TailProb: 0.01, TailFactor: 4, FailRate: 0.001, ClientErrorRate: 0.02, ClientError: backends.NotFound},
		backends.OpCheckout:         {Weight: 0.03, Median: 80 * ms, Sigma: 0.4, TailProb: 0.01, TailFactor: 4, FailRate: 0.002, ClientErrorRate: 0.02, ClientError: backends.NotFound},
		backends.OpCommit:           {Weight: 0.09, Median: 250 * ms, Sigma: 0.4, TailProb: 0.02, TailFactor: 3, FailRate: 0.003, ClientErrorRate: 0.03, ClientError: backends.Conflict},
		backends.OpPush:             {Weight: 0.06, Median: 1200 * ms, Sigma: 0.45, TailProb: 0.03, TailFactor: 3, FailRate: 0.01, ClientErrorRate: 0.04, ClientError: backends.Conflict},
		backends.OpPull:             {Weight: 0.03, Median: 1000 * ms, Sigma: 0.45, TailProb: 0.03, TailFactor: 3, FailRate: 0.008},
		backends.OpClone:            {Weight: 0.015, Median: 2500 * ms, Sigma: 0.5, TailProb: 0.03, TailFactor: 3, FailRate: 0.01, ClientErrorRate: 0.01, ClientError: backends.NotFound},
		backends.OpDeleteBranch:     {Weight: 0.02, Median: 30 * ms, Sigma: 0.35, TailProb: 0.01, TailFactor: 4, FailRate: 0.001, ClientErrorRate: 0.05, ClientError: backends.Forbidden},
		backends.OpListWorkspaces:   {Weight: 0.01, Median: 10 * ms, Sigma: 0.3, TailProb: 0.01, TailFactor: 4, FailRate: 0.001},
		backends.OpReleaseWorkspace: {Weight: 0.005, Median: 50 * ms, Sigma: 0.4, TailProb: 0.01, TailFactor: 4, FailRate: 0.002},
		// Issue 16's operations: history reads like log, integration
		// (merge, rebase, ...) like a commit or two, fetch like a pull.
		backends.OpFetch:         {Weight: 0.012, Median: 900 * ms, Sigma: 0.45, TailProb: 0.03, TailFactor: 3, FailRate: 0.008},
		backends.OpShow:          {Weight: 0.02, Median: 30 * ms, Sigma: 0.4, TailProb: 0.01, TailFactor: 4, FailRate: 0.002, ClientErrorRate: 0.02, ClientError: backends.NotFound},
		backends.OpBlame:         {Weight: 0.005, Median: 60 * ms, Sigma: 0.5, TailProb: 0.01, TailFactor: 4, FailRate: 0.002, ClientErrorRate: 0.02, ClientError: backends.NotFound},
		backends.OpTags:          {Weight: 0.003, Median: 20 * ms, Sigma: 0.35, TailProb: 0.01, TailFactor: 4, FailRate: 0.002},
		backends.OpReflog:        {Weight: 0.003, Median: 20 * ms, Sigma: 0.35, TailProb: 0.01, TailFactor: 4, FailRate: 0.002},
		backends.OpStashes:       {Weight: 0.002, Median: 20 * ms, Sigma: 0.35, TailProb: 0.01, TailFactor: 4, FailRate: 0.002},
		backends.OpMerge:         {Weight: 0.006, Median: 300 * ms, Sigma: 0.45, TailProb: 0.02, TailFactor: 3, FailRate: 0.003, ClientErrorRate: 0.03, ClientError: backends.Conflict},
		backends.OpRebase:        {Weight: 0.004, Median: 400 * ms, Sigma: 0.5, TailProb: 0.02, TailFactor: 3, FailRate: 0.003, ClientErrorRate: 0.03, ClientError: backends.Conflict},
		backends.OpCherryPick:    {Weight: 0.002, Median: 300 * ms, Sigma: 0.45, TailProb: 0.02, TailFactor: 3, FailRate: 0.003, ClientErrorRate: 0.03, ClientError: backends.NotFound},
		backends.OpRevert:        {Weight: 0.002, Median: 300 * ms, Sigma: 0.45, TailProb: 0.02, TailFactor: 3, FailRate: 0.003, ClientErrorRate: 0.03, ClientError: backends.NotFound},
		backends.OpReset:         {Weight: 0.004, Median: 80 * ms, Sigma: 0.4, TailProb: 0.01, TailFactor: 4, FailRate: 0.002, ClientErrorRate: 0.02, ClientError: backends.NotFound},
		backends.OpRestore:       {Weight: 0.005, Median: 60 * ms, Sigma: 0.4, TailProb: 0.01, TailFactor: 4, FailRate: 0.002, ClientErrorRate: 0.02, ClientError: backends.NotFound},
		backends.OpStash:         {Weight: 0.004, Median: 150 * ms, Sigma: 0.4, TailProb: 0.01, TailFactor: 4, FailRate: 0.002, ClientErrorRate: 0.03, ClientError: backends.Conflict},
		backends.OpTag:           {Weight: 0.002, Median: 40 * ms, Sigma: 0.35, TailProb: 0.01, TailFactor: 4, FailRate: 0.002, ClientErrorRate: 0.02, ClientError: backends.Conflict},
		backends.OpMarkResolved:  {Weight: 0.003, Median: 40 * ms, Sigma: 0.35, TailProb: 0.01, TailFactor: 4, FailRate: 0.002, ClientErrorRate: 0.02, ClientError: backends.InvalidArgument},
		backends.OpContinue:      {Weight: 0.003, Median: 250 * ms, Sigma: 0.45, TailProb: 0.02, TailFactor: 3, FailRate: 0.003, ClientErrorRate: 0.03, ClientError: backends.Conflict},
		backends.OpAbort:         {Weight: 0.001, Median: 120 * ms, Sigma: 0.4, TailProb: 0.01, TailFactor: 4, FailRate: 0.002},
		backends.OpForkWorkspace: {Weight: 0.003, Median: 1500 * ms, Sigma: 0.5, TailProb: 0.03, TailFactor: 3, FailRate: 0.005, ClientErrorRate: 0.01, ClientError: backends.Conflict},
	}
}

// StageAt is a stage of an operation's canary: from At on, Stage per cent
// of its workspaces are routed to Approach 2.
type StageAt struct {
	At    time.Time
	Stage int
}

// Modifier changes how a backend behaves, for a scenario. Its zero value
// changes nothing.
type Modifier struct {
	// FailRate is added to the operation's chance of a backend failure.
	FailRate float64
	// FallbackShare of those added failures (on Approach 2) fell back to
	// Approach 1, which served the call; the others failed.
	FallbackShare float64
	// Shift is added to the call's time, after Factor (0: none) scaled it.
	Shift  time.Duration
	Factor float64
	// CostFactor scales what the backend's calls and sandboxes cost (0: 1).
	CostFactor float64
	// MismatchRate is the chance a shadow comparison involving the backend
	// finds the answers differ.
	MismatchRate float64
}

// Mod applies a Modifier to a backend's calls of an operation over a
// period.
type Mod struct {
	Backend backends.Name // "": both backends
	// Op is the operation; "": every operation and, for CostFactor, the
	// backend's sandboxes.
	Op       backends.Op
	From, To time.Time // zero: unbounded
	Modifier
}

func (m Mod) applies(b backends.Name, op backends.Op, t time.Time) bool {
	return (m.Backend == "" || m.Backend == b) && (m.Op == "" || m.Op == op) &&
		(m.From.IsZero() || !t.Before(m.From)) && (m.To.IsZero() || t.Before(m.To))
}

// Burst is a fan-out of agents working in parallel, each in a workspace
// of its own: at From+Offset and every Every after it until To, Agents
// agents all make their first call at the same instant and go on at agent
// pace for Length.
type Burst struct {
	From, To time.Time
	Offset   time.Duration
	Every    time.Duration // default 24 h
	Agents   int
	Length   time.Duration // default 10 min
}

// Drill is a kill-switch drill (`gitgate drill`) over the fleet: from At
// for Length, its first half with the kill switch engaged (every call
// routed to Approach 1), its second with Breaker's breaker forced open
// (its Approach 2 calls fall back to Approach 1). Every call and
// comparison in it carries ID (canary.Entry.Drill), and each of Gateways
// records its window (canary.KindDrill) with Result.
type Drill struct {
	ID       string
	At       time.Time
	Length   time.Duration // default 10 min
	Breaker  backends.Op   // "": no breaker forced open
	Gateways int           // default 1
	Result   string        // default "pass: …"
}

// Price is what a sandbox costs a second: E2B's published prices
// (backends/sandbox/e2b: $0.000014 per vCPU-second and $0.0000045 per
// GiB-second) for 2 vCPUs and 0.5 GiB.
const Price = 2*0.000014 + 0.5*0.0000045

// Config is a simulation. Zero values take the defaults, except Start
// (required), ShadowRate and the rates of shadow outcomes (0: none).
type Config struct {
	Seed  uint64
	Start time.Time
	// Duration simulated; default 4 weeks.
	Duration time.Duration
	// Agents working in sessions; default 100.
	Agents int
	// Workspaces the agents pick from at each session; default 2 × Agents
	// (two agents in one workspace queue for its lock now and then).
	Workspaces int
	// Ops is the operation mix; default DefaultOps().
	Ops map[backends.Op]OpModel
	// Think is an agent's mean pause between a call's answer and its next
	// call (exponential); default 15 s.
	Think time.Duration
	// Session is the mean length of a session (exponential); default 45 min.
	Session time.Duration
	// Idle is the mean gap between an agent's sessions at full load; the
	// load (below 1) thins the session starts. Default 30 min.
	Idle time.Duration
	// Load is the share of full load at a time, in [0, 1]; default
	// WorkdayLoad.
	Load func(time.Time) float64
	// Stages is each operation's canary schedule; an operation without
	// one stays at 0 %.
	Stages map[backends.Op][]StageAt
	// ShadowRate is the share of calls compared in shadow while their
	// operation's stage is above 0 %.
	ShadowRate float64
	// StaleRate and ShadowErrorRate are the shares of comparisons found
	// stale (the workspace moved on) and unfinished (the shadow failed).
	StaleRate, ShadowErrorRate float64
	Mods                       []Mod
	Bursts                     []Burst
	Drills                     []Drill
	// SandboxTTL is how long a sandbox lives idle; default 1 h.
	SandboxTTL time.Duration
	// Price of a sandbox second in US dollars; default Price.
	Price float64
	// Wait is the mean of the small queueing wait every call has
	// (exponential) before any wait for a busy workspace; default 2 ms.
	Wait time.Duration
}

// WithDefaults fills the zero values.
func (c Config) WithDefaults() Config {
	if c.Duration <= 0 {
		c.Duration = 4 * Week
	}
	if c.Agents <= 0 {
		c.Agents = 100
	}
	if c.Workspaces <= 0 {
		c.Workspaces = 2 * c.Agents
	}
	if c.Ops == nil {
		c.Ops = DefaultOps()
	}
	if c.Think <= 0 {
		c.Think = 15 * time.Second
	}
	if c.Session <= 0 {
		c.Session = 45 * time.Minute
	}
	if c.Idle <= 0 {
		c.Idle = 30 * time.Minute
	}
	if c.Load == nil {
		c.Load = WorkdayLoad
	}
	if c.SandboxTTL <= 0 {
		c.SandboxTTL = time.Hour
	}
	if c.Price <= 0 {
		c.Price = Price
	}
	if c.Wait <= 0 {
		c.Wait = 2 * time.Millisecond
	}
	for i := range c.Bursts {
		if c.Bursts[i].Every <= 0 {
			c.Bursts[i].Every = 24 * time.Hour
		}
		if c.Bursts[i].Length <= 0 {
			c.Bursts[i].Length = 10 * time.Minute
		}
	}
	for i := range c.Drills {
		d := &c.Drills[i]
		if d.Length <= 0 {
			d.Length = 10 * time.Minute
		}
		if d.Gateways <= 0 {
			d.Gateways = 1
		}
		if d.Result == "" {
			d.Result = "pass: every gateway took the kill switch"
		}
	}
	return c
}

// Week is seven days.
const Week = 7 * 24 * time.Hour

// End is when the simulation ends.
func (c Config) End() time.Time { return c.Start.Add(c.WithDefaults().Duration) }

// Validate reports settings that make no sense.
func (c Config) Validate() error {
	var errs []error
	if c.Start.IsZero() {
		errs = append(errs, errors.New("start is required"))
	}
	total := 0.0
	for op, m := range c.Ops {
		if _, ok := backends.Info(op); !ok {
			errs = append(errs, fmt.Errorf("ops: unknown operation %q", op))
		}
		if m.Weight < 0 || m.Median <= 0 || m.Sigma < 0 || !isRate(m.TailProb) || !isRate(m.FailRate) || !isRate(m.ClientErrorRate) {
			errs = append(errs, fmt.Errorf("ops: %s: a weight, median, shape or rate out of range", op))
		}
		if m.ClientErrorRate > 0 && !m.ClientError.IsClientMistake() {
			errs = append(errs, fmt.Errorf("ops: %s: client error %q is not a client mistake", op, m.ClientError))
		}
		total += m.Weight
	}
	if c.Ops != nil && total <= 0 {
		errs = append(errs, errors.New("ops: no operation has a weight"))
	}
	for op, stages := range c.Stages {
		for _, s := range stages {
			if s.Stage < 0 || s.Stage > 100 {
				errs = append(errs, fmt.Errorf("stages: %s: %d%% is not in 0..100", op, s.Stage))
			}
		}
	}
	for _, r := range []float64{c.ShadowRate, c.StaleRate, c.ShadowErrorRate} {
		if !isRate(r) {
			errs = append(errs, fmt.Errorf("a shadow rate %v is not in [0, 1]", r))
		}
	}
	for _, m := range c.Mods {
		if m.Backend != "" && !m.Backend.Known() {
			errs = append(errs, fmt.Errorf("mods: unknown backend %q", m.Backend))
		}
		if !isRate(m.FailRate) || !isRate(m.FallbackShare) || !isRate(m.MismatchRate) || m.Factor < 0 || m.CostFactor < 0 {
			errs = append(errs, fmt.Errorf("mods: %s %s: a rate or factor out of range", m.Backend, m.Op))
		}
	}
	for _, b := range c.Bursts {
		if b.Agents < 0 || !b.To.After(b.From) {
			errs = append(errs, fmt.Errorf("bursts: %d agents from %s to %s", b.Agents, b.From, b.To))
		}
	}
	for _, d := range c.Drills {
		if d.ID == "" || d.At.IsZero() || d.Length < 0 || d.Gateways < 0 {
			errs = append(errs, fmt.Errorf("drills: %q at %s: an id, a start and a non-negative length are required", d.ID, d.At))
		}
	}
	return errors.Join(errs...)
}

func isRate(r float64) bool { return r >= 0 && r <= 1 }

// WorkdayLoad is the load of agents that work office hours (UTC): full
// from 9 to 17 on weekdays with a lunch dip, a twentieth of it at night,
// and a quarter of the weekday's at weekends.
func WorkdayLoad(t time.Time) float64 {
	t = t.UTC()
	l := hourly[t.Hour()]
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		l *= 0.25
	}
	return l
}

var hourly = [24]float64{
	0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.08, 0.2, // 0–7
	0.5, 0.9, 1, 1, 0.7, 0.95, 1, 1, // 8–15
	0.9, 0.7, 0.45, 0.3, 0.2, 0.15, 0.1, 0.07, // 16–23
}
