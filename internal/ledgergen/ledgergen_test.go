package ledgergen

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
)

// monday is a Monday at midnight UTC: simulations start there, so that
// their weeks are calendar weeks.
var monday = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// small is a few agents over d with a canary and shadows.
func small(seed uint64, d time.Duration) Config {
	return Config{Seed: seed, Start: monday, Duration: d, Agents: 5, Stages: CanaryStages(monday, d),
		ShadowRate: 0.2, StaleRate: 0.01, ShadowErrorRate: 0.01}
}

const days = 24 * time.Hour

func generate(t *testing.T, cfg Config) canary.Entries {
	t.Helper()
	es, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func calls(es canary.Entries) []canary.Entry {
	var out []canary.Entry
	for _, e := range es {
		if e.Kind == canary.KindCall {
			out = append(out, e)
		}
	}
	return out
}

// The same seed gives the same ledger; another seed another one.
func TestDeterministic(t *testing.T) {
	a, b, c := generate(t, small(1, 2*days)), generate(t, small(1, 2*days)), generate(t, small(2, 2*days))
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Fatalf("two runs of seed 1 differ (%d and %d records)", len(a), len(b))
	}
	if slices.Equal(a, c) {
		t.Fatal("seeds 1 and 2 gave the same ledger")
	}
}

// Records come in time order, within the simulated period, and every kind
// is there.
func TestTimeOrderAndKinds(t *testing.T) {
	cfg := small(3, Week)
	es := generate(t, cfg)
	kinds := map[canary.Kind]int{}
	for i, e := range es {
		kinds[e.Kind]++
		if e.At.Before(cfg.Start) || !e.At.Before(cfg.End()) {
			t.Fatalf("record %d at %s is outside [%s, %s)", i, e.At, cfg.Start, cfg.End())
		}
		if i > 0 && e.At.Before(es[i-1].At) {
			t.Fatalf("record %d (%s at %s) comes before record %d (%s at %s)", i, e.Kind, e.At, i-1, es[i-1].Kind, es[i-1].At)
		}
	}
	if kinds[canary.KindCall] < 10_000 || kinds[canary.KindComparison] == 0 || kinds[canary.KindSandbox] == 0 {
		t.Fatalf("records by kind %v; want calls (over 10,000 in a week of 5 agents), comparisons and sandboxes", kinds)
	}
	t.Logf("a week of 5 agents: %v", kinds)
}

// InFlight is the number of calls running when a call starts, itself
// included, recounted here from the calls' starts and durations.
func TestInFlightIsCounted(t *testing.T) {
	cfg := small(4, days)
	cfg.Agents, cfg.Workspaces = 30, 30
	cs := calls(generate(t, cfg))
	maxDur := time.Duration(0)
	for _, c := range cs {
		maxDur = max(maxDur, c.Duration)
	}
	peak := 0
	for i, c := range cs {
		n := 0
		for j := i; j >= 0 && !cs[j].At.Before(c.At.Add(-maxDur)); j-- {
			if cs[j].At.Add(cs[j].Duration).After(c.At) {
				n++
			}
		}
		if c.InFlight != n {
			t.Fatalf("call %d (%s at %s) has in_flight %d; %d calls were running", i, c.Op, c.At, c.InFlight, n)
		}
		peak = max(peak, n)
	}
	if peak < 3 {
		t.Fatalf("peak in flight %d with 30 agents: calls never overlap", peak)
	}
	t.Logf("30 agents, a day: %d calls, peak %d in flight", len(cs), peak)
}

