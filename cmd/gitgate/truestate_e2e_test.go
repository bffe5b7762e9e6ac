package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/gateway/admin"
	"github.com/gitgate/gitgate/internal/testkit"
)

// testAdminToken is the admin token of test gateways that change the
// kill-switch override (withAdminToken).
const testAdminToken = "gga_e2e_admin_token_oncall_0123456789"

// withAdminToken configures a gateway's admin token (listen.admin_token_sha256).
func withAdminToken(c *configs.Config) { c.Listen.AdminTokenSHA256 = gateway.HashToken(testAdminToken) }

// adminStatus reads the gateway's GET /status (open without a token).
func adminStatus(t *testing.T, w *world) admin.Status {
	t.Helper()
	code, body := get(t, w.adminURL+"/status")
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.Status == nil {
		t.Fatalf("GET /status: %d %v %s", code, err, body)
	}
	return st
}

func opStatus(t *testing.T, st admin.Status, op string) flags.OpStatus {
	t.Helper()
	for _, o := range st.Ops {
		if o.Op == op {
			return o
		}
	}
	t.Fatalf("/status lacks %s: %+v", op, st.Ops)
	return flags.OpStatus{}
}

// TestTrueStateMatrix: with status routed to Approach 2, in every
// combination of the file's kill switch (off/on), the admin override
// (none/on) and a local automatic rollback (none/applied), the admin
// status, the gauges, `flags show --admin`, `kill` and where real calls
// go agree. `kill off` without --admin while the override is on fails and
// says how to clear it. The rollback also stops status's shadow traffic:
// Approach 2 gets no shadow calls after it.
func TestTrueStateMatrix(t *testing.T) {
	for _, rolledBack := range []bool{false, true} {
		t.Run(fmt.Sprintf("rollback=%v", rolledBack), func(t *testing.T) { trueStateMatrix(t, rolledBack) })
	}
}

