package drill

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

// inOrder fails the test unless each of parts appears in s after the one
// before it.
func inOrder(t *testing.T, s string, parts ...string) {
	t.Helper()
	at := 0
	for _, p := range parts {
		i := strings.Index(s[at:], p)
		if i < 0 {
			t.Fatalf("%q missing (or out of order) after byte %d in:\n%s", p, at, s)
		}
		at += i + len(p)
	}
}

func TestMarkdownPutsTheVerdictFirstAndEveryFigureInItsPlace(t *testing.T) {
	r := fixtureRun(fixtureStart, Fail)
	md := Markdown(r)
	t.Log("\n" + md)
	inOrder(t, md,
		"# gitgate drill 20261201T100307Z: FAIL\n\n",
		"- gw-3 never applied the kill switch (admin listener: connection refused)\n",
		"- gw-2: 1 call reached approach2 after the flip\n",
		"Started 2026-12-01T10:03:07Z, took 42s, by oncall@example (weekly drill). Flag source: /var/lib/gitgate/flags.flagd.json at revision sha256:0123abcd.",
		"## Gateways",
		"| gateway | following flag source | flip via flag source | flip via override | restore | first probe on approach1 | calls | failed | residual | probes on approach2 |",
		"| gw-1 | yes | 182 ms | 12 ms | 240 ms | 201 ms | 340 | 0 | 0 | 0 of 12 |",
		"| gw-2 | yes | 611 ms | 4.5 ms | 590 ms | — | 310 | 2 | 1 | 1 of 12 (1 failed) |",
		"| gw-3 | **no** | — | — | — | — | 0 | 0 | 0 | — |\n\n- gw-3: admin listener: connection refused\n\n## Breaker",
		"Passed: push forced open on every gateway; probes on workspace drill/ws-7: 10, 10 fell back to approach1, 0 failed; 0 agents' calls failed meanwhile; released: yes.",
		"## Restore",
		"Flag source byte-identical: yes. Gateways back to their state before: ",
		"**no**.\n\n- gw-3: kill switch override still set\n\n## Approach 2 services",
		"| http://127.0.0.1:7431/metrics | 0 | — |",
		"## Notes",
		"- gw-2 answered its admin listener slowly (1.2 s)",
		"Limits: time to effect 1000 ms, hold 5000 ms, stop above 5 % agents' errors (from 20 calls).",
	)
	// One screen: an on-call engineer reads it without scrolling.
	if n := strings.Count(md, "\n"); n > 45 {
		t.Errorf("%d lines: more than a screen", n)
	}
}

func TestMarkdownOfARunWithoutFigures(t *testing.T) {
	r := Result{ID: "20261201T100307Z", Start: fixtureStart, Verdict: Refused,
		Reasons:  []string{"gw-1 | unhealthy:\nsandbox provider down"},
		Gateways: []GatewayResult{{Name: "gw|1"}}}
	md := Markdown(r)
	inOrder(t, md,
		"# gitgate drill 20261201T100307Z: REFUSED\n\n- gw-1 \\| unhealthy:; sandbox provider down\n",
		"took —, by — (—).",
		"| gw\\|1 | **no** | — | — | — | — | 0 | 0 | 0 | — |",
		"## Breaker\n\nDid not run.",
		"Limits: time to effect 0.0 ms",
	)
	for _, absent := range []string{"## Notes", "## Approach 2 services", "Flag source:"} {
		if strings.Contains(md, absent) {
			t.Errorf("%q printed for a run without it:\n%s", absent, md)
		}
	}
	failed := fixtureRun(fixtureStart, Fail)
	failed.Breaker = &BreakerCheck{Op: "commit", Probes: 4, Failures: 4, AgentFailures: 3}
	inOrder(t, Markdown(failed), "**Failed**: commit forced open on every gateway; probes on workspace —: 4, 0 fell back to approach1, 4 failed; 3 agents' calls failed meanwhile; released: **no**.")
}

func TestHistoryTable(t *testing.T) {
	pass := fixtureRun(fixtureStart.Add(7*24*time.Hour), Pass)
	pass.Gateways = pass.Gateways[:2]
	fail := fixtureRun(fixtureStart, Fail)
	fail.Reasons[0] = strings.Repeat("a very long reason ", 10)
	refused := Result{ID: "20261124T100000Z", Verdict: Refused, Reasons: []string{"another drill is running"}}
	var b bytes.Buffer
	if err := HistoryTable(&b, []Result{pass, fail, refused}); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want a header and 3 runs", len(lines))
	}
	cols := regexp.MustCompile(`\s{2,}`)
	want := [][]string{
		{"ID", "VERDICT", "START", "DURATION", "SLOWEST FLIP", "FAILED CALLS", "RESIDUAL", "REASON"},
		{"20261208T100307Z", "pass", "2026-12-08 10:03Z", "42s", "611 ms (gw-2)", "2", "1", "—"},
		{"20261201T100307Z", "fail", "2026-12-01 10:03Z", "42s", "never (gw-3)", "2", "1", strings.TrimSpace(strings.Repeat("a very long reason ", 6)[:99]) + "…"},
		{"20261124T100000Z", "refused", "—", "—", "—", "0", "0", "another drill is running"},
	}
	for i, line := range lines {
		got := cols.Split(strings.TrimSpace(line), -1)
		if strings.Join(got, "|") != strings.Join(want[i], "|") {
			t.Errorf("line %d:\n got %q\nwant %q", i, got, want[i])
		}
	}
}
