package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary/drill"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/jackc/pgx/v5"
)

// drillDriver runs `gitgate drill` (the built binary, as cron would) against
// a fleet, with a configuration naming its gateways, its flag source, its
// service's metrics and the drill agent (ada, through every gateway).
type drillDriver struct {
	f       *fleet
	cfgPath string
	history string
	env     []string
}

// drillTimings are the drill's limits in these tests: short holds, and a
// stop condition that reacts to the fleet's modest load. The time to
// effect is generous: a gateway's flag provider applies a change in about
// a second here, several on a machine busy with other tests, and these
// tests are about what the drill finds and puts back, not how fast (the
// figures are logged). The hold outlasts unreachable_after, so that a
// gateway stopped during the hold aborts the drill.
const drillTimings = `  max_time_to_effect: 10s
  hold: 6s
  unreachable_after: 3s
  max_error_rate: 0.05
  min_calls: 5
`

func newDrillDriver(t *testing.T, f *fleet, extraGateways ...string) *drillDriver {
	t.Helper()
	dir := t.TempDir()
	d := &drillDriver{f: f, cfgPath: filepath.Join(dir, "drill.yaml"), history: filepath.Join(dir, "drills")}
	var gws strings.Builder
	for i, w := range f.gateways {
		fmt.Fprintf(&gws, "    - {name: gw-%d, admin: %q, mcp: %q}\n", i, w.adminURL, w.mcpURL)
	}
	for _, g := range extraGateways {
		gws.WriteString(g)
	}
	yaml := fmt.Sprintf(`state_dir: %q
flags: {path: %q}
agents:
  - {name: ada, project: alpha, token_sha256: %s}
drill:
  gateways:
%s  admin_token_env: E2E_ADMIN_TOKEN
  services: [%q]
  history_dir: %q
%s  probe: {agent: ada, token_env: E2E_DRILL_AGENT_TOKEN, repo: %q, op: status}
`, filepath.Join(dir, "state"), f.flagPath, gateway.HashToken(agentToken), gws.String(), f.serviceMetricsURL, d.history,
		drillTimings, f.gateways[0].repoURL)
	if err := os.WriteFile(d.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d.env = append(os.Environ(), "E2E_ADMIN_TOKEN="+testAdminToken, "E2E_DRILL_AGENT_TOKEN="+agentToken)
	return d
}

// command is `gitgate drill args...` with the driver's configuration.
func (d *drillDriver) command(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, gitgateBinary(t), append([]string{"drill", "--config", d.cfgPath}, args...)...)
	cmd.Env = d.env
	return cmd
}

