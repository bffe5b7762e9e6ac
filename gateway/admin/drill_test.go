package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/prometheus/client_golang/prometheus"
)

// drillGateway is the admin listener of a gateway with real flags (a
// file), a real router over two counting backends and a drill mark, served
// over loopback HTTP.
type drillGateway struct {
	url      string
	flagPath string
	router   *gateway.Router
	a2Calls  *atomic.Int64
	mark     *gateway.DrillMark
	mu       sync.Mutex
	recorded []canary.Entry
}

const drillToken = "adm-drill-test-token"

func newDrillGateway(t *testing.T) *drillGateway {
	t.Helper()
	g := &drillGateway{a2Calls: &atomic.Int64{}}
	g.flagPath = filepath.Join(t.TempDir(), "flags.json")
	f := flags.NewFile(backends.OpNames())
	for _, op := range backends.OpNames() {
		if err := f.SetRoute(op, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Save(g.flagPath); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	ev, err := flags.Open(t.Context(), flags.Config{Path: g.flagPath, Ops: backends.OpNames(), Domain: t.Name(), Logger: quiet,
		CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ev.Close)
	g.mark = gateway.NewDrillMark(func(e canary.Entry) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.recorded = append(g.recorded, e)
	}, quiet)
	serve := func(calls *atomic.Int64) backends.ExecutorFunc {
		return func(_ context.Context, req backends.Request) (backends.Result, error) {
			if calls != nil {
				calls.Add(1)
			}
			return backends.NewResult(req.Op()), nil
		}
	}
	g.router, err = gateway.NewRouter(gateway.RouterConfig{Backends: map[backends.Name]backends.Executor{
		backends.Approach1: serve(nil), backends.Approach2: serve(g.a2Calls)}, Default: backends.Approach1, Flags: ev,
		Drill: g.mark, Logger: quiet, BreakerChanged: func(c gateway.BreakerChange) { ev.RecordBreaker(string(c.Op), c.Forced, c.By, c.Reason) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{Gatherer: prometheus.NewRegistry(), Ready: ready, Kill: ev, KillTokenSHA256: hashHex(drillToken),
		Drill: g.mark, Breakers: g.router, Status: func(context.Context) Status {
			st := ev.Status()
			tr := g.router.Traffic()
			return Status{Status: &st, Breakers: g.router.BreakerStates(), Traffic: &tr}
		}}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

func (g *drillGateway) windows() []canary.Entry {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]canary.Entry(nil), g.recorded...)
}

// call makes an agent's push call through the router.
func (g *drillGateway) call(t *testing.T) backends.Result {
	t.Helper()
	r := backends.NewRequest(backends.OpPush)
	*r.GetScope() = backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a"}, Workspace: "w"}
	res, err := g.router.Execute(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestDrillMarkOverHTTP: the mark needs the token; a second drill gets a
// conflict naming the holder; the same drill refreshes it; clearing needs
// its id, hands the drill's window over, and a second clear finds none.
// /status shows the mark while it holds.
func TestDrillMarkOverHTTP(t *testing.T) {
	g := newDrillGateway(t)
	ctx := t.Context()
	mark := DrillMarkRequest{ID: "drill-7", By: "oncall", Reason: "weekly drill", TTL: time.Hour}
	if err := NewClient(g.url, "").SetDrill(ctx, mark); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without the token: %v", err)
	}
	c := NewClient(g.url, drillToken)
	if err := c.SetDrill(ctx, mark); err != nil {
		t.Fatal(err)
	}
	var dc *DrillConflict
	err := c.SetDrill(ctx, DrillMarkRequest{ID: "drill-8", By: "someone", Reason: "also weekly", TTL: time.Hour})
	if !errors.As(err, &dc) || dc.Holder.ID != "drill-7" || dc.Holder.By != "oncall" || dc.Holder.Until.IsZero() || dc.Holder.Since.IsZero() {
		t.Fatalf("a second drill: %v (%+v)", err, dc)
	}
	if err := c.SetDrill(ctx, mark); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Drill == nil || st.Drill.ID != "drill-7" || st.Drill.Reason != "weekly drill" {
		t.Fatalf("status during the drill: %+v %v", st.Drill, err)
	}
	if err := c.ClearDrill(ctx, "drill-8", gateway.DrillPass, ""); !errors.As(err, &dc) || dc.Holder.ID != "drill-7" {
		t.Fatalf("clearing with the wrong id: %v", err)
	}
	if err := NewClient(g.url, "").ClearDrill(ctx, "drill-7", gateway.DrillPass, ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("clearing without the token: %v", err)
	}
	if err := c.ClearDrill(ctx, "drill-7", "maybe", ""); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("clearing with an unknown result: %v", err)
	}
	if err := c.ClearDrill(ctx, "drill-7", gateway.DrillFail, "gateway-2 kept routing"); err != nil {
		t.Fatal(err)
	}
	w := g.windows()
	if len(w) != 1 || w[0].Kind != canary.KindDrill || w[0].Drill != "drill-7" || w[0].Detail != "fail: gateway-2 kept routing" || w[0].Duration <= 0 {
		t.Fatalf("recorded %+v", w)
	}
	if err := c.ClearDrill(ctx, "drill-7", gateway.DrillPass, ""); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("clearing twice: %v", err)
	}
	if st, err := c.Status(ctx); err != nil || st.Drill != nil {
		t.Fatalf("status after the drill: %+v %v", st.Drill, err)
	}
}

// TestBreakerOverHTTP: forcing a breaker open needs the token and a known
// operation; while forced, calls fall back to Approach 1 and /status shows
// it; releasing lets them through again; both go to the change log.
func TestBreakerOverHTTP(t *testing.T) {
	g := newDrillGateway(t)
	ctx := t.Context()
	c := NewClient(g.url, drillToken)
	if err := NewClient(g.url, "").ForceBreaker(ctx, backends.OpPush, "oncall", "drill", time.Hour); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without the token: %v", err)
	}
	if err := c.ForceBreaker(ctx, "nonsense", "oncall", "drill", time.Hour); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("an unknown op: %v", err)
	}
	if err := c.ForceBreaker(ctx, backends.OpPush, "oncall", "weekly drill", time.Hour); err != nil {
		t.Fatal(err)
	}
	if res := g.call(t); res.GetServed().Backend != "approach1" || !res.GetServed().FellBack || g.a2Calls.Load() != 0 {
		t.Fatalf("forced: %+v, approach2 calls %d", res.GetServed(), g.a2Calls.Load())
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Breakers["push"] != "forced-open" || st.BreakersForced["push"].By != "oncall" || st.BreakersForced["push"].Reason != "weekly drill" {
		t.Fatalf("status: %v %+v", st.Breakers, st.BreakersForced)
	}
	if st.Traffic == nil || st.Traffic.Calls != 1 || st.Traffic.Approach2Sent != 0 {
		t.Fatalf("traffic %+v", st.Traffic)
	}
	if err := NewClient(g.url, "").ReleaseBreaker(ctx, backends.OpPush, "oncall", "done"); err == nil {
		t.Fatal("released without the token")
	}
	if err := c.ReleaseBreaker(ctx, backends.OpPush, "oncall", "weekly drill over"); err != nil {
		t.Fatal(err)
	}
	if res := g.call(t); res.GetServed().Backend != "approach2" || g.a2Calls.Load() != 1 {
		t.Fatalf("released: %+v", res.GetServed())
	}
	st, err = c.Status(ctx)
	if err != nil || st.Breakers["push"] != "closed" || len(st.BreakersForced) != 0 || st.Traffic.Approach2Sent != 1 || st.Traffic.Approach2LastSent == nil {
		t.Fatalf("status after release: %+v %v", st, err)
	}
	changes, err := flags.ReadChanges(flags.ChangeLogPath(g.flagPath))
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[0].Kind != flags.ChangeBreaker || changes[0].To != "forced open" || changes[1].To != "auto" {
		t.Fatalf("change log %+v", changes)
	}
}

// TestStatusShowsTheDrillFields: /status carries the flags' revision (the
// file's SHA-256), the traffic, the drill and the forced breakers; the
// JSON is logged as an example.
func TestStatusShowsTheDrillFields(t *testing.T) {
	g := newDrillGateway(t)
	ctx := t.Context()
	c := NewClient(g.url, drillToken)
	g.call(t)
	if err := c.SetDrill(ctx, DrillMarkRequest{ID: "drill-9", By: "oncall", Reason: "weekly drill", TTL: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := c.ForceBreaker(ctx, backends.OpPush, "oncall", "weekly drill", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.SetOverride(ctx, flags.Override{Kill: false, By: "oncall", Reason: "put back as it was"}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(g.flagPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != flags.Revision(data) {
		t.Fatalf("revision %q, the file's %q", st.Revision, flags.Revision(data))
	}
	if st.Kill.Override == nil || st.Kill.Override.Kill || st.Kill.Override.By != "oncall" {
		t.Fatalf("override after SetOverride(kill false): %+v", st.Kill.Override)
	}
	if st.Drill == nil || st.Traffic == nil || st.Traffic.Calls != 1 || st.Traffic.Approach2Sent != 1 || len(st.BreakersForced) != 1 {
		t.Fatalf("status %+v", st)
	}
	resp, err := http.Get(g.url + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"flags_revision"`, `"traffic"`, `"approach2_sent"`, `"approach2_last_sent"`, `"drill"`, `"breakers_forced"`, `"forced-open"`} {
		if !strings.Contains(string(raw), key) {
			t.Fatalf("status JSON lacks %s:\n%s", key, raw)
		}
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, raw, "", "  ")
	t.Logf("GET /status:\n%s", pretty.String())
}
