package canary

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestEntryLineDrill: a drill's mark is written as "drill", after
// "detail", only when set, and reads back.
func TestEntryLineDrill(t *testing.T) {
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		e    Entry
		want string
	}{
		{Entry{At: at, Kind: KindDrill, Duration: 90 * time.Second, Drill: "d-1", Detail: "pass: 3 gateways", Stage: -1},
			`{"at":"2026-12-06T03:00:00Z","kind":"drill","op":"","duration_ms":90000,"detail":"pass: 3 gateways","drill":"d-1"}`},
		{Entry{At: at, Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach2, Backend: backends.Approach1, FellBack: true,
			Category: backends.Unavailable, Stage: 50, Drill: "d-1"},
			`{"at":"2026-12-06T03:00:00Z","kind":"call","op":"push","routed":"approach2","backend":"approach1","fell_back":true,"category":"unavailable","stage":50,"drill":"d-1"}`},
	} {
		got, err := json.Marshal(c.e)
		if err != nil || string(got) != c.want {
			t.Fatalf("line %s (%v)\nwant %s", got, err, c.want)
		}
		var back Entry
		if err := json.Unmarshal(got, &back); err != nil || back != c.e {
			t.Fatalf("read back %+v (%v), want %+v", back, err, c.e)
		}
	}
}

// TestKeyOfDrill: a drill's calls and comparisons go to StageDrill cells,
// its own records to one cell per hour beside the rollbacks', and
// Baselines never takes a drill's Approach 1 calls.
func TestKeyOfDrill(t *testing.T) {
	at := time.Date(2026, 12, 6, 3, 20, 0, 0, time.UTC)
	hour := at.Truncate(time.Hour)
	for _, c := range []struct {
		e    Entry
		want Key
	}{
		{Entry{At: at, Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach1, Stage: 50, Drill: "d"}, Key{hour, backends.OpPush, backends.Approach1, StageDrill}},
		{Entry{At: at, Kind: KindComparison, Op: backends.OpPush, Routed: backends.Approach1, Stage: 50, Drill: "d"}, Key{hour, backends.OpPush, backends.Approach1, StageDrill}},
		{Entry{At: at, Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach1, Stage: 50}, Key{hour, backends.OpPush, backends.Approach1, 50}},
		{Entry{At: at, Kind: KindDrill, Drill: "d", Detail: "pass: ok"}, Key{hour, "", "", -1}},
	} {
		if got := KeyOf(c.e); got != c.want {
			t.Errorf("KeyOf(%+v) = %+v, want %+v", c.e, got, c.want)
		}
	}
	es := Entries{
		{At: at, Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach1, Backend: backends.Approach1, Stage: 100, Drill: "d"},
		{At: at, Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach1, Backend: backends.Approach1, Stage: 50},
	}
	from := hour.Add(-time.Hour)
	for _, run := range []*stageRun{{stage: 100, from: from, to: hour, anyStage: true}, {stage: 50, from: from, to: hour, byTime: true}} {
		if run.holds(Key{Hour: hour, Op: backends.OpPush, Routed: backends.Approach1, Stage: StageDrill}) {
			t.Errorf("stage run %+v holds a drill's cell", *run)
		}
	}
	base, err := Baselines(t.Context(), es, hour, hour.Add(time.Hour))
	if err != nil || base[backends.OpPush] == nil || base[backends.OpPush].N != 1 {
		t.Fatalf("baselines %v (%v): want push's one call outside the drill", base, err)
	}
}

