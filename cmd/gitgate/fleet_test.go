package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway/admin"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"google.golang.org/grpc"
)

// fleetOptions shape a fleet; the zero value is the default fleet.
type fleetOptions struct {
	gateways int // default fleetDefaultGateways
	// stale are the indices of gateways that follow a flag sync source of
	// their own, serving a copy of the flag file (as it was at the start)
	// that never changes: gateways that do not see the fleet's changes.
	stale []int
	// faultyGit: every gateway's git.path is a wrapper script around the
	// real git that fails while fleet.approach1Fault is on (the service's
	// git is the real one).
	faultyGit bool
	agents    int // the steady load's agents: default fleetDefaultAgents; negative: no load
	// tune adjusts every gateway's configuration before it starts, after
	// the fleet's own settings.
	tune []func(*configs.Config)
}

// fleet is a fleet on loopback: gateways following one flag source (a
// flags.SyncServer serving flagPath, as `gitgate flags serve` does), one
// Approach 2 service (a `gitgate backend` child), sharing Redis (one
// prefix), the PostgreSQL journal, the sandbox directory and one canary
// ledger (in PostgreSQL, ledgerDSN), every operation routed at 50 %
// (shadow 0), and agents running a steady load through the gateways.
type fleet struct {
	t        *testing.T
	flagPath string // the flag source's file
	syncAddr string // where the flag source serves it
	// gateways each have mcpURL, adminURL and app; their admin token is
	// testAdminToken (changing the override without it is refused). The
	// first also holds the remote (repoURL, remoteGit) and the service's
	// logs.
	gateways []*world
	// staleFlagPath is the copy the stale gateways' source serves ("" when
	// there are none).
	staleFlagPath string
	// serviceMetricsURL is the Approach 2 service's /metrics (its admin
	// listener).
	serviceMetricsURL string
	serviceAddr       string // the service's gRPC address
	ledgerDSN         string // the gateways' canary ledger (PostgreSQL)
	load              *fleetLoad
	// faultMarker is the file whose existence makes the gateways' git
	// fail ("" without faultyGit).
	faultMarker string
}

// A default fleet's size.
const (
	fleetDefaultGateways = 3
	fleetDefaultAgents   = 3 // one per gateway: enough to reach both backends on each, and little CPU under -race
)

// fleetRoute is the share of every operation on Approach 2 in a fleet's
// flags, in percent.
const fleetRoute = 50

