package main

import (
	"os"
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

// TestAdminDrillMarkAndForcedBreaker: on a running gateway, the drill mark
// set through the admin listener stamps the ledger's calls and its clear
// records the drill's window there; a breaker forced open keeps an
// operation routed to Approach 2 off it (served by Approach 1, no error)
// and the force and release are in the change log; /status shows the
// flags' revision, the traffic, the mark and the force.
func TestAdminDrillMarkAndForcedBreaker(t *testing.T) {
	const adminToken = "adm-drill-mark-cmd-token"
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute(string(backends.OpStatus), 100)
	w, flagPath, _ := newCanaryWorld(t, f, func(c *configs.Config) { c.Listen.AdminTokenSHA256 = gateway.HashToken(adminToken) })
	ctx := t.Context()
	ac := admin.NewClient(w.adminURL, adminToken)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "d", "url": w.repoURL})
	status := func() admin.Status {
		st, err := ac.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	testkit.Eventually(t, "a status call reaches approach2", func() bool {
		before := status().Traffic.Approach2Sent
		w.ok(t, c, "status", map[string]any{"workspace": "d"})
		return status().Traffic.Approach2Sent > before
	})

	if err := ac.SetDrill(ctx, admin.DrillMarkRequest{ID: "drill-cmd", By: "oncall", Reason: "weekly drill", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := ac.ForceBreaker(ctx, backends.OpStatus, "oncall", "weekly drill", time.Hour); err != nil {
		t.Fatal(err)
	}
	before := status().Traffic
	w.ok(t, c, "status", map[string]any{"workspace": "d"})
	st := status()
	if st.Traffic.Approach2Sent != before.Approach2Sent || st.Traffic.Calls != before.Calls+1 || st.Traffic.Failed != 0 {
		t.Fatalf("traffic before %+v, after a forced call %+v", before, st.Traffic)
	}
	data, err := os.ReadFile(flagPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != flags.Revision(data) || st.Drill == nil || st.Drill.ID != "drill-cmd" ||
		st.Breakers[string(backends.OpStatus)] != "forced-open" || st.BreakersForced[string(backends.OpStatus)].By != "oncall" {
		t.Fatalf("status during the drill: revision %q (file %q), drill %+v, breakers %v %v", st.Revision, flags.Revision(data),
			st.Drill, st.Breakers[string(backends.OpStatus)], st.BreakersForced)
	}
	if err := ac.ReleaseBreaker(ctx, backends.OpStatus, "oncall", "weekly drill over"); err != nil {
		t.Fatal(err)
	}
	if err := ac.ClearDrill(ctx, "drill-cmd", gateway.DrillPass, "test"); err != nil {
		t.Fatal(err)
	}
	w.ok(t, c, "status", map[string]any{"workspace": "d"})
	w.stopHTTP() // the ledger's last entries are written

	entries, err := canary.ReadFile(canary.LedgerPath(flagPath), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var marked, fellBack, windows int
	for _, e := range entries {
		switch {
		case e.Kind == canary.KindDrill:
			windows++
			if e.Drill != "drill-cmd" || e.Detail != "pass: test" || e.Duration <= 0 {
				t.Errorf("drill window %+v", e)
			}
		case e.Kind == canary.KindCall && e.Drill == "drill-cmd":
			marked++
			if e.FellBack {
				fellBack++
			}
		}
	}
	if windows != 1 || marked != 1 || fellBack != 1 {
		t.Fatalf("ledger: %d drill windows, %d calls marked (%d fell back) among %d entries", windows, marked, fellBack, len(entries))
	}
	changes, err := flags.ReadChanges(flags.ChangeLogPath(flagPath))
	if err != nil {
		t.Fatal(err)
	}
	var forced, released bool
	for _, ch := range changes {
		if ch.Kind == flags.ChangeBreaker && ch.Op == string(backends.OpStatus) {
			forced = forced || ch.To == "forced open"
			released = released || ch.To == "auto"
		}
	}
	if !forced || !released {
		t.Fatalf("change log %+v", changes)
	}
}