// drillLedger is three days of push at the 10 % stage, Approach 2 as good
// as Approach 1, and in the middle half an hour of a drill: the breaker
// forced open, so every Approach 2 call falls back. mark says whether the
// gateways marked the drill's calls.
func drillLedger(mark bool) (Entries, time.Time, time.Time, int64) {
	rng := rand.New(rand.NewPCG(21, 22))
	since := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	until := since.Add(72 * time.Hour)
	drillFrom, drillTo := since.Add(36*time.Hour), since.Add(36*time.Hour+30*time.Minute)
	var es Entries
	var drillCalls int64
	for at := since; at.Before(until); at = at.Add(5 * time.Second) {
		e := drawCall(rng, 0.01, 200*time.Millisecond, 0.4, 0)
		e.At, e.Op, e.Stage, e.InFlight = at, backends.OpPush, 10, 2
		e.Routed, e.Backend = backends.Approach1, backends.Approach1
		if rng.IntN(10) == 0 {
			e.Routed, e.Backend = backends.Approach2, backends.Approach2
		}
		if !at.Before(drillFrom) && at.Before(drillTo) {
			if e.Routed == backends.Approach2 {
				e.Backend, e.FellBack, e.Category = backends.Approach1, true, backends.Unavailable
			}
			// The kill switch would send the rest to Approach 1; the forced
			// breaker alone is enough to look like a regression.
			for range 9 { // a busy half hour: ten fallbacks for each call above
				f := e
				f.Routed, f.Backend, f.FellBack, f.Category = backends.Approach2, backends.Approach1, true, backends.Unavailable
				es = append(es, f)
			}
			if mark {
				for i := len(es) - 9; i < len(es); i++ {
					es[i].Drill = "weekly-1"
				}
				e.Drill = "weekly-1"
			}
			drillCalls += 10
		}
		es = append(es, e)
	}
	for gw := range 3 {
		es = append(es, Entry{At: drillFrom.Add(time.Duration(gw) * time.Second), Kind: KindDrill, Duration: 30 * time.Minute,
			Drill: "weekly-1", Detail: "pass: took effect in 0.3 s", Stage: -1})
	}
	return es, since, until, drillCalls
}

// TestDrillCallsAreNotJudged: a stage whose drill made hundreds of
// Approach 2 calls fall back is judged on its other calls when the drill
// marked them, and rolled back when it did not (so the test can fail).
func TestDrillCallsAreNotJudged(t *testing.T) {
	marked, since, until, drillCalls := drillLedger(true)
	unmarked, _, _, _ := drillLedger(false)
	var daily int64 // the calls the daily chart counts
	judge := func(es Entries) OpReport {
		t.Helper()
		rep, err := BuildReport(t.Context(), es, ReportConfig{Since: since, Until: until, Ops: []backends.Op{backends.OpPush}, Source: "memory"})
		if err != nil {
			t.Fatal(err)
		}
		daily = 0
		for _, days := range rep.Charts.Daily[backends.OpPush] {
			for _, d := range days {
				daily += d.Calls
			}
		}
		return rep.Operations[0]
	}
	o := judge(unmarked)
	if o.Verdict != VerdictRollback || o.DrillCalls != 0 {
		t.Fatalf("unmarked drill: verdict %s (%q), %d drill calls; want rollback: the fallbacks count against approach2", o.Verdict, o.Reasons, o.DrillCalls)
	}
	o = judge(marked)
	t.Logf("marked drill: %s (%q); approach2 %d calls, %d failures", o.Verdict, o.Reasons, o.Approach2.Calls, o.Approach2.Failures)
	if o.Verdict == VerdictRollback || o.DrillCalls != drillCalls || o.Stage != 10 || !o.Since.Equal(since) {
		t.Fatalf("marked drill: verdict %s (%q), %d drill calls (want %d), stage %d since %v (want 10 since %v)",
			o.Verdict, o.Reasons, o.DrillCalls, drillCalls, o.Stage, o.Since, since)
	}
	if n := int64(len(marked)) - 3 - drillCalls; o.Approach1.Calls+o.Approach2.Calls != n || daily != n {
		t.Fatalf("judged %d + %d calls, charted %d, want the %d outside the drill", o.Approach1.Calls, o.Approach2.Calls, daily, n)
	}
}

// TestWatcherIgnoresDrillEntries: the automatic rollback takes no notice
// of a drill's fallbacks, and rolls back on the same calls unmarked.
func TestWatcherIgnoresDrillEntries(t *testing.T) {
	feed := func(drill string) []string {
		a := &applied{reasons: map[string][]string{}}
		r := newWatcher(a)
		c := newClock()
		for i := range 3000 {
			e := call(c.next(), backends.OpPush, 50, backends.Approach1, 10*time.Millisecond, false)
			if i%2 == 1 {
				e.Routed, e.FellBack, e.Category = backends.Approach2, true, backends.Unavailable
				e.Drill = drill
			}
			r.Observe(e)
			cmp := Entry{At: e.At, Kind: KindComparison, Op: backends.OpPush, Stage: 50, Routed: backends.Approach1,
				Backend: backends.Approach2, Outcome: OutcomeMismatch, Detail: "-a\n+b", Drill: drill}
			r.Observe(cmp)
		}
		r.Wait()
		return a.get("push")
	}
	if got := feed("weekly-1"); len(got) != 0 {
		t.Fatalf("the drill's fallbacks and mismatches rolled push back: %q", got)
	}
	if got := feed(""); len(got) != 1 {
		t.Fatalf("the same calls outside a drill: %d rollbacks (%q), want 1", len(got), got)
	}
}

