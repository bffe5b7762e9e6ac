package canary

import (
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

func calls(routed backends.Name, n, failEvery int, ms float64, at time.Time) []Entry {
	var out []Entry
	for i := range n {
		e := Entry{At: at, Kind: KindCall, Op: backends.OpStatus, Routed: routed, Duration: time.Duration(ms * float64(time.Millisecond))}
		if failEvery > 0 && i%failEvery == 0 {
			e.Category = backends.Unavailable
		}
		out = append(out, e)
	}
	return out
}

func TestAnalyze(t *testing.T) {
	since := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	in := since.Add(time.Minute)
	old := append(calls("approach2", 500, 2, 10, since.Add(-time.Hour)), calls("approach1", 900, 0, 10, in)...) // before the stage: ignored
	good := append(old, calls("approach2", 200, 0, 12, in)...)
	if a := Analyze(good, "status", since, Thresholds{}); !a.Pass || a.A2.Calls != 200 {
		t.Fatalf("a healthy stage did not pass: %+v", a)
	}
	cases := map[string][]Entry{
		"only 50 approach2 calls":    append(old, calls("approach2", 50, 0, 10, in)...),
		"error rate 10.0% > 5.0%":    append(old, calls("approach2", 200, 10, 10, in)...),
		"P95 3s > 2s":                append(old, calls("approach2", 200, 0, 3000, in)...),
		"more than 1.5x approach1's": append(old, calls("approach2", 200, 0, 20, in)...),
	}
	for want, entries := range cases {
		a := Analyze(entries, "status", since, Thresholds{})
		if a.Pass || !strings.Contains(strings.Join(a.Failures, "; "), want) {
			t.Errorf("want a failure mentioning %q, got %+v", want, a.Failures)
		}
	}
	fallbacks := append(old, calls("approach2", 200, 0, 10, in)...)
	for i := range 20 {
		fallbacks[len(fallbacks)-1-i].FellBack = true
	}
	if a := Analyze(fallbacks, "status", since, Thresholds{}); a.Pass {
		t.Error("fallbacks did not count against approach2")
	}
	mismatches := append(old, calls("approach2", 200, 0, 10, in)...)
	for i := range 100 {
		outcome := OutcomeMatch
		if i%20 == 0 {
			outcome = "mismatch" // 5 of 100
		}
		mismatches = append(mismatches, Entry{At: in, Kind: "comparison", Op: "status", Outcome: outcome},
			Entry{At: in, Kind: "comparison", Op: "status", Outcome: "stale"})
	}
	a := Analyze(mismatches, "status", since, Thresholds{})
	if a.Pass || a.Shadow.Compared != 100 || a.Shadow.Stale != 100 || !strings.Contains(strings.Join(a.Failures, "; "), "mismatch rate 5.0% (5 of 100)") {
		t.Errorf("mismatches: %+v", a)
	}
	mistakes := append(old, calls("approach2", 200, 0, 10, in)...)
	for i := range 100 {
		mistakes[len(mistakes)-1-i].Category = "invalid_argument"
	}
	if a := Analyze(mistakes, "status", since, Thresholds{}); !a.Pass {
		t.Errorf("client mistakes counted against approach2: %v", a.Failures)
	}
}

func TestNextStage(t *testing.T) {
	for cur, want := range map[int]int{0: 10, 10: 50, 50: 100, 25: 50} {
		if got, ok := NextStage(cur); !ok || got != want {
			t.Errorf("after %d: %d %v", cur, got, ok)
		}
	}
	if _, ok := NextStage(100); ok {
		t.Error("a stage after 100%")
	}
}