// newFleet starts a fleet shaped by o and returns once every gateway
// follows its flag source and the load (if any) has started.
func newFleet(t *testing.T, o fleetOptions) *fleet {
	t.Helper()
	if o.gateways == 0 {
		o.gateways = fleetDefaultGateways
	}
	if o.agents == 0 {
		o.agents = fleetDefaultAgents
	}
	for _, i := range o.stale {
		if i < 0 || i >= o.gateways {
			t.Fatalf("fleetOptions.stale: %d is not a gateway of %d", i, o.gateways)
		}
	}
	began := time.Now()
	f := &fleet{t: t}
	dir := t.TempDir()

	// The first gateway's world holds the remote and runs the service.
	first := newWorld(t)
	first.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	first.sharedSandboxes = t.TempDir()
	first.lockTTL = "10s" // the default lease: a loaded machine cannot renew the tests' 4 s in time
	first.cfg = first.config(t)
	f.serviceAddr = freeAddr(t)
	serviceAdmin := freeAddr(t)
	first.startBackendOn(t, f.serviceAddr, serviceAdmin)
	f.serviceMetricsURL = "http://" + serviceAdmin + "/metrics"
	f.ledgerDSN = backendtest.PostgresDSN(t)

	flagFile := flags.NewFile(backends.OpNames())
	for _, op := range backends.OpNames() {
		if err := flagFile.SetRoute(op, fleetRoute); err != nil {
			t.Fatal(err)
		}
	}
	f.flagPath = filepath.Join(dir, "flags.json")
	if err := flagFile.Save(f.flagPath); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(first.logs, nil))
	f.syncAddr = serveFlagSource(t, f.flagPath, log)
	staleAddr := ""
	if len(o.stale) > 0 {
		f.staleFlagPath = filepath.Join(dir, "stale-flags.json")
		if err := flagFile.Save(f.staleFlagPath); err != nil {
			t.Fatal(err)
		}
		staleAddr = serveFlagSource(t, f.staleFlagPath, log)
	}
	if o.faultyGit {
		f.faultMarker = filepath.Join(dir, "approach1-git-fault")
	}
	gitPath := f.gitWrapper(dir)

	for i := range o.gateways {
		w := first
		if i > 0 {
			w = &world{t: t, remote: first.remote, remoteRoot: first.remoteRoot, repoURL: first.repoURL, logs: &testkit.SyncBuffer{},
				redisPrefix: first.redisPrefix, lockTTL: first.lockTTL, pgDSN: first.pgDSN, sharedSandboxes: first.sharedSandboxes}
			w.cfg = w.config(t)
			t.Cleanup(w.scanForSecrets)
		}
		source := f.syncAddr
		if slices.Contains(o.stale, i) {
			source = staleAddr
		}
		own := t.TempDir()
		c := w.cfg
		c.Flags.Path, c.Flags.SyncAddr = "", source
		c.Flags.OverridePath = filepath.Join(own, "override.json")
		c.Canary.LedgerDSN = f.ledgerDSN
		c.Redis.Addr, c.Redis.Prefix = "127.0.0.1:6379", w.redisPrefix
		c.Approach2.Target, c.Approach2.Token, c.Approach2.Insecure = f.serviceAddr, serviceToken, true
		c.Canary.ShadowBudget = testkit.Patience
		c.MCP.MaxSessionsPerAgent = max(o.agents, 0) + 8 // the agents share one identity (ada)
		if gitPath != "" {
			c.Git.Path = gitPath
		}
		withAdminToken(c)
		// A drill must find the stage as it left it: no gateway rolls an
		// operation back on its own because the load made one backend
		// look slower for a while.
		noAutomaticRollback(c)
		for _, tune := range o.tune {
			tune(c)
		}
		w.startHTTP(t)
		f.gateways = append(f.gateways, w)
	}
	for i := range f.gateways {
		testkit.EventuallyNil(t, fmt.Sprintf("gateway %d follows its flag source at %d %%", i, fleetRoute), func() error {
			return f.following(i, fleetRoute)
		})
	}
	if o.agents > 0 {
		f.load = startFleetLoad(t, f.gateways, first.repoURL, o.agents)
	}
	t.Logf("fleet of %d gateways (stale %v, faulty git %v, %d agents) started in %s", o.gateways, o.stale, o.faultyGit,
		max(o.agents, 0), time.Since(began).Round(time.Millisecond))
	return f
}

// serveFlagSource serves the flag file at path as a flagd sync source on
// loopback, as `gitgate flags serve` does, until the test ends, and
// returns its address.
func serveFlagSource(t *testing.T, path string, log *slog.Logger) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := flags.NewSyncServer(path, backends.OpNames(), log)
	g := grpc.NewServer()
	srv.Register(g)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan struct{}, 2)
	go func() { srv.Watch(ctx, 250*time.Millisecond); done <- struct{}{} }()
	go func() { _ = g.Serve(ln); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		g.Stop() // the streams are endless: a graceful stop would wait for ever
		<-done
		<-done
	})
	return ln.Addr().String()
}

// gitWrapper writes the gateways' git when the fleet has a fault marker:
// a script that fails every command while the marker exists and runs the
// real git otherwise. It returns its path, or "" (the gateways' default
// git) without a marker.
func (f *fleet) gitWrapper(dir string) string {
	if f.faultMarker == "" {
		return ""
	}
	real, err := exec.LookPath("git")
	if err != nil {
		f.t.Fatal(err)
	}
	if real, err = filepath.Abs(real); err != nil {
		f.t.Fatal(err)
	}
	path := filepath.Join(dir, "approach1-git")
	script := fmt.Sprintf("#!/bin/sh\nif [ -e %q ]; then\n  echo %q >&2\n  exit 1\nfi\nexec %q \"$@\"\n",
		f.faultMarker, fleetGitFault, real)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil { //nolint:gosec // an executable script
		f.t.Fatal(err)
	}
	return path
}

// fleetGitFault is what the gateways' git says while approach1Fault is on.
const fleetGitFault = "fatal: fleet fixture: approach1 git fault injected"

// approach1Fault turns the gateways' git (Approach 1's) failing on or off;
// the service's git is not affected. The fleet needs faultyGit.
func (f *fleet) approach1Fault(on bool) {
	f.t.Helper()
	if f.faultMarker == "" {
		f.t.Fatal("approach1Fault: the fleet was started without faultyGit")
	}
	if on {
		if err := os.WriteFile(f.faultMarker, nil, 0o600); err != nil {
			f.t.Fatal(err)
		}
		return
	}
	if err := os.Remove(f.faultMarker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		f.t.Fatal(err)
	}
}

