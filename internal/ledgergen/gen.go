package ledgergen

import (
	"container/heap"
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
)

// Each simulates cfg and calls fn with every record, in time order (by
// At): the calls at their start, each comparison when its shadow started
// (after the primary answered), each sandbox when it ended. Records at or
// after the end are left out (sandboxes still alive then have not ended).
// It stops at fn's first error and returns it.
func Each(cfg Config, fn func(canary.Entry) error) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("ledgergen: %w", err)
	}
	g := newGen(cfg.WithDefaults(), fn)
	return g.run()
}

// Generate collects what Each gives: for small simulations (a week of a
// hundred agents is over a million calls; see Summarise).
func Generate(cfg Config) (canary.Entries, error) {
	var out canary.Entries
	err := Each(cfg, func(e canary.Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// Summary is a simulation rolled up into the ledger's hourly cells, with
// its counts: a canary.Source of bounded size however long the
// simulation.
type Summary struct {
	Rollup canary.Rollup
	Stats  Stats
}

// Summarise simulates cfg into a Summary.
func Summarise(cfg Config) (*Summary, error) {
	s := &Summary{Rollup: canary.Rollup{}}
	err := Each(cfg, func(e canary.Entry) error {
		s.Rollup.Add(e)
		s.Stats.Add(e)
		return nil
	})
	return s, err
}

// Cells implements canary.Source: the cells of every hour that overlaps
// [since, until), each handed whole.
func (s *Summary) Cells(ctx context.Context, since, until time.Time, fn func(canary.Key, *canary.Cell) error) error {
	for k, c := range s.Rollup {
		if err := ctx.Err(); err != nil {
			return err
		}
		if k.Hour.Before(since.Truncate(time.Hour)) || !k.Hour.Before(until) {
			continue
		}
		if err := fn(k, c); err != nil {
			return err
		}
	}
	return nil
}

// Stats counts a ledger's records.
type Stats struct {
	Entries     int64
	Calls       map[backends.Name]int64 // by the backend the flags chose
	Comparisons map[canary.Outcome]int64
	Sandboxes   int64
	SandboxUSD  float64
	MaxInFlight int
	First, Last time.Time
}

// Add counts e.
func (s *Stats) Add(e canary.Entry) {
	if s.Calls == nil {
		s.Calls, s.Comparisons = map[backends.Name]int64{}, map[canary.Outcome]int64{}
	}
	s.Entries++
	if s.First.IsZero() {
		s.First = e.At
	}
	s.Last = e.At
	switch e.Kind {
	case canary.KindCall:
		s.Calls[e.Routed]++
		s.MaxInFlight = max(s.MaxInFlight, e.InFlight)
	case canary.KindComparison:
		s.Comparisons[e.Outcome]++
	case canary.KindSandbox:
		s.Sandboxes++
		s.SandboxUSD += e.CostUSD
	}
}

// agent is one simulated agent: its next call and its session.
type agent struct {
	id         int
	next       time.Time // the next call's start
	sessionEnd time.Time
	ws         int
	burst      *Burst // nil for an agent of the steady population
	retired    bool
}

type sandboxKey struct {
	ws      int
	backend backends.Name
}

type sandbox struct {
	born, lastUse time.Time
}

// pending is a record due later than the call being simulated: a
// comparison, or a sandbox's end unless it was used since (then its end
// moves to an idle TTL after its last use).
type pending struct {
	at      time.Time
	seq     uint64
	entry   canary.Entry
	sandbox *sandboxKey
}

type gen struct {
	cfg     Config
	fn      func(canary.Entry) error
	r       *rand.Rand
	end     time.Time
	ops     []backends.Op
	cum     []float64 // cumulative weights of ops
	agents  agentHeap
	pend    pendHeap
	seq     uint64
	running endHeap                // end times (Unix nanoseconds) of calls in flight
	busy    []time.Time            // by workspace: when its running call ends
	boxes   [][2]*sandbox          // by workspace and backend (approach1, approach2)
	buckets map[backends.Op][]int8 // by operation and workspace: its sticky place in the route
}

func newGen(cfg Config, fn func(canary.Entry) error) *gen {
	g := &gen{cfg: cfg, fn: fn, r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), end: cfg.Start.Add(cfg.Duration),
		buckets: map[backends.Op][]int8{}}
	nws := cfg.Workspaces + cfg.Agents
	for _, b := range cfg.Bursts {
		nws += b.Agents
	}
	g.busy, g.boxes = make([]time.Time, nws), make([][2]*sandbox, nws)
	for op := range cfg.Ops {
		bs := make([]int8, nws)
		for ws := range bs {
			h := fnv.New32a()
			_, _ = h.Write([]byte(string(op) + "/" + strconv.Itoa(ws)))
			bs[ws] = int8(h.Sum32() % 100)
		}
		g.buckets[op] = bs
	}
	for _, op := range slices.Sorted(maps.Keys(cfg.Ops)) {
		if w := cfg.Ops[op].Weight; w > 0 {
			g.ops = append(g.ops, op)
			prev := 0.0
			if n := len(g.cum); n > 0 {
				prev = g.cum[n-1]
			}
			g.cum = append(g.cum, prev+w)
		}
	}
	for _, d := range cfg.Drills {
		for range d.Gateways {
			// Each gateway's record of the drill, at its start (a gateway
			// writes it at the end, but this ledger keeps time order).
			g.later(&pending{at: d.At, entry: canary.Entry{At: d.At, Kind: canary.KindDrill,
				Duration: d.Length, Drill: d.ID, Detail: d.Result, Stage: -1}})
		}
	}
	for i := range cfg.Agents {
		a := &agent{id: i}
		g.startSession(a, cfg.Start)
		heap.Push(&g.agents, a)
	}
	id := cfg.Agents
	for bi := range cfg.Bursts {
		b := &cfg.Bursts[bi]
		for range b.Agents {
			a := &agent{id: id, burst: b, ws: cfg.Workspaces + id}
			id++
			g.startSession(a, cfg.Start)
			if !a.retired {
				heap.Push(&g.agents, a)
			}
		}
	}
	return g
}

func (g *gen) run() error {
	for g.agents.Len() > 0 {
		a := g.agents[0]
		if !a.next.Before(g.end) {
			break
		}
		if err := g.flush(a.next); err != nil {
			return err
		}
		if err := g.call(a); err != nil {
			return err
		}
		if a.retired {
			heap.Pop(&g.agents)
		} else {
			heap.Fix(&g.agents, 0)
		}
	}
	return g.flush(g.end.Add(-time.Nanosecond))
}

// flush hands on the pending records due at or before t.
func (g *gen) flush(t time.Time) error {
	for g.pend.Len() > 0 && !g.pend[0].at.After(t) {
		p := heap.Pop(&g.pend).(*pending)
		if p.sandbox == nil {
			if err := g.fn(p.entry); err != nil {
				return err
			}
			continue
		}
		box := g.box(*p.sandbox)
		if due := box.lastUse.Add(g.cfg.SandboxTTL); due.After(p.at) {
			p.at = due // used again since: it lives on
			g.later(p)
			continue
		}
		life := p.at.Sub(box.born)
		*box = sandbox{}
		e := canary.Entry{At: p.at, Kind: canary.KindSandbox, Routed: p.sandbox.backend, Backend: p.sandbox.backend, Stage: -1,
			Duration: life, CostUSD: life.Seconds() * g.cfg.Price * g.modifier(p.sandbox.backend, "", p.at).costFactor()}
		if err := g.fn(e); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) later(p *pending) {
	g.seq++
	p.seq = g.seq
	heap.Push(&g.pend, p)
}

// startSession schedules a's next session at or after from.
func (g *gen) startSession(a *agent, from time.Time) {
	if b := a.burst; b != nil {
		first := b.From.Add(b.Offset)
		at := first
		if from.After(first) {
			k := (from.Sub(first) + b.Every - 1) / b.Every
			at = first.Add(k * b.Every)
		}
		if !at.Before(b.To) || !at.Before(g.end) {
			a.retired = true
			return
		}
		a.next, a.sessionEnd = at, at.Add(b.Length)
		return
	}
	// Session starts at rate 1/Idle thinned by the load: a Poisson
	// process of rate Load(t)/Idle.
	t := from
	for {
		t = t.Add(g.exp(g.cfg.Idle))
		if !t.Before(g.end) || g.r.Float64() < g.cfg.Load(t) {
			break
		}
	}
	a.next = t
	a.sessionEnd = t.Add(g.exp(g.cfg.Session))
	a.ws = g.r.IntN(g.cfg.Workspaces)
}

func (g *gen) exp(mean time.Duration) time.Duration {
	return time.Duration(g.r.ExpFloat64() * float64(mean))
}

func (g *gen) pickOp() backends.Op {
	u := g.r.Float64() * g.cum[len(g.cum)-1]
	i, _ := slices.BinarySearch(g.cum, u)
	return g.ops[min(i, len(g.ops)-1)]
}

// stage is op's route at t.
func (g *gen) stage(op backends.Op, t time.Time) int {
	s := 0
	for _, st := range g.cfg.Stages[op] {
		if !t.Before(st.At) {
			s = st.Stage
		}
	}
	return s
}

// bucket is the workspace's sticky place (0..99) in op's route: a
// workspace whose bucket is below the stage goes to Approach 2, at every
// stage from then on.
func (g *gen) bucket(op backends.Op, ws int) int { return int(g.buckets[op][ws]) }

// modifier is the sum of the mods that apply.
func (g *gen) modifier(b backends.Name, op backends.Op, t time.Time) Modifier {
	m := Modifier{Factor: 1, CostFactor: 1}
	for _, x := range g.cfg.Mods {
		if !x.applies(b, op, t) {
			continue
		}
		m.FailRate += x.FailRate
		m.FallbackShare = max(m.FallbackShare, x.FallbackShare)
		m.Shift += x.Shift
		if x.Factor > 0 {
			m.Factor *= x.Factor
		}
		if x.CostFactor > 0 {
			m.CostFactor *= x.CostFactor
		}
		m.MismatchRate += x.MismatchRate
	}
	return m
}

func (m Modifier) costFactor() float64 {
	if m.CostFactor <= 0 {
		return 1
	}
	return m.CostFactor
}

// service draws a call's time in its sandbox.
func (g *gen) service(op backends.Op, m Modifier) time.Duration {
	om := g.cfg.Ops[op]
	d := float64(om.Median) * math.Exp(om.Sigma*g.r.NormFloat64())
	if g.r.Float64() < om.TailProb {
		d *= max(om.TailFactor, 1) * math.Exp(0.5*math.Abs(g.r.NormFloat64()))
	}
	if m.Factor > 0 {
		d *= m.Factor
	}
	return max(time.Duration(d)+m.Shift, time.Microsecond)
}

var failures = []backends.Category{backends.Unavailable, backends.Unavailable, backends.Unavailable, backends.Timeout, backends.Internal}

// call simulates a's next call and schedules the one after it.
func (g *gen) call(a *agent) error {
	t := a.next
	op := g.pickOp()
	om := g.cfg.Ops[op]
	stage := g.stage(op, t)
	routed := backends.Approach1
	if g.bucket(op, a.ws) < stage {
		routed = backends.Approach2
	}
	drill, killed, forced := g.drillAt(op, t)
	if killed {
		routed = backends.Approach1
	}
	m := g.modifier(routed, op, t)

	// Queueing: a little always, and the rest of a call still running in
	// the workspace (its lock).
	wait := g.exp(g.cfg.Wait)
	if op != backends.OpListWorkspaces {
		if busy := g.busy[a.ws]; busy.After(t) {
			wait += busy.Sub(t)
		}
	}
	service := g.service(op, m)
	e := canary.Entry{At: t, Kind: canary.KindCall, Op: op, Routed: routed, Backend: routed, Stage: stage, Drill: drill}
	served, cost := routed, m.costFactor()
	u := g.r.Float64()
	switch {
	case forced && routed == backends.Approach2:
		// The drill forced the breaker open: Approach 1 served the call.
		e.FellBack, served = true, backends.Approach1
		a1 := g.modifier(backends.Approach1, op, t)
		service = service/4 + g.service(op, a1)
		cost = a1.costFactor()
	case u < m.FailRate && routed == backends.Approach2 && g.r.Float64() < m.FallbackShare:
		// Approach 2 failed before it started; Approach 1 served the call.
		e.FellBack, served = true, backends.Approach1
		a1 := g.modifier(backends.Approach1, op, t)
		service = service/4 + g.service(op, a1)
		cost = a1.costFactor()
	case u < m.FailRate+om.FailRate:
		e.Category = failures[g.r.IntN(len(failures))]
		if e.Category == backends.Timeout {
			service *= 3
		}
	case u < m.FailRate+om.FailRate+om.ClientErrorRate:
		e.Category = om.ClientError
	}
	e.Backend = served
	e.Duration = wait + service
	if e.Category == "" {
		// What the call's sandbox commands cost (the gateway records it
		// for calls that succeeded).
		e.CostUSD, e.Wait = service.Seconds()*g.cfg.Price*cost, wait
	}
	end := t.Add(e.Duration)

	// Calls in flight when it starts, itself included.
	g.running.popUpTo(t.UnixNano())
	g.running.push(end.UnixNano())
	e.InFlight = len(g.running)
	if op != backends.OpListWorkspaces {
		g.busy[a.ws] = end
	}
	g.useSandbox(a.ws, served, t, end)
	if stage > 0 && g.cfg.ShadowRate > 0 && g.r.Float64() < g.cfg.ShadowRate {
		g.shadow(op, served, stage, end, drill)
	}
	if err := g.fn(e); err != nil {
		return err
	}

	next := end.Add(g.exp(g.cfg.Think))
	if next.After(a.sessionEnd) {
		g.startSession(a, next)
	} else {
		a.next = next
	}
	return nil
}

// drillAt says which drill (its id, "" for none) marks a call of op at t,
// whether its kill switch is engaged then, and whether op's breaker is
// forced open.
func (g *gen) drillAt(op backends.Op, t time.Time) (id string, killed, forced bool) {
	for _, d := range g.cfg.Drills {
		if t.Before(d.At) || !t.Before(d.At.Add(d.Length)) {
			continue
		}
		killed = t.Before(d.At.Add(d.Length / 2))
		return d.ID, killed, !killed && op == d.Breaker
	}
	return "", false, false
}

// useSandbox keeps the workspace's sandbox on backend b (a new one when
// none is alive) in use until end: it ends an idle TTL after its last use.
// box is the sandbox of k (zero when none is alive).
func (g *gen) box(k sandboxKey) *sandbox {
	i := 0
	if k.backend == backends.Approach2 {
		i = 1
	}
	if g.boxes[k.ws][i] == nil {
		g.boxes[k.ws][i] = &sandbox{}
	}
	return g.boxes[k.ws][i]
}

func (g *gen) useSandbox(ws int, b backends.Name, start, end time.Time) {
	k := sandboxKey{ws, b}
	box := g.box(k)
	if box.born.IsZero() {
		*box = sandbox{born: start, lastUse: end}
		g.later(&pending{at: end.Add(g.cfg.SandboxTTL), sandbox: &k})
	}
	if end.After(box.lastUse) {
		box.lastUse = end
	}
}

// shadow schedules the comparison of a call that primary served and that
// returned at t, with the other backend.
func (g *gen) shadow(op backends.Op, primary backends.Name, stage int, t time.Time, drill string) {
	other := backends.Approach2
	if primary == backends.Approach2 {
		other = backends.Approach1
	}
	at := t.Add(time.Duration(g.r.Int64N(int64(2 * time.Millisecond))))
	om := g.modifier(other, op, at)
	e := canary.Entry{At: at, Kind: canary.KindComparison, Op: op, Routed: primary, Backend: other, Stage: stage,
		Duration: g.service(op, om), Drill: drill}
	mismatch := om.MismatchRate + g.modifier(primary, op, at).MismatchRate
	switch u := g.r.Float64(); {
	case u < g.cfg.StaleRate:
		e.Outcome = canary.OutcomeStale
		e.Detail = "the workspace changed between the primary's read and the shadow's"
		if !op.IsRead() {
			e.Detail = "the workspace moved on before the prediction was made"
		}
	case u < g.cfg.StaleRate+g.cfg.ShadowErrorRate:
		e.Outcome, e.Detail = canary.OutcomeShadowError, fmt.Sprintf("%s: unavailable: sandbox not ready", op)
	case u < g.cfg.StaleRate+g.cfg.ShadowErrorRate+mismatch:
		e.Outcome, e.Detail = canary.OutcomeMismatch, g.mismatchDetail(op)
	default:
		e.Outcome = canary.OutcomeMatch
	}
	g.later(&pending{at: at, entry: e})
}

// mismatchDetail is a diff as canary.Compare writes it: one line per
// differing field, "path: primary … / shadow …".
func (g *gen) mismatchDetail(op backends.Op) string {
	sha := func() string { return fmt.Sprintf("%016x%08x", g.r.Uint64(), g.r.Uint32()) }
	switch op {
	case backends.OpCommit:
		return fmt.Sprintf("sha: primary %q / shadow %q\nfiles_changed: primary %d / shadow %d", sha(), sha(), 2+g.r.IntN(3), 1)
	case backends.OpPush:
		return fmt.Sprintf("new_sha: primary %q / shadow %q", sha(), sha())
	case backends.OpStatus:
		return `files[0].status: primary "modified" / shadow "added"`
	case backends.OpLog:
		return fmt.Sprintf("commits[0].sha: primary %q / shadow %q", sha(), sha())
	case backends.OpReadFile:
		return `size: primary 1841 / shadow 1839`
	default:
		return fmt.Sprintf("%s: primary %q / shadow %q", "result", "a", "b")
	}
}

type agentHeap []*agent

func (h agentHeap) Len() int { return len(h) }
func (h agentHeap) Less(i, j int) bool {
	if c := h[i].next.Compare(h[j].next); c != 0 {
		return c < 0
	}
	return h[i].id < h[j].id
}
func (h agentHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *agentHeap) Push(x any)   { *h = append(*h, x.(*agent)) }
func (h *agentHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type pendHeap []*pending

func (h pendHeap) Len() int { return len(h) }
func (h pendHeap) Less(i, j int) bool {
	if c := h[i].at.Compare(h[j].at); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h pendHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pendHeap) Push(x any)   { *h = append(*h, x.(*pending)) }
func (h *pendHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// endHeap is a min-heap of end times (without container/heap's boxing:
// one push per call).
type endHeap []int64

func (h *endHeap) push(v int64) {
	*h = append(*h, v)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if a[p] <= a[i] {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

// popUpTo removes the ends at or before t.
func (h *endHeap) popUpTo(t int64) {
	for len(*h) > 0 && (*h)[0] <= t {
		a := *h
		n := len(a) - 1
		a[0] = a[n]
		a = a[:n]
		for i := 0; ; {
			l, m := 2*i+1, i
			if l < n && a[l] < a[m] {
				m = l
			}
			if l+1 < n && a[l+1] < a[m] {
				m = l + 1
			}
			if m == i {
				break
			}
			a[i], a[m] = a[m], a[i]
			i = m
		}
		*h = a
	}
}
