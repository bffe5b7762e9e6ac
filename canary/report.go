package canary

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// ReportVersion is the version of the report's JSON form (README,
// "gitgate report"): fields are only ever added within a version.
const ReportVersion = 1

// ReportConfig says what a report covers and how it judges.
type ReportConfig struct {
	Since, Until time.Time
	// Now is when the report is made (time in stage); default Until.
	Now      time.Time
	Judge    JudgeConfig
	Decision DecisionConfig
	// Ops are the operations to report, in order (backends.OpNames);
	// operations found only in the ledger are added after them.
	Ops []backends.Op
	// Stages are the operations' current routes (per cent on Approach 2)
	// from the flag file; an operation missing here takes the stage of its
	// latest calls in the ledger.
	Stages map[backends.Op]int
	// StageSince is when each operation's current stage began (the flag
	// change log); missing: where the ledger's calls changed stage.
	StageSince map[backends.Op]time.Time
	// Events are the flag change log's events in the period (stage
	// changes, the kill switch, drills) for the timeline.
	Events []Event
	// Source describes the ledger read ("file …", "postgresql").
	Source string
}

// EventKind is what a timeline event records.
type EventKind string

// The kinds of timeline events.
const (
	EventStage    EventKind = "stage"    // an operator changed a route
	EventRollback EventKind = "rollback" // the gateway rolled an operation back
	EventKill     EventKind = "kill"     // the kill switch was engaged
	EventRelease  EventKind = "release"  // the kill switch was released
	EventDrill    EventKind = "drill"    // a kill-switch drill
	EventOther    EventKind = "other"
)

// Event is one entry of the stage timeline.
type Event struct {
	At    time.Time   `json:"at"`
	Op    backends.Op `json:"op,omitempty"` // "" for every operation
	Kind  EventKind   `json:"kind"`
	Stage int         `json:"stage"` // the route after it (-1: not a route change)
	What  string      `json:"what"`
}

// Report is the canary comparison and the stay-or-migrate decision.
type Report struct {
	Version     int        `json:"version"`
	GeneratedAt time.Time  `json:"generated_at"`
	Since       time.Time  `json:"since"`
	Until       time.Time  `json:"until"`
	Source      string     `json:"source"`
	Decision    Decision   `json:"decision"`
	Operations  []OpReport `json:"operations"`
	Timeline    []Event    `json:"timeline"`
	// Drills are the kill-switch drills the ledger holds in the period,
	// one per drill id (its gateways' records merged).
	Drills []DrillSeen `json:"drills"`
	// DrillCalls is how many calls drills marked (Entry.Drill): they are
	// left out of every judgement, baseline, chart and signal.
	DrillCalls int64       `json:"drill_calls"`
	Settings   Settings    `json:"settings"`
	Charts     ChartSeries `json:"-"`
}

// Settings are the thresholds a report was made with.
type Settings struct {
	Judge    JudgeConfig    `json:"judge"`
	Decision DecisionConfig `json:"decision"`
}

// OpReport is one operation's judgement and what else the report knows
// of it.
type OpReport struct {
	Judgement
	// RolledBack lists the automatic rollbacks of the operation in the
	// period.
	RolledBack []RolledBack `json:"rolled_back,omitempty"`
	// DrillCalls is how many of the operation's calls drills marked, left
	// out of its judgement (StageDrill).
	DrillCalls int64 `json:"drill_calls,omitempty"`
}

// DrillSeen is a kill-switch drill found in the ledger: the records its
// gateways wrote of it (KindDrill), merged by id.
type DrillSeen struct {
	ID string `json:"id"`
	// At is the earliest start a gateway recorded; Until the latest end.
	At    time.Time `json:"at"`
	Until time.Time `json:"until"`
	// Gateways is how many records (one per gateway) the ledger holds.
	Gateways int `json:"gateways"`
	// Results counts the gateways per result ("pass", "fail", "aborted",
	// "expired").
	Results map[string]int `json:"results"`
	// Details are the records' results as written, one of each.
	Details []string `json:"details"`
}