// stopGateway stops gateway i as its shutdown does: its MCP and admin
// listeners closed (the admin listener stops answering), its ledger's
// last entries written. Its agents' next calls fail and they stop.
func (f *fleet) stopGateway(i int) {
	f.t.Helper()
	f.gateways[i].stopHTTP()
}

// adminURLs are the gateways' admin listeners, in order.
func (f *fleet) adminURLs() []string {
	var out []string
	for _, w := range f.gateways {
		out = append(out, w.adminURL)
	}
	return out
}

// status reads gateway i's GET /status.
func (f *fleet) status(i int) (admin.Status, error) {
	ctx, cancel := context.WithTimeout(f.t.Context(), 10*time.Second)
	defer cancel()
	return admin.NewClient(f.gateways[i].adminURL, "").Status(ctx)
}

// following says why gateway i does not apply its sync source with every
// operation routed at route % (configured and effective) and the kill
// switch off, or nil when it does.
func (f *fleet) following(i, route int) error {
	st, err := f.status(i)
	if err != nil {
		return err
	}
	if st.Source != "sync" || st.FailSafe != "" || st.Kill.Effective {
		return fmt.Errorf("source %q, fail safe %q, kill switch effective %v", st.Source, st.FailSafe, st.Kill.Effective)
	}
	want := float64(route) / 100
	for _, op := range backends.OpNames() {
		o, ok := opOf(st, op)
		if !ok || o.Route.Configured != want || o.Route.Effective != want {
			return fmt.Errorf("%s: %+v, want %v configured and effective", op, o, want)
		}
	}
	return nil
}

// opOf is op's routing in st.
func opOf(st admin.Status, op string) (flags.OpStatus, bool) {
	for _, o := range st.Ops {
		if o.Op == op {
			return o, true
		}
	}
	return flags.OpStatus{}, false
}