func trueStateMatrix(t *testing.T, rolledBack bool) {
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute("status", 100)
	_ = f.SetShadow("status", 1)
	w, flagPath, _ := newCanaryWorld(t, f, withAdminToken, func(c *configs.Config) {
		if rolledBack { // Approach 2 about 100 ms slower than Approach 1, beyond floors of 20 ms or 1 %
			c.Approach2.Target = slowProxy(t, c.Approach2.Target, 100*time.Millisecond)
			c.Canary.Judge.LatencyFloor.Abs, c.Canary.Judge.LatencyFloor.Rel = 20*time.Millisecond, 0.01
		} else {
			noAutomaticRollback(c)
		}
	})
	t.Setenv("GITGATE_ADMIN_TOKEN", testAdminToken)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "ts", "url": w.repoURL})
	served := func() string {
		return fmt.Sprint(w.ok(t, c, "status", map[string]any{"workspace": "ts"})["backend"])
	}
	if got := served(); got != "approach2" {
		t.Fatalf("status at 100%% went to %s", got)
	}
	if rolledBack {
		// Approach 1's calls while the kill switch holds status there are
		// the baseline the 100 % stage is judged against (the judge compares
		// Approach 2 with Approach 1, never with a fixed limit).
		if out, err := run(t, "kill", "on", "--file", flagPath, "--by", "oncall", "--reason", "baseline"); err != nil {
			t.Fatalf("kill on: %v\n%s", err, out)
		}
		testkit.Eventually(t, "calls go to approach1", func() bool { return served() == "approach1" })
		for range 100 {
			if got := served(); got != "approach1" {
				t.Fatalf("with the kill switch on status went to %s", got)
			}
		}
		if out, err := run(t, "kill", "off", "--file", flagPath, "--by", "oncall", "--reason", "baseline taken"); err != nil {
			t.Fatalf("kill off: %v\n%s", err, out)
		}
		testkit.Eventually(t, "the gateway rolls status back on its own", func() bool {
			_ = served()
			_, ok := adminStatus(t, w).AutoRollbacks["status"]
			return ok
		})
		g, err := flags.Load(flagPath)
		if err != nil || g.Route("status") != 0 || g.Shadow("status") != 0 {
			t.Fatalf("after the automatic rollback the file has status at %d%%, shadow %v (%v)", g.Route("status"), g.Shadow("status"), err)
		}
		checkNoShadowOnApproach2(t, w, flagPath, served)
	}

	var overrideOn bool
	for _, tc := range []struct{ fileKill, override bool }{{false, false}, {true, false}, {false, true}, {true, true}, {false, false}} {
		name := fmt.Sprintf("file kill %v, override %v, rollback %v", tc.fileKill, tc.override, rolledBack)
		// The override, through the CLI and the admin listener (which also
		// sets the file's switch; the next step sets the file's own).
		if tc.override != overrideOn {
			onOff := map[bool]string{true: "on", false: "off"}[tc.override]
			out, err := run(t, "kill", onOff, "--file", flagPath, "--by", "oncall", "--reason", "matrix", "--admin", w.adminURL)
			if err != nil {
				t.Fatalf("%s: kill %s --admin: %v\n%s", name, onOff, err, out)
			}
			if want := "kill switch on " + w.adminURL + ": " + map[bool]string{true: "ON", false: "off"}[tc.override]; !strings.Contains(out, want) {
				t.Fatalf("%s: kill %s --admin says\n%s\nwant %q", name, onOff, out, want)
			}
			overrideOn = tc.override
		}
		out, err := run(t, "kill", map[bool]string{true: "on", false: "off"}[tc.fileKill], "--file", flagPath, "--by", "oncall", "--reason", "matrix")
		if !tc.fileKill && tc.override {
			if err == nil || !strings.Contains(err.Error(), "override is ON") || !strings.Contains(err.Error(), "gitgate kill off --admin") {
				t.Fatalf("%s: kill off without --admin while the override is on: %v\n%s", name, err, out)
			}
		} else if err != nil {
			t.Fatalf("%s: kill: %v\n%s", name, err, out)
		}

		killed := tc.fileKill || tc.override
		want := "approach2"
		if killed || rolledBack {
			want = "approach1"
		}
		testkit.Eventually(t, name+": calls go to "+want, func() bool { return served() == want })
		for range 3 {
			if got := served(); got != want {
				t.Fatalf("%s: a call went to %s, want %s", name, got, want)
			}
		}

		// The admin status. Its source is what the flag provider applies,
		// which follows the file within its check interval: the calls
		// above may already go where the override sends them while the
		// provider still applies the file's previous switch.
		var st admin.Status
		source := map[[2]bool]flags.KillSource{{false, false}: flags.KillOff, {true, false}: flags.KillFlags, {false, true}: flags.KillOverride, {true, true}: flags.KillBoth}[[2]bool{tc.fileKill, tc.override}]
		testkit.EventuallyNil(t, name+": /status shows the kill switch", func() error {
			st = adminStatus(t, w)
			if st.Kill.Effective != killed || st.Kill.Flags != tc.fileKill || (st.Kill.Override != nil) != tc.override || st.Kill.Source != source || st.FailSafe != "" {
				return fmt.Errorf("/status kill switch %+v (fail-safe %q), want effective %v from %s", st.Kill, st.FailSafe, killed, source)
			}
			return nil
		})
		if tc.override && (st.Kill.Override.By != "oncall" || st.Kill.Override.Reason != "matrix") {
			t.Fatalf("%s: override %+v", name, st.Kill.Override)
		}
		share := map[string]float64{"approach1": 0, "approach2": 1}[want]
		o := opStatus(t, st, "status")
		configured := map[bool]float64{false: 1, true: 0}[rolledBack]
		if o.Route.Configured != configured || o.Route.Effective != share || o.Shadow.Configured != configured || o.Shadow.Effective != share {
			t.Fatalf("%s: /status for status %+v, want configured %v and effective %v (route and shadow)", name, o, configured, share)
		}
		if _, ok := st.AutoRollbacks["status"]; ok != rolledBack {
			t.Fatalf("%s: automatic rollbacks %v", name, st.AutoRollbacks)
		}
		if st.Breakers["status"] != "closed" || !st.OverrideNeedsToken {
			t.Fatalf("%s: breakers %v, override needs a token: %v", name, st.Breakers, st.OverrideNeedsToken)
		}

		// The gauges.
		_, metrics := get(t, w.adminURL+"/metrics")
		one := map[bool]string{true: "1", false: "0"}
		for _, line := range []string{
			`gitgate_kill_switch{source="effective"} ` + one[killed],
			`gitgate_kill_switch{source="flags"} ` + one[tc.fileKill],
			`gitgate_kill_switch{source="override"} ` + one[tc.override],
			fmt.Sprintf(`gitgate_route_share{backend="approach2",op="status",source="effective"} %g`, share),
			fmt.Sprintf(`gitgate_route_share{backend="approach1",op="status",source="effective"} %g`, 1-share),
			fmt.Sprintf(`gitgate_route_share{backend="approach2",op="status",source="configured"} %g`, configured),
			fmt.Sprintf(`gitgate_shadow_share{op="status",source="effective"} %g`, share),
			`gitgate_flags_usable 1`,
		} {
			if !strings.Contains(metrics, line+"\n") {
				t.Errorf("%s: metrics lack %s", name, line)
			}
		}

		// flags show --admin.
		out, err = run(t, "flags", "show", "--admin", w.adminURL)
		if err != nil {
			t.Fatalf("%s: flags show --admin: %v\n%s", name, err, out)
		}
		if want := "kill switch on " + w.adminURL + ": " + map[bool]string{true: "ON", false: "off"}[killed]; !strings.Contains(out, want) {
			t.Fatalf("%s: flags show --admin says\n%s\nwant %q", name, out, want)
		}
		if hint := "ADMIN OVERRIDE keeps the kill switch ON"; strings.Contains(out, hint) != (tc.override && !tc.fileKill) {
			t.Fatalf("%s: flags show --admin (override hint expected: %v)\n%s", name, tc.override && !tc.fileKill, out)
		}
		if strings.Contains(out, "DIFFERS") != (share != configured) {
			t.Fatalf("%s: flags show --admin should flag a difference only when there is one (%v vs %v)\n%s", name, share, configured, out)
		}
		// flags show of the file mentions the override it does not show.
		out, err = run(t, "flags", "show", "--file", flagPath)
		if err != nil || strings.Contains(out, "override is ON") != tc.override {
			t.Fatalf("%s: flags show --file: %v\n%s", name, err, out)
		}
	}
	if strings.Contains(w.logs.String(), testAdminToken) {
		t.Fatal("the admin token is in the logs")
	}
	// The override's set and clear are in the change log, like file changes.
	changes, err := flags.ReadChanges(flags.ChangeLogPath(flagPath))
	if err != nil {
		t.Fatal(err)
	}
	var set, cleared bool
	for _, ch := range changes {
		set = set || (ch.Kind == flags.ChangeOverride && ch.To == "kill on" && ch.By == "oncall")
		cleared = cleared || (ch.Kind == flags.ChangeOverride && ch.From == "kill on" && ch.To == "none")
	}
	if !set || !cleared {
		t.Fatalf("the change log lacks the override's set (%v) or clear (%v): %+v", set, cleared, changes)
	}
}