// TestReportShowsADrillOnce: the records three gateways wrote of one
// drill are one timeline event, read from memory, through the file
// ledger's roll-up and through PostgreSQL's; a drill whose gateways
// disagree names each result; every output says how many calls were left
// out.
func TestReportShowsADrillOnce(t *testing.T) {
	es, since, until, drillCalls := drillLedger(true)
	second := since.Add(60 * time.Hour)
	for gw, res := range []string{"pass: took effect in 0.2 s", "fail: gateway c kept routing to approach2", "pass: took effect in 0.4 s"} {
		es = append(es, Entry{At: second.Add(time.Duration(gw) * time.Minute), Kind: KindDrill, Duration: time.Minute, Drill: "weekly-2", Detail: res, Stage: -1})
	}
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	writeLedger(t, path, es)
	file := &FileSource{Path: path, Now: fixedNow(until.Add(time.Hour)), Logger: quiet}
	pg := openPGSource(t, backendtest.PostgresDSN(t), until.Add(time.Hour))
	insertEntries(t, pg, es)
	sources := []struct {
		name string
		src  Source
	}{{"memory", es}, {"file", file}, {"file roll-up", file}, {"postgresql", pg}, {"postgresql roll-up", pg}}
	for _, s := range sources {
		rep, err := BuildReport(t.Context(), s.src, ReportConfig{Since: since, Until: until, Ops: []backends.Op{backends.OpPush}, Source: s.name})
		if err != nil {
			t.Fatal(err)
		}
		var drills []string
		for _, e := range rep.Timeline {
			if e.Kind == EventDrill {
				drills = append(drills, e.What)
			}
		}
		want := []string{"drill weekly-1: pass on 3 gateways",
			"drill weekly-2: pass on 2 gateways, fail on 1 gateway (fail: gateway c kept routing to approach2; pass: took effect in 0.2 s; pass: took effect in 0.4 s)"}
		if fmt.Sprint(drills) != fmt.Sprint(want) {
			t.Fatalf("%s: drill events %q, want %q", s.name, drills, want)
		}
		if len(rep.Drills) != 2 || rep.Drills[0].Gateways != 3 || !rep.Drills[0].Until.Equal(since.Add(36*time.Hour+30*time.Minute+2*time.Second)) ||
			rep.Drills[1].Results["fail"] != 1 || rep.DrillCalls != drillCalls || rep.Operations[0].DrillCalls != drillCalls {
			t.Fatalf("%s: drills %+v, %d drill calls (want %d)", s.name, rep.Drills, rep.DrillCalls, drillCalls)
		}
		if s.name != "postgresql roll-up" {
			continue
		}
		if st := pg.LastRead(); st.RollupCells == 0 {
			t.Fatalf("the second PostgreSQL read did not use the roll-up: %+v", st)
		}
		if st := file.LastRead(); st.RollupCells == 0 {
			t.Fatalf("the second file read did not use the roll-up: %+v", st)
		}
		var md, js, html bytes.Buffer
		if err := rep.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteHTML(&html); err != nil {
			t.Fatal(err)
		}
		note := fmt.Sprintf("Kill-switch drills: 2 in the period (see the timeline). %d calls made during drills were excluded "+
			"from every judgement, baseline, chart and signal (push %d).", drillCalls, drillCalls)
		if !strings.Contains(md.String(), note) || !strings.Contains(html.String(), note) {
			t.Errorf("the Markdown or HTML report does not say %q", note)
		}
		if n := strings.Count(md.String(), "drill weekly-1: pass on 3 gateways"); n != 1 {
			t.Errorf("the Markdown report shows drill weekly-1 %d times, want once", n)
		}
		var back struct {
			Drills     []DrillSeen `json:"drills"`
			DrillCalls int64       `json:"drill_calls"`
			Operations []struct {
				DrillCalls int64 `json:"drill_calls"`
			} `json:"operations"`
		}
		if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Drills) != 2 || back.Drills[0].ID != "weekly-1" ||
			back.DrillCalls != drillCalls || back.Operations[0].DrillCalls != drillCalls {
			t.Errorf("JSON drills %+v, drill_calls %d, operations %+v (%v)", back.Drills, back.DrillCalls, back.Operations, err)
		}
	}
}