// run runs a drill to its end and returns its exit code, output and the
// result it kept (the newest in the history).
func (d *drillDriver) run(t *testing.T, args ...string) (code int, out string, res drill.Result) {
	t.Helper()
	cmd := d.command(t.Context(), t, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	out = stdout.String() + stderr.String()
	rs, err := (drill.History{Dir: d.history}).List()
	if err != nil || len(rs) == 0 {
		t.Fatalf("no result kept (%v); the drill said:\n%s", err, out)
	}
	return code, out, rs[0]
}

// routingState is what must be the same before and after a drill: the
// flag file's bytes and every gateway's routing as its /status shows it.
func (d *drillDriver) routingState(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(d.f.flagPath)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.Write(data)
	for i := range d.f.gateways {
		st, err := d.f.status(i)
		if err != nil {
			fmt.Fprintf(&b, "gw-%d: %v\n", i, err)
			continue
		}
		fmt.Fprintf(&b, "gw-%d: kill %+v revision %s failsafe %q drill %v forced %v\n", i, st.Kill, st.Revision, st.FailSafe, st.Drill, st.BreakersForced)
		for _, o := range st.Ops {
			fmt.Fprintf(&b, "  %+v\n", o)
		}
	}
	return b.String()
}

// TestDrillOnAFleet: on three gateways following one flag source, with the
// Approach 2 service on Redis and PostgreSQL, every operation at 50 % and
// agents working, `gitgate drill` passes; each gateway stops routing to
// Approach 2 (the figures are logged: how soon is a timing property, not
// asserted); no agent call fails and none reaches Approach 2 between a
// gateway's switch and the restore; the forced breaker falls back; the
// state afterwards is byte-identical; the ledger, the change log, the
// history and the metrics show the run; a dry run finding the gateways by
// DNS (drill.discover) reaches each of them. Then, on the same fleet: a drill
// killed halfway leaves a state that `gitgate drill --recover` puts back
// (and a new drill refuses until then); Approach 1 failing during a drill
// trips the stop condition, which aborts and restores; an unreachable
// gateway is refused by the preflight with nothing changed.
func TestDrillOnAFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of gateways and a service")
	}
	t.Parallel()
	f := newFleet(t, fleetOptions{faultyGit: true, tune: []func(*configs.Config){allowDrillDiscoveryHost}})
	d := newDrillDriver(t, f)
	testkit.Eventually(t, "the load reaches both backends", func() bool {
		s := f.load.served()
		return s["approach1"] > 10 && s["approach2"] > 10
	})
	before := d.routingState(t)

	// A dry run checks and says what it would do, and changes nothing.
	code, out, res := d.run(t, "--dry-run")
	if code != 0 || res.Verdict != drill.DryRun || !strings.Contains(out, "would set the kill switch") {
		t.Fatalf("dry run: exit %d, verdict %s:\n%s", code, res.Verdict, out)
	}
	if after := d.routingState(t); after != before {
		t.Fatalf("a dry run changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The same gateways found by DNS (drill.discover), as on Kubernetes.
	d.discoveryDryRun(t)

	code, out, res = d.run(t)
	t.Logf("drill:\n%s", out)
	if code != 0 || res.Verdict != drill.Pass {
		t.Fatalf("drill exit %d, verdict %s: %v", code, res.Verdict, res.Reasons)
	}
	if after := d.routingState(t); after != before {
		t.Errorf("the state after the drill differs:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for i, g := range res.Gateways {
		if g.FlipSourceMS == nil || g.FlipOverrideMS == nil || g.RestoreMS == nil || g.KilledAt.IsZero() {
			t.Errorf("gw-%d: figures missing: %+v", i, g)
			continue
		}
		probe := "none"
		if g.ProbeMS != nil {
			probe = fmt.Sprintf("%.1f ms", *g.ProbeMS)
		}
		t.Logf("gw-%d: flip through the flag source %.1f ms, override %.1f ms, restore %.1f ms, first probe on approach1 %s; %d calls, %d failed, %d residual, %d probes",
			i, *g.FlipSourceMS, *g.FlipOverrideMS, *g.RestoreMS, probe, g.Calls, g.FailedCalls, g.ResidualCalls, g.Probes)
		if g.ResidualCalls != 0 || g.ProbesOnApproach2 != 0 || g.Probes == 0 {
			t.Errorf("gw-%d: %d residual calls, %d of %d probes on approach2", i, g.ResidualCalls, g.ProbesOnApproach2, g.Probes)
		}
		// The agents' own record: after the gateway applied the switch
		// and before the restore, nothing it routed reached Approach 2.
		late := f.load.within(g.KilledAt, res.Phases.Restore, func(c fleetCall) bool {
			return c.gateway == i && c.backend == backends.Approach2.String()
		})
		if len(late) > 0 {
			t.Errorf("gw-%d: %d agent calls on approach2 after the switch took effect, first %v", i, len(late), late[0])
		}
	}
	if fails := f.load.failures(res.Start, res.End); len(fails) > 0 {
		t.Errorf("%d agent calls failed during the drill, first: %v", len(fails), fails[0])
	}
	if b := res.Breaker; b == nil || !b.Passed || b.ProbeWorkspace == "" || b.FellBack == 0 || !b.Released {
		t.Errorf("breaker check %+v", res.Breaker)
	}
	if len(res.Services) != 1 || res.Services[0].Received != 0 || res.Services[0].Error != "" {
		t.Errorf("the service's own count while the kill switch was on: %+v", res.Services)
	}
	if !res.Restore.FlagSourceIdentical || !res.Restore.GatewaysRestored {
		t.Errorf("restore check %+v", res.Restore)
	}
	d.checkTraces(t, res)

	// Each gateway's provider applies the restored flags on its own; the
	// next drill's preflight must not find one still applying the switch.
	testkit.EventuallyNil(t, "the state after the drill is the state before", func() error {
		if after := d.routingState(t); after != before {
			return fmt.Errorf("before:\n%s\nafter:\n%s", before, after)
		}
		return nil
	})

	// Stopped halfway (systemd's stop, a pod's eviction): it puts
	// everything back before it exits.
	d.signalHalfway(t, syscall.SIGTERM)
	if rs, _ := (drill.History{Dir: d.history}).List(); len(rs) == 0 || rs[0].Verdict != drill.Aborted ||
		!strings.Contains(strings.Join(rs[0].Reasons, " "), "interrupted by terminated") {
		t.Errorf("a drill stopped by SIGTERM: %+v", rs[0])
	}
	// The drill exits once it has put the flag file and the overrides
	// back; each gateway's provider then reloads the file on its own.
	testkit.EventuallyNil(t, "the state after a drill stopped by SIGTERM is the state before the drill", func() error {
		if after := d.routingState(t); after != before {
			return fmt.Errorf("before:\n%s\nafter:\n%s", before, after)
		}
		return nil
	})

	// Killed halfway (SIGKILL, as a dying machine): the snapshot written
	// before the flip puts it back.
	d.signalHalfway(t, syscall.SIGKILL)
	if data, _ := os.ReadFile(d.f.flagPath); !strings.Contains(string(data), `"defaultVariant": "on"`) {
		t.Fatalf("the drill was killed before its flip:\n%s", data)
	}
	if code, out, res := d.run(t); code != exitDrillRefused || !strings.Contains(out, "--recover") {
		t.Errorf("a drill after an unfinished one: exit %d, verdict %s, output:\n%s", code, res.Verdict, out)
	}
	code, out, res = d.run(t, "--recover")
	if code != 0 || res.Verdict != drill.Recovered {
		t.Fatalf("recover: exit %d %s: %v\n%s", code, res.Verdict, res.Reasons, out)
	}
	testkit.EventuallyNil(t, "the state after --recover is the state before the drill", func() error {
		if after := d.routingState(t); after != before {
			return fmt.Errorf("before:\n%s\nafter:\n%s", before, after)
		}
		return nil
	})

	// The stop condition: Approach 1 failing while the kill switch sends
	// everything to it.
	stopped := d.stopCondition(t)
	if stopped.Verdict != drill.Aborted || !strings.Contains(strings.Join(stopped.Reasons, " "), "agents' calls failed") {
		t.Errorf("with approach1 failing: verdict %s, reasons %v", stopped.Verdict, stopped.Reasons)
	}
	testkit.EventuallyNil(t, "the state after the aborted drill is the state before", func() error {
		if after := d.routingState(t); after != before {
			return fmt.Errorf("before:\n%s\nafter:\n%s", before, after)
		}
		return nil
	})

	// An unreachable gateway: refused, nothing changed.
	dead := listenLoopback(t)
	deadURL := "http://" + dead.Addr().String()
	_ = dead.Close()
	d2 := newDrillDriver(t, f, fmt.Sprintf("    - {name: gw-dead, admin: %q}\n", deadURL))
	code, out, res = d2.run(t)
	if code != exitDrillRefused || res.Verdict != drill.Refused || !strings.Contains(out, "gw-dead") {
		t.Errorf("with an unreachable gateway: exit %d, verdict %s:\n%s", code, res.Verdict, out)
	}
	if after := d.routingState(t); after != before {
		t.Errorf("a refused drill changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// checkTraces: the run is in the ledger (one drill window per gateway,
// and calls marked with its id), in the flag file's change log (by the
// drill, with its id), in the history and in the metrics textfile.
func (d *drillDriver) checkTraces(t *testing.T, res drill.Result) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), d.f.ledgerDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	testkit.EventuallyNil(t, "every gateway recorded the drill's window in the ledger", func() error {
		var windows, marked int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE kind = 'drill'), count(*) FILTER (WHERE kind <> 'drill')
			FROM gitgate_canary_ledger WHERE drill = $1`, res.ID).Scan(&windows, &marked); err != nil {
			return err
		}
		if windows != len(d.f.gateways) || marked == 0 {
			return fmt.Errorf("%d drill windows, %d calls marked", windows, marked)
		}
		return nil
	})
	changes, err := flags.ReadChanges(flags.ChangeLogPath(d.f.flagPath))
	if err != nil {
		t.Fatal(err)
	}
	var byDrill int
	for _, c := range changes {
		if strings.Contains(c.Reason, res.ID) && strings.HasPrefix(c.By, "gitgate drill") {
			byDrill++
		}
	}
	if byDrill < 2 {
		t.Errorf("%d change-log records by the drill, want its flip and its restore: %+v", byDrill, changes)
	}
	prom, err := os.ReadFile(filepath.Join(d.history, "gitgate_drill.prom"))
	if err != nil || !strings.Contains(string(prom), "gitgate_drill_last_success_timestamp_seconds") {
		t.Errorf("metrics textfile: %v\n%s", err, prom)
	}
	cmd := exec.Command(gitgateBinary(t), "drill", "history", "--config", d.cfgPath)
	cmd.Env = d.env
	hist, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(hist), res.ID) {
		t.Errorf("drill history: %v\n%s", err, hist)
	}
}

// runActingAt runs a drill and calls act once its progress (standard
// error) prints a line starting with prefix; it returns what the drill
// printed on standard output and how it ended.
func (d *drillDriver) runActingAt(t *testing.T, prefix string, act func(*exec.Cmd)) (string, error) {
	t.Helper()
	cmd := d.command(t.Context(), t)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var seen strings.Builder // the drill's log up to the line acted on
	acted := false
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), prefix) {
			act(cmd)
			acted = true
			break
		}
	}
	_, _ = io.Copy(io.Discard, stderr)
	err = cmd.Wait()
	if !acted {
		t.Fatalf("the drill ended (%v) before it logged %q; its log:\n%s\nits output:\n%s", err, prefix, seen.String(), stdout.String())
	}
	return stdout.String(), err
}

// signalHalfway starts a drill and sends it sig once the kill switch is in
// the flag source, and waits for it to end.
func (d *drillDriver) signalHalfway(t *testing.T, sig syscall.Signal) {
	t.Helper()
	_, _ = d.runActingAt(t, "flip: kill switch set", func(cmd *exec.Cmd) { _ = cmd.Process.Signal(sig) })
}

// stopCondition runs a drill and makes Approach 1's git fail once the kill
// switch is in the flag source; it returns the result.
func (d *drillDriver) stopCondition(t *testing.T) drill.Result {
	t.Helper()
	defer d.f.approach1Fault(false)
	stdout, err := d.runActingAt(t, "flip: kill switch set", func(*exec.Cmd) { d.f.approach1Fault(true) })
	d.f.approach1Fault(false)
	if exit, ok := errors.AsType[*exec.ExitError](err); !ok || exit.ExitCode() != exitDrillFailed {
		t.Errorf("with approach1 failing the drill ended with %v, want exit %d:\n%s", err, exitDrillFailed, stdout)
	}
	rs, err := (drill.History{Dir: d.history}).List()
	if err != nil || len(rs) == 0 {
		t.Fatalf("no result: %v", err)
	}
	return rs[0]
}

// TestDrillNamesAGatewayThatDoesNotFollow: a gateway following a stale
// copy of the flag file fails the drill by name, and the drill still puts
// every gateway back; a gateway that stops answering halfway aborts a
// drill, which restores the others and names it.
func TestDrillNamesAGatewayThatDoesNotFollow(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of gateways and a service")
	}
	t.Parallel()
	f := newFleet(t, fleetOptions{stale: []int{2}})
	d := newDrillDriver(t, f)
	before := d.routingState(t)
	code, out, res := d.run(t)
	t.Logf("drill:\n%s", out)
	if code != exitDrillFailed || res.Verdict != drill.Fail {
		t.Fatalf("exit %d, verdict %s, want a failure", code, res.Verdict)
	}
	reasons := strings.Join(res.Reasons, "\n")
	if !strings.Contains(reasons, "gateway gw-2 did not stop routing to approach2") || strings.Contains(reasons, "gw-0 did not") {
		t.Errorf("reasons:\n%s", reasons)
	}
	// The stale copy had the source's bytes before the flip (the same
	// revision); the flip is what tells it apart.
	if res.Gateways[2].FlipSourceMS != nil || res.Gateways[0].FlipSourceMS == nil || res.Gateways[2].FlipOverrideMS == nil {
		t.Errorf("gw-2 took the flag source's flip, or gw-0 did not, or the override did not reach gw-2: %+v", res.Gateways)
	}
	if !res.Restore.FlagSourceIdentical || !res.Restore.GatewaysRestored {
		t.Errorf("restore %+v", res.Restore)
	}
	if after := d.routingState(t); after != before {
		t.Errorf("state after:\n%s\nbefore:\n%s", after, before)
	}

	// gw-1 stops answering once the kill switch is on everywhere.
	_, _ = d.runActingAt(t, "flip: every gateway answered", func(*exec.Cmd) { f.stopGateway(1) })
	rs, _ := (drill.History{Dir: d.history}).List()
	res = rs[0]
	if res.Verdict != drill.Aborted || !strings.Contains(strings.Join(res.Reasons, " "), "gateway gw-1 stopped answering") {
		t.Errorf("with gw-1 gone: verdict %s, reasons %v", res.Verdict, res.Reasons)
	}
	data, _ := os.ReadFile(f.flagPath)
	if !strings.HasPrefix(before, string(data)) {
		t.Errorf("the flag file was not restored:\n%s", data)
	}
	for _, i := range []int{0, 2} {
		if err := f.following(i, fleetRoute); err != nil {
			t.Errorf("gw-%d after the aborted drill: %v", i, err)
		}
	}
}