// TestFleetFixture: the fleet the drill's tests run on works as they
// assume. Its load reaches both backends; every gateway applies the sync
// source at 50 %; with Approach 1's git failing, the calls Approach 1
// serves fail and Approach 2's succeed, until the fault heals; a stale
// gateway does not see an edit of the fleet's flag file; a stopped
// gateway's admin listener stops answering.
func TestFleetFixture(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of gateways and a service")
	}
	t.Parallel()
	f := newFleet(t, fleetOptions{faultyGit: true})
	began := time.Now()
	gitOps := []string{string(backends.OpStatus), string(backends.OpCommit), string(backends.OpLog)}
	testkit.Eventually(t, "every agent's git operations succeed and the load reaches both backends", func() bool {
		done := map[[2]string]bool{}
		for _, c := range f.load.calls() {
			if !c.failed() && slices.Contains(gitOps, c.tool) {
				done[[2]string{c.workspace, c.tool}] = true
			}
		}
		s := f.load.served()
		return len(done) == fleetDefaultAgents*len(gitOps) && s[backends.Approach1.String()] >= 20 && s[backends.Approach2.String()] >= 20
	})
	for i := range f.gateways {
		if err := f.following(i, fleetRoute); err != nil {
			t.Errorf("gateway %d: %v", i, err)
		}
	}
	healthy := time.Now()
	// The routing of each workspace's operation, as the healthy load saw
	// it (sticky: one backend per workspace and operation at a stage).
	routed := map[[2]string]string{}
	for _, c := range f.load.calls() {
		if !c.failed() {
			routed[[2]string{c.workspace, c.tool}] = c.backend
		}
	}
	for _, c := range f.load.failures(time.Time{}, healthy) {
		if c.tool == string(backends.OpClone) { // under load a clone may end with an unknown outcome, which its retry resolves
			t.Logf("a clone of the healthy load failed: %v", c)
			continue
		}
		t.Errorf("a call of the healthy load failed: %v", c)
	}
	// The override cannot be changed without the admin token.
	for i, u := range f.adminURLs() {
		if err := admin.NewClient(u, "").SetKillOverride(t.Context(), "fleet", "no token"); err == nil {
			t.Errorf("gateway %d: the kill override was set without the admin token", i)
		}
	}
	n := len(f.load.calls())
	rate := float64(n) / healthy.Sub(began).Seconds()
	t.Logf("healthy load: %d calls in %s since the fleet started (%.1f calls/s), served %v", n,
		healthy.Sub(began).Round(time.Millisecond), rate, f.load.served())

	// Approach 1's git fails: git operations Approach 1 serves fail, those
	// Approach 2 serves succeed.
	f.approach1Fault(true)
	faulted := time.Now()
	isGit := func(c fleetCall) bool { return slices.Contains(gitOps, c.tool) }
	testkit.Eventually(t, "git calls fail on approach1 and succeed on approach2 under the fault", func() bool {
		var failedA1, servedA2 int
		for _, c := range f.load.within(faulted, time.Time{}, isGit) {
			switch {
			case c.failed() && routed[[2]string{c.workspace, c.tool}] == backends.Approach1.String():
				failedA1++
			case c.backend == backends.Approach2.String():
				servedA2++
			}
		}
		return failedA1 >= 6 && servedA2 >= 6
	})
	f.approach1Fault(false)
	healed := time.Now()
	for _, c := range f.load.within(faulted, healed, isGit) {
		was := routed[[2]string{c.workspace, c.tool}]
		switch {
		case c.backend == backends.Approach1.String():
			t.Errorf("under the fault approach1 served a git call: %v", c)
		case c.failed() && was != backends.Approach1.String():
			t.Errorf("under the fault a call routed to %q failed: %v", was, c)
		case c.failed() && !strings.Contains(c.err, "approach1 git fault"):
			t.Logf("a call failed under the fault without the wrapper's message: %v", c)
		}
	}
	// Healed: Approach 1 serves git calls again, and they succeed.
	testkit.Eventually(t, "approach1 serves git calls again after the fault", func() bool {
		return len(f.load.within(healed, time.Time{}, func(c fleetCall) bool {
			return isGit(c) && c.backend == backends.Approach1.String()
		})) >= 6
	})
	settled := time.Now()
	testkit.Eventually(t, "the healed load runs a while", func() bool {
		return len(f.load.within(settled, time.Time{}, func(fleetCall) bool { return true })) >= 30
	})
	if fails := f.load.failures(settled, time.Time{}); len(fails) > 0 {
		t.Errorf("%d calls failed after the fault healed, the first: %v", len(fails), fails[0])
	}
	t.Logf("under the fault (%s): %d calls failed, %d served by approach2", healed.Sub(faulted).Round(time.Millisecond),
		len(f.load.failures(faulted, healed)), len(f.load.onApproach2(faulted, healed)))

	// A stopped gateway's admin listener stops answering; the others keep
	// following.
	f.stopGateway(2)
	if _, err := f.status(2); err == nil {
		t.Error("the stopped gateway's admin listener still answers")
	}
	if err := f.following(0, fleetRoute); err != nil {
		t.Errorf("gateway 0 after gateway 2 stopped: %v", err)
	}
	f.load.stop()
	stopped := time.Now()
	steady := len(f.load.within(settled, stopped, func(fleetCall) bool { return true }))
	t.Logf("steady load after the fault: %d calls in %s (%.1f calls/s); agents ended early: %v", steady,
		stopped.Sub(settled).Round(time.Millisecond), float64(steady)/stopped.Sub(settled).Seconds(), f.load.endedEarly())
	for _, c := range f.load.failures(settled, time.Time{}) {
		if c.gateway != 2 {
			t.Errorf("a call through a running gateway failed: %v", c)
		}
	}
	if len(f.adminURLs()) != fleetDefaultGateways {
		t.Errorf("adminURLs: %v", f.adminURLs())
	}

	// A stale gateway does not see an edit of the fleet's flag file.
	stale := newFleet(t, fleetOptions{gateways: 2, stale: []int{1}, agents: -1})
	staleBytes, err := os.ReadFile(stale.staleFlagPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "canary", "set", "status", "0", "--file", stale.flagPath, "--by", "fleet", "--reason", "stale test"); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyNil(t, "gateway 0 applies status at 0 %", func() error {
		st, err := stale.status(0)
		if err != nil {
			return err
		}
		if o, _ := opOf(st, string(backends.OpStatus)); o.Route.Effective != 0 {
			return fmt.Errorf("status: %+v", o)
		}
		return nil
	})
	if err := stale.following(1, fleetRoute); err != nil {
		t.Errorf("the stale gateway after the edit: %v", err)
	}
	if after, _ := os.ReadFile(stale.staleFlagPath); string(after) != string(staleBytes) {
		t.Error("the stale copy changed")
	}
}