// Fewer calls at night and at weekends.
func TestDiurnalAndWeeklyLoad(t *testing.T) {
	cs := calls(generate(t, small(5, Week)))
	var day, night, weekday, weekend int
	for _, c := range cs {
		h, wd := c.At.Hour(), c.At.Weekday()
		isWeekend := wd == time.Saturday || wd == time.Sunday
		if isWeekend {
			weekend++
		} else {
			weekday++
			switch {
			case h >= 10 && h < 16:
				day++
			case h < 6:
				night++
			}
		}
	}
	// Per hour: 6 day hours against 6 night hours; 2 weekend days against 5 weekdays.
	if night == 0 || float64(day)/float64(night) < 5 {
		t.Errorf("weekday calls 10–16 h: %d, 0–6 h: %d; want at least 5 times as many by day", day, night)
	}
	if ratio := (float64(weekend) / 2) / (float64(weekday) / 5); ratio > 0.5 {
		t.Errorf("a weekend day has %.2f of a weekday's calls; want at most half", ratio)
	}
	t.Logf("weekday 10–16 h %d calls, 0–6 h %d; weekend day / weekday %.2f", day, night, (float64(weekend)/2)/(float64(weekday)/5))
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// Latencies follow the operation models: reads in tens of milliseconds,
// commit in hundreds, push and clone in seconds, with a tail; waits are
// small but long behind a busy workspace; a successful call costs its
// sandbox seconds at the price, a failed one nothing recorded.
func TestLatencyWaitsAndCosts(t *testing.T) {
	cfg := small(6, 3*days)
	cs := calls(generate(t, cfg))
	by := map[backends.Op][]time.Duration{}
	var waits []time.Duration
	for _, c := range cs {
		by[c.Op] = append(by[c.Op], c.Duration)
		if c.Wait < 0 || c.Wait > c.Duration {
			t.Fatalf("call %s at %s waited %s of %s", c.Op, c.At, c.Wait, c.Duration)
		}
		if c.Category == "" {
			waits = append(waits, c.Wait)
			want := (c.Duration - c.Wait).Seconds() * Price
			if math.Abs(c.CostUSD-want) > 1e-12 {
				t.Fatalf("call %s of %s (wait %s) costs $%g; want $%g", c.Op, c.Duration, c.Wait, c.CostUSD, want)
			}
		} else if c.CostUSD != 0 {
			t.Fatalf("failed call %s (%s) costs $%g", c.Op, c.Category, c.CostUSD)
		}
	}
	for op, want := range map[backends.Op][2]time.Duration{
		backends.OpStatus:   {15 * time.Millisecond, 50 * time.Millisecond},
		backends.OpReadFile: {8 * time.Millisecond, 40 * time.Millisecond},
		backends.OpCommit:   {150 * time.Millisecond, 400 * time.Millisecond},
		backends.OpPush:     {900 * time.Millisecond, 1600 * time.Millisecond},
		backends.OpClone:    {1800 * time.Millisecond, 3500 * time.Millisecond},
	} {
		if m := median(by[op]); m < want[0] || m > want[1] {
			t.Errorf("%s median %s; want %s to %s", op, m, want[0], want[1])
		}
	}
	st := by[backends.OpStatus]
	if p999 := st[len(st)*999/1000]; p999 < 5*median(st) {
		t.Errorf("status P99.9 %s is under 5× its median %s: no tail", p999, median(st))
	}
	if m, p := median(waits), waits[len(waits)*9999/10000]; m > 5*time.Millisecond || p < 100*time.Millisecond {
		t.Errorf("waits: median %s (want under 5 ms), P99.99 %s (want a busy workspace's, over 100 ms)", m, p)
	}
}

// Calls follow the stage schedule: none on Approach 2 before the canary,
// a share near the stage after; shadows only while it runs, at about the
// shadow rate; sandboxes end an idle TTL after their last use, costing
// their life at the price.
func TestStagesShadowsAndSandboxes(t *testing.T) {
	cfg := small(7, 3*days)
	cfg.Agents, cfg.Workspaces = 10, 200 // many workspaces: the sticky share comes near the stage
	es := generate(t, cfg)
	var staged, a2, compared int
	for _, e := range es {
		switch e.Kind {
		case canary.KindCall:
			want := 0
			for _, s := range cfg.Stages[e.Op] {
				if !e.At.Before(s.At) {
					want = s.Stage
				}
			}
			if e.Stage != want {
				t.Fatalf("%s call at %s has stage %d; the schedule says %d", e.Op, e.At, e.Stage, want)
			}
			if e.Stage == 0 && e.Routed != backends.Approach1 {
				t.Fatalf("%s call at %s at 0 %% routed to %s", e.Op, e.At, e.Routed)
			}
			if e.Stage == 50 {
				staged++
				if e.Routed == backends.Approach2 {
					a2++
				}
			}
		case canary.KindComparison:
			if e.Stage == 0 {
				t.Fatalf("a comparison at 0 %%: %+v", e)
			}
			if e.Backend == e.Routed {
				t.Fatalf("a comparison shadowed %s with itself", e.Routed)
			}
			compared++
		case canary.KindSandbox:
			if e.Duration < cfg.WithDefaults().SandboxTTL || e.At.Add(-e.Duration).Before(cfg.Start) {
				t.Fatalf("a sandbox that ended at %s lived %s: less than the idle TTL, or from before the start", e.At, e.Duration)
			}
			if want := e.Duration.Seconds() * Price; math.Abs(e.CostUSD-want) > 1e-9 {
				t.Fatalf("a sandbox of %s cost $%g; want $%g", e.Duration, e.CostUSD, want)
			}
		}
	}
	if share := float64(a2) / float64(staged); share < 0.35 || share > 0.65 {
		t.Errorf("at 50 %%, %.1f%% of calls went to approach2", 100*share)
	}
	var canaryCalls int
	for _, c := range calls(es) {
		if c.Stage > 0 {
			canaryCalls++
		}
	}
	if rate := float64(compared) / float64(canaryCalls); math.Abs(rate-cfg.ShadowRate) > 0.02 {
		t.Errorf("%d comparisons of %d canary calls (%.3f); want about %.2f", compared, canaryCalls, rate, cfg.ShadowRate)
	}
}

// A modifier's failures that fall back are served by Approach 1 and count
// against Approach 2.
func TestModifierFallbacks(t *testing.T) {
	cfg := small(8, 3*days)
	cfg.Mods = []Mod{{Backend: backends.Approach2, Op: backends.OpStatus, Modifier: Modifier{FailRate: 0.3, FallbackShare: 1}}}
	var a2, fell int
	for _, c := range calls(generate(t, cfg)) {
		if c.Op != backends.OpStatus || c.Routed != backends.Approach2 {
			if c.FellBack {
				t.Fatalf("a %s call routed to %s fell back", c.Op, c.Routed)
			}
			continue
		}
		a2++
		if c.FellBack {
			fell++
			if c.Backend != backends.Approach1 || c.Category != "" || !c.Failed() {
				t.Fatalf("a fallback: %+v", c)
			}
		}
	}
	if share := float64(fell) / float64(a2); share < 0.25 || share > 0.35 {
		t.Errorf("%d of %d approach2 status calls fell back; want about 30 %%", fell, a2)
	}
}

// Summarise's roll-up reports what the records themselves report.
func TestSummaryIsTheLedgersSource(t *testing.T) {
	cfg := small(9, 3*days)
	es := generate(t, cfg)
	sum, err := Summarise(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc := canary.ReportConfig{Since: cfg.Start, Until: cfg.End(), Ops: backends.OpList()}
	want, err := canary.BuildReport(context.Background(), es, rc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := canary.BuildReport(context.Background(), sum, rc)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Stats.Entries != int64(len(es)) {
		t.Errorf("summary counted %d records; the ledger has %d", sum.Stats.Entries, len(es))
	}
	for i, w := range want.Operations {
		g := got.Operations[i]
		if g.Op != w.Op || g.Verdict != w.Verdict || g.Approach1.Calls != w.Approach1.Calls || g.Approach2.Calls != w.Approach2.Calls ||
			g.Approach2.Failures != w.Approach2.Failures || g.Shadow.Compared != w.Shadow.Compared || g.Approach2.P95 != w.Approach2.P95 {
			t.Errorf("%s: from the summary %s %d/%d calls; from the records %s %d/%d", w.Op, g.Verdict, g.Approach1.Calls, g.Approach2.Calls,
				w.Verdict, w.Approach1.Calls, w.Approach2.Calls)
		}
	}
	if got.Decision.Verdict != want.Decision.Verdict {
		t.Errorf("decision %s from the summary, %s from the records", got.Decision.Verdict, want.Decision.Verdict)
	}
}

func TestValidate(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no start":      {},
		"stage 120":     {Start: monday, Stages: map[backends.Op][]StageAt{backends.OpPush: {{At: monday, Stage: 120}}}},
		"unknown op":    {Start: monday, Ops: map[backends.Op]OpModel{"frobnicate": {Weight: 1, Median: time.Millisecond}}},
		"shadow rate 2": {Start: monday, ShadowRate: 2},
		"bad backend":   {Start: monday, Mods: []Mod{{Backend: "approach3"}}},
	} {
		if err := Each(cfg, func(canary.Entry) error { return nil }); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