// What is the drill in one line: "drill <id>: pass on 3 gateways", or
// each result with its gateways and what the others said.
func (d DrillSeen) What() string {
	results := slices.Sorted(maps.Keys(d.Results))
	slices.SortStableFunc(results, func(a, b string) int { return d.Results[b] - d.Results[a] })
	parts := make([]string, 0, len(results))
	for _, res := range results {
		parts = append(parts, fmt.Sprintf("%s on %d %s", res, d.Results[res], plural(d.Results[res], "gateway", "gateways")))
	}
	what := fmt.Sprintf("drill %s: %s", d.ID, strings.Join(parts, ", "))
	if len(d.Results) > 1 {
		what += " (" + strings.Join(d.Details, "; ") + ")"
	}
	return what
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ChartSeries is what the HTML report draws, beyond the JSON.
type ChartSeries struct {
	// Latency holds each operation's latency distributions (milliseconds)
	// on Approach 1 and Approach 2: the judged stage's, or the period's
	// when no stage is judged.
	Latency map[backends.Op][2]*Sketch
	// Daily counts each operation's calls per day and routed backend.
	Daily map[backends.Op]map[backends.Name][]DayCount
	// Stages are each operation's routes as its calls recorded them,
	// oldest first: runs of hours whose calls were mostly at one stage
	// (the stage timeline).
	Stages map[backends.Op][]StageSpan
}

// StageSpan is a run of hours at one stage: From is the first hour's
// start, To the last hour's end.
type StageSpan struct {
	From, To time.Time
	Stage    int // per cent on Approach 2; -1 unknown (old lines)
}

// DayCount is a day's calls and failures.
type DayCount struct {
	Day      time.Time
	Calls    int64
	Failures int64
}

// stageRun is a stretch of an operation's hours at one stage.
type stageRun struct {
	stage    int
	from, to time.Time // hours, inclusive
	// byTime: the run comes from the change log; cells of an unknown
	// stage (-1) in it count too.
	byTime bool
	// anyStage: every cell in the hours counts (a baseline of
	// Approach 1's calls).
	anyStage bool
}

func (r *stageRun) holds(k Key) bool {
	if r == nil || k.Hour.Before(r.from) || k.Hour.After(r.to) {
		return false
	}
	if k.Stage == StageDrill {
		return false // a drill's calls are never judged, nor a baseline
	}
	return r.anyStage || k.Stage == r.stage || (r.byTime && k.Stage == -1)
}

// opPlan is what the first pass found out about an operation.
type opPlan struct {
	hours     map[time.Time]map[int]int64 // calls per hour and stage
	rollbacks []RolledBack
	current   int
	runs      []*stageRun // the hours' dominant stages, oldest first
	judged    *stageRun
	baseline  *stageRun // at 100 %: every hour before it, for Approach 1
	rolled    bool      // the judged run ended in an automatic rollback
	// drillCalls are the calls drills marked (StageDrill), judged nowhere.
	drillCalls int64
}

// BuildReport reads src twice — once to find each operation's stages,
// once to sum them up — and judges every operation and the decision.
func BuildReport(ctx context.Context, src Source, cfg ReportConfig) (*Report, error) {
	if cfg.Until.IsZero() {
		cfg.Until = time.Now().UTC()
	}
	if cfg.Since.IsZero() {
		cfg.Since = cfg.Until.Add(-28 * 24 * time.Hour)
	}
	if !cfg.Since.Before(cfg.Until) {
		return nil, fmt.Errorf("report: --since (%s) must be before --until (%s)", cfg.Since.Format(time.RFC3339), cfg.Until.Format(time.RFC3339))
	}
	if cfg.Now.IsZero() {
		cfg.Now = cfg.Until
	}
	cfg.Judge, cfg.Decision = cfg.Judge.WithDefaults(), cfg.Decision.WithDefaults()
	if err := cfg.Judge.Validate(); err != nil {
		return nil, fmt.Errorf("report: judge: %w", err)
	}

	plans := map[backends.Op]*opPlan{}
	plan := func(op backends.Op) *opPlan {
		p := plans[op]
		if p == nil {
			p = &opPlan{hours: map[time.Time]map[int]int64{}}
			plans[op] = p
		}
		return p
	}
	for _, op := range cfg.Ops {
		plan(op)
	}
	drills := map[string]*DrillSeen{}
	err := src.Cells(ctx, cfg.Since, cfg.Until, func(k Key, c *Cell) error {
		for _, d := range c.Drills {
			seeDrill(drills, d)
		}
		if k.Op == "" {
			return nil
		}
		p := plan(k.Op)
		if k.Stage == StageDrill {
			if c.Calls != nil {
				p.drillCalls += c.Calls.N
			}
			return nil
		}
		if c.Calls != nil && c.Calls.N > 0 {
			if p.hours[k.Hour] == nil {
				p.hours[k.Hour] = map[int]int64{}
			}
			p.hours[k.Hour][k.Stage] += c.Calls.N
		}
		p.rollbacks = append(p.rollbacks, c.Rollbacks...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report: read the ledger: %w", err)
	}
	for op, p := range plans {
		p.decide(op, cfg)
	}

	// Second pass: the sums.
	type sums struct {
		a1, a2, base *Calls
		shadow       Shadows
		period       [2]*Calls
		daily        map[backends.Name]map[time.Time]*DayCount
	}
	all := map[backends.Op]*sums{}
	for op := range plans {
		all[op] = &sums{a1: NewCalls(), a2: NewCalls(), base: NewCalls(), period: [2]*Calls{NewCalls(), NewCalls()},
			daily: map[backends.Name]map[time.Time]*DayCount{}}
	}
	nweeks := int(cfg.Until.Sub(cfg.Since) / week)
	weeks := make([]weekAgg, nweeks)
	firstWeek := cfg.Until.Add(-time.Duration(nweeks) * week)
	for i := range weeks {
		weeks[i] = weekAgg{start: firstWeek.Add(time.Duration(i) * week), calls: NewCalls()}
	}
	weekOf := func(t time.Time) int {
		if t.Before(firstWeek) {
			return -1
		}
		return min(int(t.Sub(firstWeek)/week), nweeks-1)
	}
	err = src.Cells(ctx, cfg.Since, cfg.Until, func(k Key, c *Cell) error {
		if k.Op == "" {
			if k.Routed == backends.Approach1 {
				if i := weekOf(k.Hour); i >= 0 {
					weeks[i].sandboxes.N += c.Sandboxes.N
					weeks[i].sandboxes.Seconds += c.Sandboxes.Seconds
					weeks[i].sandboxes.CostUSD += c.Sandboxes.CostUSD
				}
			}
			return nil
		}
		s, p := all[k.Op], plans[k.Op]
		if s == nil || k.Stage == StageDrill {
			return nil // a drill's calls count nowhere (the first pass counted them)
		}
		if p.judged.holds(k) {
			s.shadow.Merge(c.Shadow)
		}
		if c.Calls == nil {
			return nil
		}
		switch k.Routed {
		case backends.Approach1:
			s.period[0].Merge(c.Calls)
			if p.judged.holds(k) {
				s.a1.Merge(c.Calls)
			}
			if p.baseline.holds(k) {
				s.base.Merge(c.Calls)
			}
			if i := weekOf(k.Hour); i >= 0 {
				weeks[i].calls.Merge(c.Calls)
			}
		case backends.Approach2:
			s.period[1].Merge(c.Calls)
			if p.judged.holds(k) {
				s.a2.Merge(c.Calls)
			}
		}
		day := k.Hour.Truncate(24 * time.Hour)
		if s.daily[k.Routed] == nil {
			s.daily[k.Routed] = map[time.Time]*DayCount{}
		}
		dc := s.daily[k.Routed][day]
		if dc == nil {
			dc = &DayCount{Day: day}
			s.daily[k.Routed][day] = dc
		}
		dc.Calls += c.Calls.N
		dc.Failures += c.Calls.Failures
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report: read the ledger: %w", err)
	}

	r := &Report{Version: ReportVersion, GeneratedAt: cfg.Now, Since: cfg.Since, Until: cfg.Until, Source: cfg.Source,
		Settings: Settings{Judge: cfg.Judge, Decision: cfg.Decision}, Operations: []OpReport{},
		Charts: ChartSeries{Latency: map[backends.Op][2]*Sketch{}, Daily: map[backends.Op]map[backends.Name][]DayCount{},
			Stages: map[backends.Op][]StageSpan{}}}
	r.Decision = decide(weeks, cfg.Decision)
	for _, op := range orderOps(cfg.Ops, plans) {
		p, s := plans[op], all[op]
		in := Input{Op: op, Stage: p.current, Now: cfg.Now, A1: s.a1, A2: s.a2, Shadow: s.shadow}
		if p.judged != nil {
			in.Stage, in.Since = p.judged.stage, p.judged.from
			if since, ok := cfg.StageSince[op]; ok && p.judged.byTime {
				in.Since = since
			}
		}
		if p.baseline != nil && s.a1.N == 0 {
			in.A1, in.Baseline = s.base, fmt.Sprintf("approach1's calls before the 100%% stage (%s to %s)",
				p.baseline.from.Format(time.RFC3339), p.baseline.to.Add(time.Hour).Format(time.RFC3339))
		}
		j := Judge(in, cfg.Judge)
		if p.rolled {
			last := p.rollbacks[len(p.rollbacks)-1]
			j.Reasons = append([]string{fmt.Sprintf("rolled back to approach1 automatically at %s: %s", last.At.Format(time.RFC3339), last.Reason)}, j.Reasons...)
			if j.Verdict != VerdictRollback {
				j.Verdict = VerdictRollback
			}
			j.Stage = p.current
		}
		r.Operations = append(r.Operations, OpReport{Judgement: j, RolledBack: p.rollbacks, DrillCalls: p.drillCalls})
		r.DrillCalls += p.drillCalls
		if in.A1.N > 0 || in.A2.N > 0 {
			r.Charts.Latency[op] = [2]*Sketch{in.A1.Latency, in.A2.Latency}
		} else {
			r.Charts.Latency[op] = [2]*Sketch{s.period[0].Latency, s.period[1].Latency}
		}
		daily := map[backends.Name][]DayCount{}
		for name, days := range s.daily {
			list := slices.Collect(maps.Values(days))
			slices.SortFunc(list, func(a, b *DayCount) int { return a.Day.Compare(b.Day) })
			for _, d := range list {
				daily[name] = append(daily[name], *d)
			}
		}
		r.Charts.Daily[op] = daily
		for _, run := range p.runs {
			r.Charts.Stages[op] = append(r.Charts.Stages[op], StageSpan{From: run.from, To: run.to.Add(time.Hour), Stage: run.stage})
		}
	}
	r.Drills = sortedDrills(drills)
	r.Timeline = timeline(cfg.Events, plans, r.Drills)
	return r, nil
}

// seeDrill adds a gateway's record of a drill to the drills seen.
func seeDrill(drills map[string]*DrillSeen, d DrillRun) {
	s := drills[d.ID]
	if s == nil {
		s = &DrillSeen{ID: d.ID, At: d.At, Until: d.At.Add(d.Duration), Results: map[string]int{}}
		drills[d.ID] = s
	}
	s.Gateways++
	s.Results[d.Result()]++
	if d.At.Before(s.At) {
		s.At = d.At
	}
	if end := d.At.Add(d.Duration); end.After(s.Until) {
		s.Until = end
	}
	if !slices.Contains(s.Details, d.Detail) {
		s.Details = append(s.Details, d.Detail)
	}
}

// sortedDrills lists the drills seen by start, then id.
func sortedDrills(drills map[string]*DrillSeen) []DrillSeen {
	out := make([]DrillSeen, 0, len(drills))
	for _, d := range drills {
		slices.Sort(d.Details)
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DrillSeen) int { return cmp.Or(a.At.Compare(b.At), strings.Compare(a.ID, b.ID)) })
	return out
}

const week = 7 * 24 * time.Hour

// decide finds the operation's current stage, the run of hours to judge
// and, at 100 %, the hours before it (Approach 1's baseline: its calls
// at every earlier stage of the period, which is as much of Approach 1's
// behaviour as the ledger holds).
func (p *opPlan) decide(op backends.Op, cfg ReportConfig) {
	hours := slices.SortedFunc(maps.Keys(p.hours), time.Time.Compare)
	slices.SortFunc(p.rollbacks, func(a, b RolledBack) int { return a.At.Compare(b.At) })
	// Runs of the hours' dominant stage.
	var runs []*stageRun
	for _, h := range hours {
		st, best := -1, int64(-1)
		for s, n := range p.hours[h] {
			if n > best || (n == best && s > st) {
				st, best = s, n
			}
		}
		if len(runs) > 0 && runs[len(runs)-1].stage == st {
			runs[len(runs)-1].to = h
			continue
		}
		runs = append(runs, &stageRun{stage: st, from: h, to: h})
	}
	p.runs = runs
	cur, known := cfg.Stages[op]
	if !known && len(runs) > 0 {
		cur = max(runs[len(runs)-1].stage, 0)
	}
	p.current = cur
	if since, ok := cfg.StageSince[op]; ok && !since.IsZero() && cur > 0 {
		p.judged = &stageRun{stage: cur, from: since.UTC().Truncate(time.Hour), to: cfg.Until, byTime: true}
	} else if n := len(runs); n > 0 && runs[n-1].stage == cur {
		p.judged = runs[n-1]
	}
	if cur == 0 {
		// A stage that ended in an automatic rollback is judged as it was.
		for i := len(runs) - 1; i >= 0; i-- {
			if runs[i].stage <= 0 {
				continue
			}
			for _, rb := range p.rollbacks {
				if !rb.At.Before(runs[i].from) {
					p.judged, p.rolled = runs[i], true
				}
			}
			break
		}
	}
	if p.judged != nil && p.judged.stage == 100 && len(hours) > 0 && hours[0].Before(p.judged.from) {
		p.baseline = &stageRun{from: hours[0], to: p.judged.from.Add(-time.Hour), anyStage: true}
	}
}

// orderOps lists cfg's operations first, then the ledger's others.
func orderOps(ops []backends.Op, plans map[backends.Op]*opPlan) []backends.Op {
	out := slices.Clone(ops)
	var extra []backends.Op
	for op := range plans {
		if !slices.Contains(out, op) {
			extra = append(extra, op)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}

// timeline merges the change log's events with the ledger's automatic
// rollbacks (one the change log already holds, within a minute, is not
// repeated) and its drills, one event each.
func timeline(events []Event, plans map[backends.Op]*opPlan, drills []DrillSeen) []Event {
	out := slices.Clone(events)
	for _, d := range drills {
		out = append(out, Event{At: d.At, Kind: EventDrill, Stage: -1, What: d.What()})
	}
	for op, p := range plans {
		for _, rb := range p.rollbacks {
			dup := slices.ContainsFunc(events, func(e Event) bool {
				return e.Kind == EventRollback && e.Op == op && e.At.Sub(rb.At).Abs() < time.Minute
			})
			if !dup {
				out = append(out, Event{At: rb.At, Op: op, Kind: EventRollback, Stage: 0, What: rb.Reason})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.At.Compare(b.At) })
	if out == nil {
		out = []Event{}
	}
	return out
}

// RolledBackOps lists the operations whose verdict is rollback (the
// command exits 3 when there are any).
func (r *Report) RolledBackOps() []backends.Op {
	var out []backends.Op
	for _, o := range r.Operations {
		if o.Verdict == VerdictRollback {
			out = append(out, o.Op)
		}
	}
	return out
}