// checkNoShadowOnApproach2: after the rollback the gateway shadows none of
// status's calls on Approach 2 (nor anywhere: the shadow share is 0).
func checkNoShadowOnApproach2(t *testing.T, w *world, flagPath string, served func() string) {
	t.Helper()
	testkit.Eventually(t, "the gateway applies the rolled-back file", func() bool {
		d := w.app.flags.Decide(t.Context(), "status", "alpha/ts")
		return d.Backend == flags.Approach1 && d.ShadowRate == 0
	})
	applied := time.Now()
	for range 10 {
		if got := served(); got != "approach1" {
			t.Fatalf("after the rollback status went to %s", got)
		}
	}
	ledger := canary.LedgerPath(flagPath)
	testkit.Eventually(t, "the ledger has the 10 calls after the rollback", func() bool {
		entries, _ := canary.ReadFile(ledger, applied)
		n := 0
		for _, e := range entries {
			if e.Kind == "call" && e.Op == "status" {
				n++
			}
		}
		return n >= 10
	})
	entries, err := canary.ReadFile(ledger, applied)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind == "comparison" && e.Op == "status" {
			t.Fatalf("a shadow of status ran on %s after the rollback: %+v", e.Backend, e)
		}
	}
}

// TestStageClockFromRecords: after `canary rollback all` the next stage of
// an operation counts only the calls after the rollback (not those of the
// rolled-back stage); a shadow change does not restart the stage. The
// rollback also sets the operation's shadow share to 0, recorded as such.
func TestStageClockFromRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := flags.NewFile(backends.OpNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	do := func(args ...string) string {
		t.Helper()
		out, err := run(t, append(args, "--file", path, "--by", "ana", "--reason", "stage clock")...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	do("canary", "set", "status", "10")
	setAt := time.Now()
	time.Sleep(5 * time.Millisecond) // records' times are distinct (not a wait for a condition)
	do("canary", "shadow", "status", "50")
	since, err := flags.ReadStageStart(flags.ChangeLogPath(path), "status")
	if err != nil || since.After(setAt) || since.IsZero() {
		t.Fatalf("after a shadow change the stage starts at %v (set at %v): %v", since, setAt, err)
	}
	// The 10% stage's calls (recorded at their stage, as the router
	// records them): all of them failures on approach2.
	var bad []canary.Entry
	for range 150 {
		bad = append(bad, canary.Entry{At: time.Now().UTC(), Kind: canary.KindCall, Op: "status", Stage: 10, Routed: "approach2", Backend: "approach2", Category: "internal", Duration: 5 * time.Millisecond})
	}
	if err := canary.NewFileStore(path+".ledger.jsonl").Append(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	out := do("canary", "rollback", "all")
	if !strings.Contains(out, "shadow 0%") {
		t.Fatalf("rollback says %q", out)
	}
	g, _ := flags.Load(path)
	if g.Route("status") != 0 || g.Shadow("status") != 0 {
		t.Fatalf("after rollback all status is at %d%% with shadow %v", g.Route("status"), g.Shadow("status"))
	}
	changes, _ := flags.ReadChanges(flags.ChangeLogPath(path))
	var shadowRecord bool
	for _, c := range changes {
		shadowRecord = shadowRecord || (c.Kind == flags.ChangeShadow && c.Op == "status" && c.From == "50%" && c.To == "0%" && strings.Contains(c.Summary, "rolled back"))
	}
	if !shadowRecord {
		t.Fatalf("no record of the rollback's shadow change: %+v", changes)
	}
	// At 0 % without approach2 calls the judge says idle and advancing
	// needs no evidence; the rolled-back stage's 150 calls would make it
	// hold.
	out, err = run(t, "canary", "advance", "status", "--file", path, "--by", "ana", "--reason", "next stage")
	if err != nil || !regexp.MustCompile(`approach2\s+0 calls`).MatchString(out) || !strings.Contains(out, "the 0% stage since") || !strings.Contains(out, ": IDLE\n") {
		t.Fatalf("the stage after rollback all counts the rolled-back stage's calls: %v\n%s", err, out)
	}
}
